/**
 * The scheduler on the real native backend: results with prefix sharing, at several call sizes, slot budgets
 * and thread counts, must be bit-identical to scoring every request alone. Its one-deep pipeline (call k+1
 * built while call k runs) must send the engine exactly the calls and slot frees the sequential scheduler sent,
 * and stop cleanly on errors and aborts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NumericError } from "../../src/errors.js";
import type { TokenRequest } from "../../src/lm/encodePair.js";
import type { ScoreBatch, ScoreOutput } from "../../src/addon/addonTypes.js";
import { SEGMENT_CUT_ALIGNMENT, scoreTokenRequests, type ScoringEngine } from "../../src/lm/scheduler.js";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { writeRandomCheckpoint } from "./randomCheckpoint.js";

/** The call size and slot cap these tests were written for (the CPU's 8192 tokens per call). */
const DEFAULTS = { maxTokensPerCall: 8192, maxStateSlots: 64 };

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
        for (const r of requests) alone.push((await scoreTokenRequests(one, [r], { ...DEFAULTS, share: false })).results[0]!);
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
            const out = await scoreTokenRequests(v.backend, requests, { ...DEFAULTS, ...v, onResult: (i) => seen.push(i) });
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
        for (const r of requests) alone.push((await scoreTokenRequests(b, [r], { ...DEFAULTS, share: false })).results[0]!);
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
            const out = await scoreTokenRequests(recording, requests, { ...DEFAULTS, maxTokensPerCall });
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
        const out = await scoreTokenRequests(b, [{ tokens, nScored: 3 }], DEFAULTS);
        expect(out.results[0]!.logprob).toBe(whole.logprobs[0]! + whole.logprobs[1]! + whole.logprobs[2]!);
        expect(out.results[0]!.isGreedy).toBe(whole.greedy.every((g) => g === 1));
    });
});


/** A call as one line: each piece as "init>save tokens", then the scored "row:target" pairs. */
function describeBatch(b: ScoreBatch): string {
    const pieces: string[] = [];
    for (let i = 0; i + 1 < b.segOffsets.length; i++) {
        pieces.push(`${b.segInit[i]}>${b.segSave[i]} ${[...b.tokens.subarray(b.segOffsets[i], b.segOffsets[i + 1])].join(",")}`);
    }
    const rows = [...b.scoreRows].map((r, j) => `${r}:${b.scoreTargets[j]}`).join(",");
    return `score ${pieces.join(" | ")} ; ${rows}`;
}

/** 32-bit FNV-1a of a string, as 8 hex digits. */
function fnv1a(text: string): string {
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
        h ^= text.charCodeAt(i);
        h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h.toString(16).padStart(8, "0");
}

const macrotask = (ms = 0) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Wraps `inner`: writes every call and slot free into `events` in the order the engine sees them, counts
 * calls and checks that no two are outstanding at once. `settle` may delay or replace a call's outcome.
 */
function recordingEngine(
    inner: ScoringEngine,
    settle: (call: number, output: Promise<ScoreOutput>, batch: ScoreBatch) => Promise<ScoreOutput> = (_, output) => output,
) {
    const log = { events: [] as string[], calls: 0, outstanding: 0, mostOutstanding: 0 };
    const engine: ScoringEngine = {
        score: (batch) => {
            log.calls++;
            log.outstanding++;
            log.mostOutstanding = Math.max(log.mostOutstanding, log.outstanding);
            log.events.push(describeBatch(batch));
            return settle(log.calls, inner.score(batch), batch).finally(() => log.outstanding--);
        },
        freeState: (slot) => {
            log.events.push(`free ${slot}`);
            inner.freeState(slot);
        },
    };
    return { engine, log };
}

/** Runs the scheduler with its callbacks written into the same event list as the engine's calls. */
async function recordRun(engine: ScoringEngine, events: string[], requests: TokenRequest[], options: { maxTokensPerCall: number; maxStateSlots: number }) {
    return scoreTokenRequests(engine, requests, {
        ...DEFAULTS,
        ...options,
        onResult: (i) => events.push(`result ${i}`),
        onProgress: (done, tokens) => events.push(`progress ${done} ${tokens}`),
    });
}

describe("scheduler pipeline (call k+1 built while call k runs)", () => {
    let dir: string;
    let backend: NativeBackend;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    beforeAll(async () => {
        dir = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-pipe-"));
        writeRandomCheckpoint(dir, { family: "mamba1", dModel: 16, nLayer: 2, vocab: VOCAB, dState: 8 }, 11);
        backend = await NativeBackend.create(await loadCheckpoint(dir), { threads: 1 });
    });
    afterAll(async () => {
        await backend[Symbol.asyncDispose]();
        rmSync(dir, { recursive: true, force: true });
    });
    beforeEach(() => {
        unhandled.length = 0;
        process.on("unhandledRejection", onUnhandled);
    });
    afterEach(async () => {
        await macrotask(5); // a rejection nobody handled is reported after the microtasks drain
        process.off("unhandledRejection", onUnhandled);
        expect(unhandled).toEqual([]);
    });
    const aloneResults = async (requests: TokenRequest[]) => {
        const alone = [];
        for (const r of requests) alone.push((await scoreTokenRequests(backend, [r], { ...DEFAULTS, share: false })).results[0]!);
        return alone;
    };

    it("fills call k+1's arrays while call k runs, with never two calls outstanding", async () => {
        // Every token the scheduler reads from the requests is counted (it reads them only to fill calls).
        let reads = 0;
        const requests = taskLikeRequests(3).map((r) => ({
            nScored: r.nScored,
            tokens: new Proxy(r.tokens, {
                get(target, key, receiver) {
                    if (typeof key === "string" && /^\d+$/.test(key)) reads++;
                    return Reflect.get(target, key, receiver) as unknown;
                },
            }),
        }));
        const callTokens: number[] = [];
        const readWhileRunning: number[] = [];
        const { engine, log } = recordingEngine(backend, async (_, output) => {
            const readsAtSubmit = reads;
            const out = await output;
            await macrotask(); // the scheduler has done all it can without this call's results
            readWhileRunning.push(reads - readsAtSubmit);
            return out;
        });
        const counting: ScoringEngine = {
            score: (batch) => {
                callTokens.push(batch.tokens.length);
                return engine.score(batch);
            },
            freeState: (slot) => engine.freeState(slot),
        };
        const out = await scoreTokenRequests(counting, requests, { ...DEFAULTS, maxTokensPerCall: 30 });
        expect(out.results).toEqual(await aloneResults(taskLikeRequests(3)));
        expect(log.calls).toBeGreaterThan(5);
        expect(log.mostOutstanding).toBe(1);
        // While call k ran, exactly call k+1's tokens were read (all of them), and nothing after the last call.
        expect(readWhileRunning).toEqual([...callTokens.slice(1), 0]);
    });

    it("sends the engine the same calls, slot frees and callbacks as the sequential scheduler", async () => {
        // Recorded from the sequential scheduler (commit 6176524) on these requests, checked by hand: the shared
        // [1,2] trunk saves slot 0, [3,4,5] is cut at the 4-token cap and chained through slot 1, the slot budget
        // of 2 forces the second call out before [7,7,7,7] takes slot 1 again, and each slot is freed right after
        // the call in which its last reader ran.
        const tiny: TokenRequest[] = [
            { tokens: [1, 2, 3, 4, 5, 6], nScored: 2 },
            { tokens: [1, 2, 3, 9], nScored: 1 },
            { tokens: [1, 2, 7, 7, 7, 7, 7], nScored: 3 },
            { tokens: [6, 5], nScored: 1 },
        ];
        const tinyEvents = [
            "score -1>0 1,2 | 0>1 3,4 ; 3:5,2:9", "result 1", "progress 1 4",
            "score 1>-1 5 ; 0:6", "result 0", "progress 2 5", "free 1",
            "score 0>1 7,7,7 | 1>-1 7 ; 2:7,1:7,3:7", "result 2", "progress 3 9", "free 0", "free 1",
            "score -1>-1 6 ; 0:5", "result 3", "progress 4 10",
        ];
        // Digests of the sequential scheduler's event lists (joined by "\n") on taskLikeRequests(3).
        const recorded = [
            { options: { maxTokensPerCall: 4, maxStateSlots: 2 }, requests: tiny, calls: 4, events: tinyEvents },
            { options: { maxTokensPerCall: 7, maxStateSlots: 3 }, requests: taskLikeRequests(3), calls: 47, digest: "cdce6160" },
            { options: { maxTokensPerCall: 50, maxStateSlots: 2 }, requests: taskLikeRequests(3), calls: 13, digest: "b20f7c22" },
            { options: { maxTokensPerCall: 30, maxStateSlots: 64 }, requests: taskLikeRequests(3), calls: 11, digest: "15e1e700" },
        ];
        for (const r of recorded) {
            const alone = await aloneResults(r.requests);
            // The backend as is, then with every call held back a few timer ticks (call k's successor is then
            // long built when it finishes), then replaying those outputs from already-resolved promises.
            const outputs = new Map<string, ScoreOutput>();
            const plain = recordingEngine(backend, async (_, output, batch) => {
                const out = await output;
                outputs.set(describeBatch(batch), out);
                return out;
            });
            const slow = recordingEngine(backend, async (call, output) => {
                const out = await output;
                await macrotask(call % 3);
                return out;
            });
            const replay: ScoringEngine = { score: (batch) => Promise.resolve(outputs.get(describeBatch(batch))!), freeState: () => undefined };
            const replayed = recordingEngine(replay);
            for (const { engine, log } of [plain, slow, replayed]) {
                const out = await recordRun(engine, log.events, r.requests, r.options);
                expect(out.results).toEqual(alone);
                expect(log.calls).toBe(r.calls);
                expect(log.mostOutstanding).toBe(1);
                if (r.events) expect(log.events).toEqual(r.events);
                else expect(fnv1a(log.events.join("\n"))).toBe(r.digest);
            }
        }
    });

    it("rejects with the engine's error when call 2 fails, and submits nothing after it", async () => {
        for (const when of ["at once", "later"] as const) {
            const failure = new Error(`engine failed on call 2 (${when})`);
            const { engine, log } = recordingEngine(backend, async (call, output) => {
                if (call !== 2) return output;
                if (when === "later") await macrotask(2);
                throw failure;
            });
            const seen: number[] = [];
            await expect(scoreTokenRequests(engine, taskLikeRequests(3), { ...DEFAULTS, maxTokensPerCall: 30, onResult: (i) => seen.push(i) })).rejects.toBe(failure);
            await macrotask(10);
            expect(log.calls).toBe(2);
            expect(log.mostOutstanding).toBe(1);
            expect(seen.length).toBeGreaterThan(0); // call 1's results came in
            // The slots freed are those freed after call 1 in a run that succeeds; none after the failed call.
            const full = recordingEngine(backend);
            await scoreTokenRequests(full.engine, taskLikeRequests(3), { ...DEFAULTS, maxTokensPerCall: 30 });
            const secondCall = full.log.events.findIndex((e, i) => i > 0 && e.startsWith("score"));
            expect(log.events.filter((e) => e.startsWith("free"))).toEqual(full.log.events.slice(0, secondCall).filter((e) => e.startsWith("free")));
        }
    });

    it("rejects with a NumericError when call 2 returns a NaN log-prob, and submits nothing after it", async () => {
        const { engine, log } = recordingEngine(backend, async (call, output) => {
            const out = await output;
            return call === 2 ? { ...out, logprobs: out.logprobs.map((v, j) => (j === 0 ? Number.NaN : v)) } : out;
        });
        await expect(scoreTokenRequests(engine, taskLikeRequests(3), { ...DEFAULTS, maxTokensPerCall: 30 })).rejects.toThrow(NumericError);
        await macrotask(10);
        expect(log.calls).toBe(2);
    });

    it("stops at an abort: the call running then finishes, nothing is submitted after it", async () => {
        const controller = new AbortController();
        const { engine, log } = recordingEngine(backend, async (call, output) => {
            if (call === 2) controller.abort();
            return output;
        });
        const seen: string[] = [];
        const error = await scoreTokenRequests(engine, taskLikeRequests(3), {
        ...DEFAULTS,
            maxTokensPerCall: 30,
            signal: controller.signal,
            onProgress: (done) => seen.push(`progress ${done}`),
        }).then(() => undefined, (e: unknown) => e);
        expect(error).toMatchObject({ name: "AbortError" });
        expect(log.outstanding).toBe(0); // call 2 had finished (results in) when the abort was reported
        const seenAtRejection = seen.length;
        await macrotask(10);
        expect(log.calls).toBe(2);
        expect(seen.length).toBe(seenAtRejection);
        expect(seenAtRejection).toBe(2);
        // Aborted before the start: no call at all.
        const before = recordingEngine(backend);
        await expect(scoreTokenRequests(before.engine, taskLikeRequests(3), { ...DEFAULTS, signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });
        expect(before.log.calls).toBe(0);
    });
});
