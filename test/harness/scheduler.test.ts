/**
 * The scheduler on the real native backend: results with prefix sharing, at several call sizes, slot budgets
 * and thread counts, must be bit-identical to scoring every request alone.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenRequest } from "../../src/harness/encodePair.js";
import { SEGMENT_CUT_ALIGNMENT, scoreTokenRequests, type ScoringEngine } from "../../src/harness/scheduler.js";
import { NativeBackend } from "../../src/model/backends/NativeBackend.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { writeRandomCheckpoint } from "./randomCheckpoint.js";

const VOCAB = 64;

/** Requests shaped like the real tasks: shared contexts with several endings, identical contexts, prefixes. */
function taskLikeRequests(seed: number): TokenRequest[] {
    let s = seed;
    const next = (n: number) => {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        return (s >>> 8) % n;
    };
    const out: TokenRequest[] = [];
    const shared = Array.from({ length: 5 }, () => next(VOCAB));
    for (let d = 0; d < 12; d++) {
        const ctx = [...(d % 2 === 0 ? shared : []), ...Array.from({ length: 1 + next(30) }, () => next(d % 3 === 0 ? 4 : VOCAB))];
        for (let c = 0; c < 4; c++) {
            const cont = Array.from({ length: 1 + next(5) }, () => next(VOCAB));
            out.push({ tokens: [...ctx, ...cont], nScored: cont.length });
        }
    }
    out.push({ ...out[0]! }); // an exact duplicate
    out.push({ tokens: out[1]!.tokens.slice(0, -1), nScored: 1 }); // a prefix of another request
    return out;
}

describe.each(["mamba1", "mamba2"] as const)("scheduler bit-identity on the native backend (%s)", (family) => {
    let dir: string;
    const backends: NativeBackend[] = [];
    beforeAll(() => {
        dir = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-sched-"));
        writeRandomCheckpoint(dir, { family, dModel: 16, nLayer: 2, vocab: VOCAB, dState: 8 }, 7);
    });
    afterAll(async () => {
        for (const b of backends) await b[Symbol.asyncDispose]();
        rmSync(dir, { recursive: true, force: true });
    });
    const open = async (threads: number) => {
        const b = await NativeBackend.create(await loadCheckpoint(dir), { threads });
        backends.push(b);
        return b;
    };

    it("gives each request the same bits with or without sharing, at any packing and thread count", async () => {
        const requests = taskLikeRequests(3);
        const one = await open(1);
        // Two requests whose one-token continuation is the model's argmax after a context (greedy = true).
        for (const ctx of [requests[0]!.tokens.slice(0, 6), requests[9]!.tokens.slice(0, 3)]) {
            const o = await one.score({
                tokens: Int32Array.from(ctx), segOffsets: Int32Array.of(0, ctx.length), segInit: Int32Array.of(-1),
                segSave: Int32Array.of(-1), scoreRows: new Int32Array(0), scoreTargets: new Int32Array(0), logitRows: Int32Array.of(ctx.length - 1),
            });
            let best = 0;
            o.logits.forEach((v, i) => { if (v > o.logits[best]!) best = i; });
            requests.push({ tokens: [...ctx, best], nScored: 1 });
        }
        const alone = [];
        for (const r of requests) alone.push((await scoreTokenRequests(one, [r], { share: false })).results[0]!);
        expect(alone.some((r) => r.isGreedy)).toBe(true);
        expect(alone.some((r) => !r.isGreedy)).toBe(true);
        expect(new Set(alone.map((r) => r.logprob)).size).toBeGreaterThan(requests.length / 2);

        const two = await open(2);
        const variants = [
            { backend: one, maxTokensPerCall: 8192, maxStateSlots: 64 },
            { backend: two, maxTokensPerCall: 8192, maxStateSlots: 64 },
            { backend: one, maxTokensPerCall: 7, maxStateSlots: 3 },
            { backend: two, maxTokensPerCall: 50, maxStateSlots: 2 },
            { backend: two, maxTokensPerCall: 1, maxStateSlots: 8 },
        ];
        for (const v of variants) {
            const seen: number[] = [];
            const out = await scoreTokenRequests(v.backend, requests, { ...v, onResult: (i) => seen.push(i) });
            expect(out.results).toEqual(alone); // toEqual on numbers is Object.is: bit-identical
            expect(seen.sort((a, b) => a - b)).toEqual(requests.map((_, i) => i));
            expect(out.stats.peakSlots).toBeLessThanOrEqual(v.maxStateSlots);
            expect(out.stats.tokenSteps).toBeLessThan(out.stats.unsharedTokenSteps);
        }
    });

    it("cuts long segments only at multiples of SEGMENT_CUT_ALIGNMENT tokens from the run's start", async () => {
        const b = await open(1);
        const long = Array.from({ length: 400 }, (_, i) => (i * 37 + 5) % VOCAB);
        const requests: TokenRequest[] = [
            { tokens: long, nScored: 3 },
            { tokens: [...long.slice(0, 150), 7, 8], nScored: 2 }, // branches off at token 150
        ];
        const alone = [];
        for (const r of requests) alone.push((await scoreTokenRequests(b, [r], { share: false })).results[0]!);
        for (const maxTokensPerCall of [100, 130, 200]) {
            // The real backend, with each call's segment lengths written down on the way through.
            const pieceLengths: number[] = [];
            const recording: ScoringEngine = {
                score: (batch) => {
                    for (let s = 0; s + 1 < batch.segOffsets.length; s++) pieceLengths.push(batch.segOffsets[s + 1]! - batch.segOffsets[s]!);
                    return b.score(batch);
                },
                freeState: (slot) => b.freeState(slot),
            };
            const out = await scoreTokenRequests(recording, requests, { maxTokensPerCall });
            expect(out.results).toEqual(alone);
            // Runs: the shared 150-token trunk, its 249-token branch and the 1-token branch. Every piece but a run's
            // last is a multiple of the alignment, so at most one piece per run is not, and some cut happened.
            expect(pieceLengths.reduce((x, y) => x + y, 0)).toBe(150 + 249 + 1);
            expect(pieceLengths.length).toBeGreaterThan(3);
            expect(pieceLengths.filter((n) => n % SEGMENT_CUT_ALIGNMENT !== 0).length).toBeLessThanOrEqual(3);
        }
    });

    it("sums the per-token log-probs of the continuation in token order", async () => {
        const b = await open(1);
        const tokens = [3, 9, 27, 17, 51, 1];
        const whole = await b.score({
            tokens: Int32Array.from(tokens.slice(0, -1)),
            segOffsets: Int32Array.of(0, 5),
            segInit: Int32Array.of(-1),
            segSave: Int32Array.of(-1),
            scoreRows: Int32Array.of(2, 3, 4),
            scoreTargets: Int32Array.of(17, 51, 1),
        });
        const out = await scoreTokenRequests(b, [{ tokens, nScored: 3 }]);
        expect(out.results[0]!.logprob).toBe(whole.logprobs[0]! + whole.logprobs[1]! + whole.logprobs[2]!);
        expect(out.results[0]!.isGreedy).toBe(whole.greedy.every((g) => g === 1));
    });
});
