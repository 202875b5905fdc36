/**
 * MambaLM.loglikelihood against lm-eval's own procedure (fixtures/lm-eval-sample: encode-pair, truncation to 2048,
 * full-vocabulary log-softmax, first-index argmax, computed in float64 by scripts/fixtures/lm_eval_reference.py
 * and checked against transformers). float32 compute: ll within 1e-3 absolute; is_greedy and token ids identical.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePairs } from "../../src/lm/encodePair.js";
import type { NativeBackend } from "../../src/backend/NativeBackend.js";
import type { MambaLM } from "../../src/lm/MambaLM.js";
import { neoxTokenizer, openFixtureLM, repoRoot } from "./helpers.js";

interface SampleResult {
    id: string;
    context: string;
    continuation: string;
    context_ids?: number[];
    continuation_ids?: number[];
    input_length?: number;
    truncated?: boolean;
    ll?: number;
    is_greedy?: boolean;
    error?: string;
}

describe.each(["neox-mamba1", "neox-mamba2"] as const)("lm-eval's loglikelihood on %s", (name) => {
    const fixture = JSON.parse(readFileSync(path.join(repoRoot, "fixtures/lm-eval-sample", `${name}.json`), "utf8")) as { results: SampleResult[] };
    const scored = fixture.results.filter((r) => r.error === undefined);
    const rejected = fixture.results.filter((r) => r.error !== undefined);
    let lm: MambaLM;
    let backend: NativeBackend;

    beforeAll(async () => {
        ({ lm, backend } = await openFixtureLM(name));
    });
    afterAll(async () => {
        await backend?.[Symbol.asyncDispose]();
    });

    it("covers the edge cases (truncation, greedy, a rejected request)", () => {
        expect(scored.length).toBeGreaterThanOrEqual(10);
        expect(scored.some((r) => r.truncated)).toBe(true);
        expect(scored.some((r) => r.is_greedy)).toBe(true);
        expect(rejected.map((r) => r.id)).toEqual(["whitespace_only_context"]);
    });

    it("token ids are lm-eval's (encode-pair) and the input length its truncation", async () => {
        const pairs = await encodePairs(await neoxTokenizer(), scored, 0);
        const truncated = await lm.encodeRequests(scored);
        scored.forEach((r, i) => {
            expect(pairs[i]!.context, r.id).toEqual(r.context_ids);
            expect(pairs[i]!.continuation, r.id).toEqual(r.continuation_ids);
            expect(truncated[i]!.tokens.length - 1, r.id).toBe(r.input_length);
        });
    });

    it("ll within 1e-3 and is_greedy identical, all requests in one pooled call", async () => {
        const results = await lm.loglikelihood(scored.map((r) => ({ context: r.context, continuation: r.continuation })));
        scored.forEach((r, i) => {
            expect(Math.abs(results[i]!.logprob - r.ll!), r.id).toBeLessThan(1e-3);
            expect(results[i]!.isGreedy, r.id).toBe(r.is_greedy);
        });
    });

    it("rejects what lm-eval rejects, naming the request", async () => {
        for (const r of rejected) {
            await expect(lm.loglikelihood([{ context: r.context, continuation: r.continuation }])).rejects.toThrow(/request 0 .*context encodes to no tokens/);
        }
    });
});
