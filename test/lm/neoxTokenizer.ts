/**
 * The real GPT-NeoX-20B tokenizer (the copy the package ships), as a PairEncoder (no special tokens added).
 * Tests use HF's own `tokenizers` package directly so they do not depend on src/model/tokenizer.ts.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import tokenizers from "tokenizers";
import type { PairEncoder } from "../../src/lm/encodePair.js";
import { BUNDLED_TOKENIZER, taskDataDir } from "../testData.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The real task data (MAMBA_EVAL_DATA), for groups declared with describeWithData (test/testData.ts). */
export const sharedData = taskDataDir ?? "(MAMBA_EVAL_DATA not set)";
export const neoxTokenizerPath = BUNDLED_TOKENIZER;

/** Loads the GPT-NeoX-20B tokenizer as a PairEncoder. */
export function loadNeoxEncoder(): PairEncoder & { decode(ids: number[]): Promise<string> } {
    const tok = tokenizers.Tokenizer.fromString(gunzipSync(readFileSync(neoxTokenizerPath)).toString("utf8"));
    return {
        async encode(text: string) {
            return (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
        },
        async encodeBatch(texts: string[]) {
            return (await tok.encodeBatch(texts, { addSpecialTokens: false })).map((e) => e.getIds());
        },
        decode: (ids: number[]) => tok.decode(ids, false),
    };
}
