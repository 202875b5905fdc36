/**
 * Prefill and decode speed of one model on the native CPU backend: score() of one long sequence with the
 * LM head on every row, step() of one sequence, and step() of several sequences at once. Times are the
 * median of `reps` runs after a warm-up (one full-length score() for prefill, three steps for decode).
 */
import { NativeBackend } from "../src/backend/NativeBackend.js";
import type { ScoreBatch } from "../src/addon/addonTypes.js";
import { benchSpec, flopsPerToken, randomCheckpoint, type BenchShape } from "./randomCheckpoint.js";

/** Median of a list of numbers. */
export function median(xs: readonly number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Deterministic pseudo-random token ids in [0, vocab). */
export function tokenStream(n: number, vocab: number, seed = 7): number[] {
    let x = seed;
    return Array.from({ length: n }, () => {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        return (x >>> 8) % vocab;
    });
}

/** One segment of `tokens` from the zero state, every row scored against the next token (LM head on all rows). */
export function fullScoreBatch(tokens: readonly number[]): ScoreBatch {
    const T = tokens.length;
    return {
        tokens: Int32Array.from(tokens),
        segOffsets: Int32Array.from([0, T]),
        segInit: Int32Array.from([-1]),
        segSave: Int32Array.from([-1]),
        scoreRows: Int32Array.from({ length: T }, (_, i) => i),
        scoreTargets: Int32Array.from({ length: T }, (_, i) => tokens[(i + 1) % T]!),
    };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
    const t0 = performance.now();
    await fn();
    return (performance.now() - t0) / 1000;
}

export interface PrefillResult {
    model: string;
    weightType: string;
    isa: string;
    tokens: number;
    /** Timed calls (after one warm-up); seconds and tokPerSec are their median. */
    reps: number;
    seconds: number;
    tokPerSec: number;
    /** The slowest and the fastest call. */
    minTokPerSec: number;
    maxTokPerSec: number;
    /** flopsPerToken (weight products, and attention's QKᵀ and A·V at 2·T·d per attention layer) × tok/s. */
    gflops: number;
}

/** Opens a model with MAMBA_EVAL_ISA set to `isa` ("auto": left as it is), which the backend reads when it starts. */
async function openWithIsa(shape: BenchShape, threads: number, weightType: "f32" | "bf16", isa: "auto" | "avx2" | "avx512"): Promise<NativeBackend> {
    const before = process.env.MAMBA_EVAL_ISA;
    if (isa !== "auto") process.env.MAMBA_EVAL_ISA = isa;
    try {
        return await NativeBackend.fromSpec(benchSpec(shape, randomCheckpoint(shape), threads, weightType));
    } finally {
        if (before === undefined) delete process.env.MAMBA_EVAL_ISA;
        else process.env.MAMBA_EVAL_ISA = before;
    }
}

/** Prefill: score() of one sequence of T tokens with the LM head on every row, on the GEMM/scan ISA `isa`. */
export async function benchPrefill(shape: BenchShape, T: number, reps: number, threads: number, weightType: "f32" | "bf16" = "f32",
    isa: "auto" | "avx2" | "avx512" = "auto"): Promise<PrefillResult> {
    const model = await openWithIsa(shape, threads, weightType, isa);
    try {
        const batch = fullScoreBatch(tokenStream(T, shape.vocab));
        // Warm-up at the full length: the first call at a new T touches its scratch (tens of MB at T = 1024)
        // for the first time, which costs 5–20 µs per 4 KiB page on this VM.
        await model.score(batch);
        const times: number[] = [];
        for (let r = 0; r < reps; r++) times.push(await timed(() => model.score(batch)));
        const sec = median(times);
        return {
            model: shape.name, weightType, isa: model.info().isa, tokens: T, reps, seconds: sec, tokPerSec: T / sec,
            minTokPerSec: T / Math.max(...times), maxTokPerSec: T / Math.min(...times),
            gflops: (T * flopsPerToken(shape, T)) / sec / 1e9,
        };
    } finally {
        await model[Symbol.asyncDispose]();
    }
}

export interface DecodeResult {
    model: string;
    weightType: string;
    weightBytes: number;
    /** tok/s (all sequences together) per batch size. */
    tokPerSec: Record<number, number>;
}

/** Decode: `steps` step() calls for batches of each size in `batchSizes` (one slot per sequence). */
export async function benchDecode(shape: BenchShape, weightType: "f32" | "bf16", batchSizes: readonly number[], steps: number, threads: number): Promise<DecodeResult> {
    const model = await NativeBackend.fromSpec(benchSpec(shape, randomCheckpoint(shape), threads, weightType));
    try {
        const out: Record<number, number> = {};
        for (const B of batchSizes) {
            const slots = Int32Array.from({ length: B }, (_, i) => i);
            const toks = tokenStream(steps + 1, shape.vocab, 11 + B);
            // Warm-up: the first steps touch the state slots and, on this VM, pay a first-access cost per
            // weight page for about two passes.
            for (let w = 0; w < 3; w++) await model.step(slots, new Int32Array(B).fill(toks[0]!));
            const times: number[] = [];
            for (let s = 1; s <= steps; s++) {
                const tokens = new Int32Array(B).fill(toks[s]!);
                times.push(await timed(() => model.step(slots, tokens)));
            }
            out[B] = B / median(times);
            for (let i = 0; i < B; i++) model.freeState(i);
        }
        return { model: shape.name, weightType, weightBytes: model.info().weightBytes, tokPerSec: out };
    } finally {
        await model[Symbol.asyncDispose]();
    }
}
