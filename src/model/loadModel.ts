/**
 * `--model` / `--tokenizer` → `{ checkpoint, tokenizer }`.
 *
 * `--model` is a local checkpoint folder or a hub id (downloaded into the Hugging Face cache through hub.ts).
 * A checkpoint is its config.json plus one TensorSource per canonical weight (headers only; no weight bytes read).
 * Every file is checked to be a regular file before it is opened, and config.json is read under a size limit
 * (src/io/safeFile.ts), so a FIFO or a device in a checkpoint folder is refused instead of blocking the run.
 */
import { createHash } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { ConfigError, DownloadError, UsageError } from "../errors.js";
import { describeFileKind } from "../io/safeFile.js";
import { findWeightFiles, preferredWeightFile, weightChoiceNote } from "./checkpointFiles.js";
import { readCheckpointConfig } from "./checkpointConfig.js";
import { hubDownloadFile, hubSnapshot, isHubRepoId, type HubOptions, type SnapshotChooser } from "../hub/hub.js";
import { loadTokenizer, type TextTokenizer } from "./tokenizer.js";
import type { Checkpoint, CheckpointLayout, MambaConfig, TensorSource } from "./types.js";
import { mapCheckpointTensors } from "./weightMap.js";
import { didYouMean } from "../io/suggest.js";

export { readCheckpointConfig };

/**
 * sha256 over config.json's bytes and the tensor index: for each tensor (in canonical order) its name, dtype, shape,
 * file name (without the folder, so a moved copy has the same fingerprint), offset, length and that file's size.
 */
export async function checkpointFingerprint(configBytes: Uint8Array, tensors: readonly TensorSource[]): Promise<string> {
    const fileSizes = new Map<string, number>();
    for (const t of tensors) {
        if (!fileSizes.has(t.file)) fileSizes.set(t.file, (await stat(t.file)).size);
    }
    const hash = createHash("sha256");
    hash.update(configBytes);
    for (const t of tensors) {
        const line = [t.name, t.dtype, t.shape.join("x"), path.basename(t.file), t.offset, t.byteLength, fileSizes.get(t.file)];
        hash.update(`\n${line.join("\t")}`);
    }
    return hash.digest("hex");
}

/**
 * Loads the checkpoint in `dir`: config.json + the weight format its layout's Python loader reads → canonical,
 * shape-checked tensors. `note` receives a line when the folder holds several weight formats (which one is read).
 */
export async function loadCheckpoint(dir: string, note?: (line: string) => void): Promise<Checkpoint> {
    const absolute = path.resolve(dir);
    const { config: declared, bytes } = await readCheckpointConfig(absolute);
    const weights = await findWeightFiles(absolute, declared.layout);
    const choice = weightChoiceNote(weights, declared.layout);
    if (choice !== undefined) note?.(choice);
    const raw = await weights.read();
    const { config, tensors } = mapCheckpointTensors(raw, declared, weights.entry);
    return { dir: absolute, config, tensors, fingerprint: await checkpointFingerprint(bytes, tensors) };
}

/** Options for resolving a hub id (all default from the HF_* environment variables; see hub.ts). */
export type ResolveModelOptions = Omit<HubOptions, "repoType">;

/** The layout of a hub repo's config.json (fetched into the cache). */
async function hubLayout(model: string, opts: ResolveModelOptions): Promise<CheckpointLayout> {
    const file = await hubDownloadFile(model, "config.json", { ...opts, repoType: "model" });
    return (await readCheckpointConfig(path.dirname(file))).config.layout;
}

/**
 * The files of a hub model repo needed to load it: config, the weights its layout's loader reads (and their shards),
 * tokenizer. The layout (config.json) is read first only when the repo holds both weight formats.
 */
function modelFilesToFetch(model: string, opts: ResolveModelOptions): SnapshotChooser {
    return async (files, readIndex, where) => {
        if (!files.includes("config.json")) throw new DownloadError(`${where}: has no config.json`);
        const hasTorch = files.some((f) => f.startsWith("pytorch_model.bin"));
        const hasSafetensors = files.some((f) => f.startsWith("model.safetensors"));
        const layout: CheckpointLayout = hasTorch && hasSafetensors ? await hubLayout(model, opts) : "mamba_ssm";
        const weights = preferredWeightFile(files, layout);
        if (weights === undefined) throw new DownloadError(`${where}: has no weights (model.safetensors or pytorch_model.bin)`);
        const wanted = ["config.json", weights];
        if (weights.endsWith(".index.json")) wanted.push(...(await readIndex(weights)));
        if (files.includes("tokenizer.json")) wanted.push("tokenizer.json");
        return wanted;
    };
}

/**
 * `--model` → a local folder: an existing directory as is; otherwise a hub id "org/name" whose config, weights and
 * tokenizer.json are downloaded into (or, offline, found in) the Hugging Face cache.
 */
export async function resolveModelDir(model: string, opts: ResolveModelOptions = {}): Promise<string> {
    const local = await stat(model).catch(() => undefined);
    if (local?.isDirectory()) return path.resolve(model);
    if (local) throw new UsageError(`--model ${model}: is ${describeFileKind(local)}; expected a checkpoint folder or a hub id such as state-spaces/mamba-130m`);
    if (await looksLikeLocalPath(model)) throw new UsageError(`--model ${model}: no such folder${await similarFolder(model)}`);
    if (!isHubRepoId(model)) {
        throw new UsageError(`--model ${model}: no such folder, and not a hub id of the form org/name`);
    }
    return hubSnapshot(model, { ...opts, repoType: "model" }, modelFilesToFetch(model, opts));
}

/**
 * Refuses a tokenizer whose ids do not all have a row in the model's embedding (every id it can produce must be a
 * row of the embedding and of the LM head).
 */
export function checkTokenizerFits(tokenizer: Pick<TextTokenizer, "vocabSize" | "source">, checkpoint: Pick<Checkpoint, "dir" | "config">): void {
    const rows = checkpoint.config.paddedVocabSize;
    if (tokenizer.vocabSize > rows) {
        throw new ConfigError(
            `the tokenizer's vocabulary (${tokenizer.vocabSize} ids, ${tokenizer.source}) does not fit the model's embedding ` +
                `(${rows} rows, ${checkpoint.dir}): use the tokenizer the model was trained with (--tokenizer)`,
        );
    }
}

/**
 * Whether a --model value that is no folder was meant as one: it starts like a path (".", "/", "~"), has more than
 * one "/", or its first part is a folder that exists here ("fixtures/neox-mambaX"). Hub ids are "org/name".
 */
async function looksLikeLocalPath(model: string): Promise<boolean> {
    if (/^[./~]/.test(model) || model.includes("\\") || model.split("/").length > 2) return true;
    const first = model.split("/")[0]!;
    return model.includes("/") && (await stat(first).catch(() => undefined))?.isDirectory() === true;
}

/** " (did you mean X?)" naming the closest existing folder beside a missing one, or "". */
async function similarFolder(model: string): Promise<string> {
    const parent = path.dirname(model);
    const names = await readdir(parent, { withFileTypes: true }).catch(() => []);
    const folders = names.filter((e) => e.isDirectory()).map((e) => e.name);
    return didYouMean(path.basename(model), folders, (name) => path.join(parent, name));
}

/** A loaded model: the checkpoint and the tokenizer to feed it. */
export interface LoadedModel {
    checkpoint: Checkpoint;
    tokenizer: TextTokenizer;
}

/** `--model` and `--tokenizer` → checkpoint + tokenizer (--tokenizer when given, else the model folder's tokenizer.json; see tokenizer.ts). */
export async function loadModel(model: string, tokenizer: string | undefined, opts: ResolveModelOptions = {}): Promise<LoadedModel> {
    const dir = await resolveModelDir(model, opts);
    const checkpoint = await loadCheckpoint(dir);
    const loaded = await loadTokenizer(tokenizer, dir, opts);
    checkTokenizerFits(loaded, checkpoint);
    return { checkpoint, tokenizer: loaded };
}
