/**
 * Which weight files a checkpoint folder holds, and the one format to read when it has several: the one the
 * Python loader of its layout reads, so a folder holding both formats (which may disagree) gives lm-eval's numbers.
 * - mamba_ssm layout (config.json with d_model; lm-eval `--model mamba_ssm`): MambaLMHeadModel.from_pretrained reads
 *   pytorch_model.bin and nothing else (mamba_ssm/utils/hf.py load_state_dict_hf: WEIGHTS_NAME), so
 *   pytorch_model.bin comes first; the sharded index and safetensors (which mamba_ssm cannot read) after it;
 * - transformers layout (model_type mamba/mamba2; lm-eval `--model hf`): from_pretrained tries model.safetensors,
 *   model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json, in that order.
 * `otherWeightFiles` names what was left aside, so the caller can say which file was read and why.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { CheckpointFormatError } from "../errors.js";
import { requireRegularFile } from "../io/safeFile.js";
import { readSafetensorsHeader, readSafetensorsIndex } from "./safetensors.js";
import { readShardedIndex } from "./shardedIndex.js";
import { readTorchBin } from "./torchBin.js";
import type { CheckpointLayout, TensorSource } from "./types.js";

/** A weight file (or index) in a checkpoint folder, and how to read it. */
export interface WeightFiles {
    /** The file the tensors are reached from: a single weight file or an index json. */
    entry: string;
    format: "safetensors" | "safetensors-sharded" | "torch" | "torch-sharded";
    read: () => Promise<TensorSource[]>;
    /** Weight files (or indexes) of the folder that are not read, in preference order. */
    otherWeightFiles: string[];
}

type WeightFileName = "model.safetensors.index.json" | "model.safetensors" | "pytorch_model.bin.index.json" | "pytorch_model.bin";

/** Weight file names in order of preference, per layout (see the module comment). */
export const WEIGHT_FILE_PREFERENCE: Readonly<Record<CheckpointLayout, readonly WeightFileName[]>> = {
    mamba_ssm: ["pytorch_model.bin", "pytorch_model.bin.index.json", "model.safetensors", "model.safetensors.index.json"],
    transformers: ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"],
};

/** Picks the preferred weight file among `names` (plain file names, as in a folder listing or a hub repo). */
export function preferredWeightFile(names: Iterable<string>, layout: CheckpointLayout): WeightFileName | undefined {
    const present = new Set(names);
    return WEIGHT_FILE_PREFERENCE[layout].find((name) => present.has(name));
}

/** Which Python loader reads a layout, for messages. */
export function layoutLoader(layout: CheckpointLayout): string {
    return layout === "mamba_ssm" ? "mamba_ssm's MambaLMHeadModel.from_pretrained (lm-eval --model mamba_ssm)" : "transformers' from_pretrained (lm-eval --model hf)";
}

/**
 * "reading X; Y is not read (…)" when the folder holds several weight formats, else undefined: the note a command
 * prints so that the choice is never silent.
 */
export function weightChoiceNote(weights: WeightFiles, layout: CheckpointLayout): string | undefined {
    if (weights.otherWeightFiles.length === 0) return undefined;
    return `${path.dirname(weights.entry)} holds ${[path.basename(weights.entry), ...weights.otherWeightFiles].join(" and ")}: ` +
        `reading ${path.basename(weights.entry)}, as ${layoutLoader(layout)} does`;
}

/** Finds the weight files of the checkpoint in `dir` (of the given layout). */
export async function findWeightFiles(dir: string, layout: CheckpointLayout): Promise<WeightFiles> {
    let names: string[];
    try {
        names = await readdir(dir);
    } catch {
        throw new CheckpointFormatError(`${dir}: cannot list the checkpoint folder`);
    }
    const preference = WEIGHT_FILE_PREFERENCE[layout];
    const present = preference.filter((name) => names.includes(name));
    const chosen = present[0];
    if (chosen === undefined) {
        throw new CheckpointFormatError(`${dir}: no weights found; expected one of ${preference.join(", ")}`);
    }
    const entry = path.join(dir, chosen);
    await requireRegularFile(entry).catch((e: Error) => {
        throw new CheckpointFormatError(e.message);
    });
    const others = present.slice(1);
    switch (chosen) {
        case "model.safetensors.index.json":
            return { entry, format: "safetensors-sharded", read: () => readSafetensorsIndex(entry), otherWeightFiles: others };
        case "model.safetensors":
            return { entry, format: "safetensors", read: () => readSafetensorsHeader(entry), otherWeightFiles: others };
        case "pytorch_model.bin.index.json":
            return { entry, format: "torch-sharded", read: () => readShardedIndex(entry, readTorchBin), otherWeightFiles: others };
        case "pytorch_model.bin":
            return { entry, format: "torch", read: () => readTorchBin(entry), otherWeightFiles: others };
    }
}

/** weightChoiceNote for a loaded checkpoint's folder (which format was read when it holds several), or undefined. */
export async function checkpointWeightNote(checkpoint: { dir: string; config: { layout: CheckpointLayout } }): Promise<string | undefined> {
    try {
        return weightChoiceNote(await findWeightFiles(checkpoint.dir, checkpoint.config.layout), checkpoint.config.layout);
    } catch {
        return undefined;  // the folder changed since it was loaded: nothing to say about it
    }
}
