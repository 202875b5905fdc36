/**
 * The real GPT-NeoX-20B tokenizer from the shared data folder, as a PairEncoder (no special tokens added).
 * Tests use HF's own `tokenizers` package directly so they do not depend on src/model/tokenizer.ts.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import tokenizers from "tokenizers";
import type { PairEncoder } from "../../src/lm/encodePair.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const sharedData = path.resolve(repoRoot, "../shared/data");
export const neoxTokenizerPath = path.join(sharedData, "tokenizers/gpt-neox-20b/20B_tokenizer.json");

/** Loads the GPT-NeoX-20B tokenizer as a PairEncoder. */
export function loadNeoxEncoder(): PairEncoder & { decode(ids: number[]): Promise<string> } {
    const tok = tokenizers.Tokenizer.fromFile(neoxTokenizerPath);
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
