import { describe, expect, it } from "vitest";
import {
    encodePair,
    encodePairs,
    isPythonSpace,
    makeDisjointWindow,
    moveTrailingWhitespace,
    rollingRequests,
    rollingTokenWindows,
    splitTrailingWhitespace,
    truncatePair,
} from "../../src/lm/encodePair.js";
import { loadNeoxEncoder } from "./neoxTokenizer.js";

const neox = loadNeoxEncoder();
const EOT = 0;

describe("Python whitespace (str.isspace / rstrip)", () => {
    it("strips what Python strips and keeps what only JavaScript strips", () => {
        expect(splitTrailingWhitespace("end.\u001f")).toEqual(["end.", "\u001f"]); // JS trimEnd keeps U+001F
        expect(splitTrailingWhitespace("a\ufeff")).toEqual(["a\ufeff", ""]); // JS trimEnd strips U+FEFF
        expect(splitTrailingWhitespace("x \u00a0\n\t\u3000")).toEqual(["x", " \u00a0\n\t\u3000"]);
        expect(splitTrailingWhitespace("   ")).toEqual(["", "   "]);
        expect(isPythonSpace(0x85)).toBe(true);
        expect(isPythonSpace(0x200b)).toBe(false); // zero-width space is not whitespace in Python
    });
    it("moves the trailing whitespace to the front of the continuation", () => {
        expect(moveTrailingWhitespace("Answer:\n\n", " yes")).toEqual(["Answer:", "\n\n yes"]);
    });
});

describe("encodePair with the GPT-NeoX-20B tokenizer (hand-checked ids)", () => {
    it("splits a plain pair at the context length", async () => {
        expect(await encodePair(neox, "Hello", " world", EOT)).toEqual({ context: [12092], continuation: [1533] });
    });
    it("takes the continuation from the joint encoding when BPE merges across the boundary", async () => {
        // encode("Hel") = [9494]; encode("Hello world") = [12092 "Hello", 1533 " world"]: "lo" vanished into
        // the first token, so the continuation is whole[1:] = [1533], not encode("lo world").
        expect(await encodePair(neox, "Hel", "lo world", EOT)).toEqual({ context: [9494], continuation: [1533] });
        // A merge that swallows the whole continuation leaves it empty; scoring then refuses it as lm-eval does.
        const swallowed = await encodePair(neox, "Hel", "lo", EOT);
        expect(swallowed).toEqual({ context: [9494], continuation: [] });
        expect(() => truncatePair(swallowed)).toThrow(/continuation encodes to no tokens/);
    });
    it("moves a LAMBADA trailing space into a double-space continuation", async () => {
        // "the cat sat on the  mat" = the | Ġcat | Ġsat | Ġon | Ġthe | "  " (50276) | mat (2056)
        expect(await encodePair(neox, "the cat sat on the ", " mat", EOT)).toEqual({
            context: [783, 5798, 2206, 327, 253],
            continuation: [50276, 2056],
        });
    });
    it("moves trailing newlines into the continuation", async () => {
        // "Answer:\n\n yes" = Answer | : | ĊĊ (535) | Ġyes (4754)
        expect(await encodePair(neox, "Answer:\n\n", " yes", EOT)).toEqual({ context: [32869, 27], continuation: [535, 4754] });
    });
    it("encodes the PIQA/ARC prompt shape", async () => {
        expect(await encodePair(neox, "Question: Is it?\nAnswer:", " yes", EOT)).toEqual({
            context: [23433, 27, 1680, 352, 32, 187, 32869, 27],
            continuation: [4754],
        });
    });
    it("handles non-ASCII text (byte-level BPE pieces)", async () => {
        // "東京" = æĿ ± äº ¬ (4 byte-level tokens); "naïve café": na | Ã¯ve | ĠcafÃ©
        expect(await encodePair(neox, "naïve", " café", EOT)).toEqual({ context: [2072, 30180], continuation: [36241] });
        expect(await encodePair(neox, "東", "京", EOT)).toEqual({ context: [12676, 111], continuation: [5494, 107] });
    });
    it("uses the prefix token for an empty context, and dedupes a leading prefix token", async () => {
        expect(await encodePair(neox, "", "hi", EOT)).toEqual({ context: [0], continuation: [5801] });
        expect(await encodePair(neox, "", "<|endoftext|>hi", EOT)).toEqual({ context: [0], continuation: [5801] });
        // A whitespace-only context is not an empty context: lm-eval moves the spaces and the context encodes to
        // nothing, which it rejects (fixtures/lm-eval-sample "whitespace_only_context"); truncatePair refuses it.
        const pair = await encodePair(neox, "  ", "hi", EOT);
        expect(pair).toEqual({ context: [], continuation: (await neox.encode("  hi")) as number[] });
        expect(() => truncatePair(pair)).toThrow(/context encodes to no tokens/);
    });
    it("batch encoding gives the same pairs as one at a time", async () => {
        const reqs = [
            { context: "the cat sat on the ", continuation: " mat" },
            { context: "Answer:\n\n", continuation: " yes" },
            { context: "Answer:\n\n", continuation: " no" },
            { context: "", continuation: "hi" },
        ];
        const batched = await encodePairs(neox, reqs, EOT);
        for (let i = 0; i < reqs.length; i++) {
            expect(batched[i]).toEqual(await encodePair(neox, reqs[i]!.context, reqs[i]!.continuation, EOT));
        }
    });
});

describe("truncation (ctx+cont)[-(max_length+1):][:-1]", () => {
    it("keeps everything when it fits", () => {
        expect(truncatePair({ context: [1, 2], continuation: [3] }, 2048)).toEqual({ tokens: [1, 2, 3], nScored: 1 });
    });
    it("drops tokens on the left and scores the last len(cont) rows", () => {
        // whole 1..7, max_length 4: keep the last 5 = [3,4,5,6,7]; input [3,4,5,6]; rows 2,3 predict 6,7.
        expect(truncatePair({ context: [1, 2, 3, 4, 5], continuation: [6, 7] }, 4)).toEqual({ tokens: [3, 4, 5, 6, 7], nScored: 2 });
        const long = truncatePair({ context: Array.from({ length: 3000 }, (_, i) => i), continuation: [7, 8] });
        expect(long.tokens.length).toBe(2049);
        expect(long.tokens[0]).toBe(3000 + 2 - 2049);
        expect(long.tokens.slice(-2)).toEqual([7, 8]);
    });
    it("refuses a continuation longer than max_length", () => {
        expect(() => truncatePair({ context: [1], continuation: [1, 2, 3] }, 2)).toThrow(/more than max_length 2/);
    });
});

describe("rolling windows (lm-eval get_rolling_token_windows + make_disjoint_window)", () => {
    it("matches the hand-worked small example", () => {
        const toks = [10, 11, 12, 13, 14, 15, 16];
        expect(rollingTokenWindows(toks, 0, 4, 1)).toEqual([
            { context: [0, 10, 11, 12], continuation: [10, 11, 12, 13] },
            { context: [12, 13, 14, 15], continuation: [14, 15, 16] },
        ]);
        expect(rollingTokenWindows(toks, 0, 4, 1).map(makeDisjointWindow)).toEqual([
            { context: [0], continuation: [10, 11, 12, 13] },
            { context: [12, 13], continuation: [14, 15, 16] },
        ]);
    });
    it("matches range(34), max_seq_len 10, context_len 1 worked by hand", () => {
        const toks = Array.from({ length: 34 }, (_, i) => i);
        const r = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
        expect(rollingTokenWindows(toks, -100, 10, 1)).toEqual([
            { context: [-100, ...r(0, 9)], continuation: r(0, 10) },
            { context: r(9, 19), continuation: r(10, 20) },
            { context: r(19, 29), continuation: r(20, 30) },
            { context: r(23, 33), continuation: r(30, 34) },
        ]);
    });
    it("predicts every token exactly once, each with at most max_length inputs", () => {
        const toks = Array.from({ length: 23 }, (_, i) => 100 + i);
        const reqs = rollingRequests(toks, 0, 8);
        const predicted = reqs.flatMap((q) => q.tokens.slice(q.tokens.length - q.nScored));
        expect(predicted).toEqual(toks);
        for (const q of reqs) expect(q.tokens.length - 1).toBeLessThanOrEqual(8);
        // Windows predict 8, 8 and 7 tokens; each later window reads the 8 tokens before its last prediction.
        expect(reqs.map((q) => q.nScored)).toEqual([8, 8, 7]);
        expect(reqs[0]!.tokens).toEqual([0, ...toks.slice(0, 8)]);
        expect(reqs[1]!.tokens).toEqual(toks.slice(7, 16));
        expect(reqs[2]!.tokens).toEqual(toks.slice(23 - 9));
        expect(rollingRequests([], 0, 8)).toEqual([]);
    });
});
