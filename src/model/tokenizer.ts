/**
 * The text tokenizer: Hugging Face `tokenizers` over a tokenizer.json, never adding special tokens (no BOS/EOS),
 * with truncation and padding off, as lm-eval's mamba_ssm model encodes (GPT-NeoX-20B adds none by default).
 *
 * Resolution (`loadTokenizer`): `--tokenizer` when given (a tokenizer file, a folder holding tokenizer.json, or a hub
 * id: its tokenizer.json through hub.ts), as lm-eval uses an explicit tokenizer; else a tokenizer.json in the model
 * folder; else "EleutherAI/gpt-neox-20b", the tokenizer lm-eval's mamba_ssm wrapper defaults to.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import path from "node:path";
import { Tokenizer } from "tokenizers";
import { ConfigError, UsageError } from "../errors.js";
import { decodeUtf8Strict, describeFileKind, FileAccessError, readSmallFile, SIZE_LIMITS } from "../io/safeFile.js";
import { hubDownloadFile, isHubRepoId, type HubOptions } from "../hub/hub.js";

/** What the harness needs from a tokenizer. */
export interface TextTokenizer {
    /** Token ids of `text`, with no special tokens added. */
    encode(text: string): Promise<number[]>;
    /** encode() of each text, in order. */
    encodeBatch(texts: readonly string[]): Promise<number[][]>;
    /** Text of `ids` (special tokens kept, as lm-eval's tok_decode with skip_special_tokens=False). */
    decode(ids: readonly number[]): Promise<string>;
    /** The end-of-text token id (lm-eval's eot_token_id; 0 for GPT-NeoX-20B). */
    eosTokenId: number;
    /** Vocabulary size including added tokens (50277 for GPT-NeoX-20B). */
    vocabSize: number;
    /** The tokenizer file it was loaded from. */
    source: string;
    /** sha256 of the tokenizer.json text (decompressed when the file is .gz): what the request cache is bound to. */
    contentSha256: string;
    /** See `splitsBeforeSpace`: encode(a + b) = encode(a) ++ encode(b) when a ends in a non-space and b starts with " ". */
    splitsBeforeSpace: boolean;
}

/**
 * Whether a tokenizer.json provably encodes a + b as encode(a) followed by encode(b) whenever a ends with a
 * non-whitespace character and b starts with a space (U+0020). True for GPT-2-style byte-level BPE, GPT-NeoX-20B's
 * included, and checked from the configuration:
 * - normalizer none or NFC: a space never composes with what precedes it, and nothing reorders across it;
 * - pre-tokenizer ByteLevel with its regex and no added prefix space: no alternative of the regex
 *   ('s|'t|…| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+) matches a non-space followed by a space, so a piece
 *   ends where b begins, and the pieces after it are b's own (the regex has no look-behind or anchor);
 * - BPE without dropout: each piece is encoded on its own, deterministically;
 * - added tokens: none strips or requires word boundaries, and none mixes spaces with other characters, so none
 *   can match across the boundary (GPT-NeoX-20B's are "<|endoftext|>", "<|padding|>" and runs of 2–24 spaces).
 * The harness then encodes a continuation on its own instead of context + continuation again (encodePair.ts).
 */
export function splitsBeforeSpace(config: unknown): boolean {
    const c = config as {
        normalizer?: { type?: unknown } | null;
        pre_tokenizer?: { type?: unknown; add_prefix_space?: unknown; use_regex?: unknown } | null;
        model?: { type?: unknown; dropout?: unknown } | null;
        added_tokens?: unknown;
    } | null;
    if (c === null || typeof c !== "object") return false;
    const normalizerOk = c.normalizer === null || c.normalizer === undefined || c.normalizer.type === "NFC";
    const pre = c.pre_tokenizer;
    const preOk = pre?.type === "ByteLevel" && pre.add_prefix_space === false && (pre.use_regex === undefined || pre.use_regex === true);
    const modelOk = c.model?.type === "BPE" && (c.model.dropout === null || c.model.dropout === undefined);
    const added = c.added_tokens ?? [];
    const addedOk = Array.isArray(added) && added.every((t: { content?: unknown; lstrip?: unknown; rstrip?: unknown; single_word?: unknown }) =>
        typeof t === "object" && t !== null && typeof t.content === "string" &&
        t.lstrip !== true && t.rstrip !== true && t.single_word !== true &&
        (!t.content.includes(" ") || /^ +$/.test(t.content)));
    return normalizerOk && preOk && modelOk && addedOk;
}

/** lm-eval's default tokenizer for `--model mamba_ssm`. */
export const DEFAULT_TOKENIZER = "EleutherAI/gpt-neox-20b";

/** End-of-text token names tried, in order, when tokenizer_config.json does not name one. */
const EOS_CANDIDATES = ["<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>"];

/** eos_token from a tokenizer_config.json / special_tokens_map.json beside the tokenizer file, if any. */
async function declaredEosToken(dir: string): Promise<string | undefined> {
    for (const name of ["tokenizer_config.json", "special_tokens_map.json"]) {
        const file = path.join(dir, name);
        let text: string;
        try {
            text = decodeUtf8Strict(await readSmallFile(file, { limit: SIZE_LIMITS.config, what: `a ${name}` }), file);
        } catch (e) {
            if (e instanceof FileAccessError && e.code === "ENOENT") continue;
            throw new ConfigError((e as Error).message);
        }
        let json: unknown;
        try {
            json = JSON.parse(text);
        } catch {
            throw new ConfigError(`${file}: not valid JSON`);
        }
        const eos = (json as { eos_token?: unknown } | null)?.eos_token;
        if (typeof eos === "string") return eos;
        if (typeof eos === "object" && eos !== null && typeof (eos as { content?: unknown }).content === "string") {
            return (eos as { content: string }).content;
        }
    }
    return undefined;
}

/** Largest decompressed tokenizer.json accepted from a .gz file. */
const MAX_TOKENIZER_JSON = SIZE_LIMITS.tokenizer;

/** Loads a tokenizer.json file (or a gzip-compressed tokenizer.json.gz) as a `TextTokenizer`. */
export async function loadTokenizerFile(file: string): Promise<TextTokenizer> {
    let tokenizer: Tokenizer;
    let config: unknown;
    let json: string;
    try {
        // A gzip-compressed tokenizer.json (file name ending in .gz) is accepted too: the bundled default ships one.
        const raw = await readSmallFile(file, { limit: SIZE_LIMITS.tokenizer, what: "a tokenizer.json" });
        json = decodeUtf8Strict(file.endsWith(".gz") ? gunzipSync(raw, { maxOutputLength: MAX_TOKENIZER_JSON }) : raw, file);
    } catch (e) {
        throw new ConfigError(e instanceof FileAccessError ? e.message : `${file}: cannot load as a tokenizer.json (${(e as Error).message.split("\n")[0]})`);
    }
    try {
        tokenizer = Tokenizer.fromString(json);
        config = JSON.parse(json);
    } catch (e) {
        throw new ConfigError(`${file}: cannot load as a tokenizer.json (${(e as Error).message.split("\n")[0]})`);
    }
    tokenizer.disableTruncation();
    tokenizer.disablePadding();
    const declared = await declaredEosToken(path.dirname(file));
    const candidates = declared !== undefined ? [declared] : EOS_CANDIDATES;
    const eosTokenId = candidates.map((t) => tokenizer.tokenToId(t)).find((id): id is number => typeof id === "number");
    if (eosTokenId === undefined) {
        throw new ConfigError(`${file}: no end-of-text token found (looked for ${candidates.join(", ")})`);
    }
    const options = { addSpecialTokens: false };
    return {
        async encode(text) {
            return (await tokenizer.encode(text, null, options)).getIds();
        },
        async encodeBatch(texts) {
            if (texts.length === 0) return [];
            return (await tokenizer.encodeBatch([...texts], options)).map((encoding) => encoding.getIds());
        },
        async decode(ids) {
            return tokenizer.decode([...ids], false);
        },
        eosTokenId,
        vocabSize: tokenizer.getVocabSize(true),
        source: file,
        contentSha256: createHash("sha256").update(json, "utf8").digest("hex"),
        splitsBeforeSpace: splitsBeforeSpace(config),
    };
}

/** Refuses at once a `--tokenizer` that is neither a path that exists nor a hub id (what loading would refuse later). */
export function checkTokenizerSpec(spec: string): void {
    if (!existsSync(spec) && !isHubRepoId(spec)) {
        throw new UsageError(`--tokenizer ${spec}: no such file or folder, and not a hub id of the form org/name`);
    }
}

/** `--tokenizer` (or the default) → a tokenizer file on disk. */
async function resolveTokenizerFile(spec: string, hubOpts: Omit<HubOptions, "repoType">): Promise<string> {
    const info = await stat(spec).catch(() => undefined);
    if (info?.isFile()) return path.resolve(spec);
    if (info?.isDirectory()) {
        const file = path.resolve(spec, "tokenizer.json");
        const inside = await stat(file).catch(() => undefined);
        if (inside?.isFile()) return file;
        if (inside) throw new UsageError(`--tokenizer ${spec}: its tokenizer.json is ${describeFileKind(inside)}, not a regular file`);
        throw new UsageError(`--tokenizer ${spec}: the folder has no tokenizer.json`);
    }
    if (info) throw new UsageError(`--tokenizer ${spec}: is ${describeFileKind(info)}; expected a tokenizer.json file, a folder holding one, or a hub id`);
    checkTokenizerSpec(spec);
    return hubDownloadFile(spec, "tokenizer.json", { ...hubOpts, repoType: "model" });
}

/**
 * The tokenizer for a model: `spec` (file, folder or hub id) when given, else `<modelDir>/tokenizer.json` when present,
 * else the default "EleutherAI/gpt-neox-20b" from the hub (or its cache).
 */
export async function loadTokenizer(
    spec: string | undefined,
    modelDir: string | undefined,
    hubOpts: Omit<HubOptions, "repoType"> = {},
): Promise<TextTokenizer> {
    if (spec !== undefined) return loadTokenizerFile(await resolveTokenizerFile(spec, hubOpts));
    if (modelDir !== undefined) {
        const inModel = path.join(modelDir, "tokenizer.json");
        // Anything at that name is the model's tokenizer: a FIFO or a folder there is refused by the load, not skipped.
        if (await stat(inModel).catch(() => undefined)) return loadTokenizerFile(inModel);
    }
    return loadTokenizerFile(await resolveTokenizerFile(DEFAULT_TOKENIZER, hubOpts));
}
