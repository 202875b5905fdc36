/**
 * encodePairs' shortcut (a continuation starting with " " encoded alone) against lm-eval's rule (context +
 * continuation encoded jointly), with the real GPT-NeoX-20B tokenizer: the shortcut must give the same ids on real
 * task requests and on the texts most likely to break it; and splitsBeforeSpace must refuse configurations where the
 * proof does not hold.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { encodePairs, type PairEncoder } from "../../src/lm/encodePair.js";
import { planTasks, pooledRequests } from "../../src/evaluator/evaluate.js";
import { loadTokenizerFile, splitsBeforeSpace, type TextTokenizer } from "../../src/model/tokenizer.js";
import { resolveTaskNames } from "../../src/tasks/registry.js";
import { neoxTokenizerPath, sharedData } from "./neoxTokenizer.js";
import { gunzipSync } from "node:zlib";
import { taskDataDir } from "../testData.js";

let neox: TextTokenizer;
beforeAll(async () => {
    neox = await loadTokenizerFile(neoxTokenizerPath);
});

/** The tokenizer, recording every text it is asked to encode; `apart` sets splitsBeforeSpace. */
function recording(tokenizer: TextTokenizer, apart: boolean): PairEncoder & { texts: string[] } {
    const texts: string[] = [];
    return {
        texts,
        splitsBeforeSpace: apart,
        encode: (text) => (texts.push(text), tokenizer.encode(text)),
        encodeBatch: (batch) => (texts.push(...batch), tokenizer.encodeBatch(batch)),
    };
}

async function bothWays(requests: { context: string; continuation: string }[]) {
    const joint = recording(neox, false);
    const apart = recording(neox, true);
    return {
        joint: await encodePairs(joint, requests, neox.eosTokenId),
        apart: await encodePairs(apart, requests, neox.eosTokenId),
        jointTexts: joint.texts,
        apartTexts: apart.texts,
    };
}

describe("encoding a continuation apart (GPT-NeoX-20B)", () => {
    it("the tokenizer file qualifies", () => {
        expect(neox.splitsBeforeSpace).toBe(true);
    });

    it.skipIf(taskDataDir === undefined)("gives lm-eval's ids on real requests of five tasks, encoding no context + continuation (needs MAMBA_EVAL_DATA)", async () => {
        const plans = await planTasks({
            tasks: resolveTaskNames(["lambada_openai", "piqa", "arc_easy", "arc_challenge", "winogrande"]),
            dataDir: sharedData,
            limit: 120,
        });
        const requests = pooledRequests(plans);
        const { joint, apart, jointTexts, apartTexts } = await bothWays(requests);
        expect(apart).toEqual(joint);
        const characters = (texts: string[]) => texts.reduce((n, t) => n + t.length, 0);
        expect(characters(apartTexts)).toBeLessThan(0.7 * characters(jointTexts));
        const wholes = new Set(requests.map((r) => r.context + r.continuation));
        expect(apartTexts.filter((t) => wholes.has(t) && !requests.some((r) => r.context === t))).toEqual([]);
    });

    it("gives lm-eval's ids where a joint encoding could differ", async () => {
        const requests = [
            { context: "It was John", continuation: "'s house" },  // no leading space: encoded jointly ("'s" contraction)
            { context: "It was John", continuation: " 's house" },
            { context: "don", continuation: "'t" },
            { context: "cafe", continuation: "\u0301 au lait" },  // combining acute: NFC composes across the boundary
            { context: "cafe", continuation: " \u0301 au lait" },
            { context: "x<|endoftext", continuation: "|> y" },
            { context: "x<|endoftext|>", continuation: " y" },
            { context: "a", continuation: "    b" },  // a run of spaces: an added token of GPT-NeoX-20B
            { context: "a\n\n", continuation: "  b" },  // trailing whitespace moves into the continuation
            { context: "value 12", continuation: " 345" },
            { context: "value 12", continuation: "345" },
            { context: "emoji 😀", continuation: " 😀😀" },
            { context: "中文", continuation: " 测试" },
            { context: "end.", continuation: " " },
            { context: "tab\t", continuation: "x" },
            { context: "", continuation: " only" },
            { context: "word\u00a0", continuation: " next" },  // NBSP: Python whitespace, moved with the rest
            { context: "zero\ufeff", continuation: " width" },  // U+FEFF: not whitespace to Python or the regex
        ];
        const { joint, apart } = await bothWays(requests);
        expect(apart).toEqual(joint);
    });
});

describe("splitsBeforeSpace (which tokenizer.json files qualify)", () => {
    const base = JSON.parse(gunzipSync(readFileSync(neoxTokenizerPath)).toString("utf8")) as Record<string, unknown>;
    const variant = (change: (c: Record<string, any>) => void) => {
        const c = structuredClone(base) as Record<string, any>;
        change(c);
        return splitsBeforeSpace(c);
    };

    it("accepts GPT-NeoX-20B's and the same without a normalizer", () => {
        expect(splitsBeforeSpace(base)).toBe(true);
        expect(variant((c) => (c.normalizer = null))).toBe(true);
    });

    it("refuses anything the proof does not cover", () => {
        expect(variant((c) => (c.normalizer = { type: "NFKC" }))).toBe(false);
        expect(variant((c) => (c.pre_tokenizer.add_prefix_space = true))).toBe(false);
        expect(variant((c) => (c.pre_tokenizer.use_regex = false))).toBe(false);
        expect(variant((c) => (c.pre_tokenizer = { type: "Whitespace" }))).toBe(false);
        expect(variant((c) => (c.model.dropout = 0.1))).toBe(false);
        expect(variant((c) => (c.model.type = "WordPiece"))).toBe(false);
        expect(variant((c) => c.added_tokens.push({ id: 60000, content: "a b", lstrip: false, rstrip: false, single_word: false }))).toBe(false);
        expect(variant((c) => (c.added_tokens[0].rstrip = true))).toBe(false);
        expect(variant((c) => (c.added_tokens[0].lstrip = true))).toBe(false);
        expect(variant((c) => (c.added_tokens[0].single_word = true))).toBe(false);
        expect(splitsBeforeSpace(null)).toBe(false);
        expect(splitsBeforeSpace("tokenizer")).toBe(false);
    });
});
