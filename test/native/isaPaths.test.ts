/**
 * The AVX-512 and AVX2 GEMM paths (chosen by CPUID, forced with MAMBA_EVAL_ISA) must give bit-identical
 * results, so committed baselines do not change between machines. Each path is forced in turn on tiny
 * Mamba-1/Mamba-2 checkpoints whose dimensions leave tails everywhere (K not a multiple of 8, odd row
 * counts, weight-row counts not a multiple of the tile), with f32 and bf16 compute weights.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import type { ScoreBatch } from "../../src/addon/addonTypes.js";
import { MAMBA1_SHAPE, MAMBA2_SHAPE, randomWeights, removeTempDirs, tempDir, tinySpec, writeSafetensors, type TinyShape } from "./tinyModel.js";

afterAll(removeTempDirs);

/** Whether this CPU reports AVX-512F (read from /proc/cpuinfo, independently of the addon). */
function cpuHasAvx512(): boolean {
    try {
        return /^flags\s*:.*\bavx512f\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
    } catch {
        return false;
    }
}

/** Creates a model with MAMBA_EVAL_ISA set to `isa` (restored afterwards). */
async function withIsa<T>(isa: string, make: () => Promise<T>): Promise<T> {
    const before = process.env.MAMBA_EVAL_ISA;
    process.env.MAMBA_EVAL_ISA = isa;
    try {
        return await make();
    } finally {
        if (before === undefined) delete process.env.MAMBA_EVAL_ISA;
        else process.env.MAMBA_EVAL_ISA = before;
    }
}

/** Two sequences of 37 and 10 tokens from the zero state, logits of every row (47 rows: an odd count). */
function batch(vocab: number): ScoreBatch {
    const a = Array.from({ length: 37 }, (_, i) => (i * 7 + 3) % vocab);
    const b = Array.from({ length: 10 }, (_, i) => (i * 13 + 1) % vocab);
    const T = a.length + b.length;
    return {
        tokens: Int32Array.from([...a, ...b]),
        segOffsets: Int32Array.from([0, a.length, T]),
        segInit: Int32Array.from([-1, -1]),
        segSave: Int32Array.from([-1, -1]),
        scoreRows: Int32Array.from({ length: T - 1 }, (_, i) => i),
        scoreTargets: Int32Array.from({ length: T - 1 }, (_, i) => [...a, ...b][i + 1]!),
        logitRows: Int32Array.from({ length: T }, (_, i) => i),
    };
}

function bytesOf(a: Float32Array | Float64Array): Buffer {
    return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

const shapes: Array<[string, TinyShape]> = [
    ["Mamba-1, dt_rank 5, d_model 36", { ...MAMBA1_SHAPE, dModel: 36, vocab: 75, dtRank: 5 }],
    ["Mamba-2, d_state 12", { ...MAMBA2_SHAPE, vocab: 71 }],
];
const have512 = cpuHasAvx512();

describe.each(shapes)("GEMM ISA paths: %s", (_name, shape) => {
    for (const weightType of ["f32", "bf16"] as const) {
        it(`gives bit-identical logits and log-probs with MAMBA_EVAL_ISA=avx2 and =avx512 (${weightType} weights)`, async () => {
            const weights = randomWeights(shape, 4321, weightType === "bf16");
            const tensors = writeSafetensors(path.join(tempDir(), "m.safetensors"), weights);
            const spec = tinySpec(weights, tensors, 2, weightType);
            const avx2 = await withIsa("avx2", () => NativeBackend.fromSpec(spec));
            expect(avx2.info().isa).toBe("avx2+fma");
            const ref = await avx2.score(batch(shape.vocab));
            avx2.dispose();
            if (!have512) {
                await expect(withIsa("avx512", () => NativeBackend.fromSpec(spec))).rejects.toThrow(/MAMBA_EVAL_ISA=avx512.*lacks AVX-512F/);
                return;
            }
            for (const threads of [1, 2]) {
                const m = await withIsa("avx512", () => NativeBackend.fromSpec(tinySpec(weights, tensors, threads, weightType)));
                expect(m.info().isa).toBe("avx512f+avx2+fma");
                const out = await m.score(batch(shape.vocab));
                m.dispose();
                expect(bytesOf(out.logits).equals(bytesOf(ref.logits))).toBe(true);
                expect(bytesOf(out.logprobs).equals(bytesOf(ref.logprobs))).toBe(true);
            }
        });
    }
});

/** Logits of five step() calls of one sequence (T = 1: the decode GEMV path), concatenated. */
async function stepLogits(model: NativeBackend, vocab: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let i = 0; i < 5; i++) parts.push(Buffer.from(bytesOf(await model.step(Int32Array.from([0]), Int32Array.from([(i * 11 + 2) % vocab])))));
    return Buffer.concat(parts);
}

describe.each(shapes)("GEMM ISA paths at T = 1 (decode): %s", (_name, shape) => {
    for (const weightType of ["f32", "bf16"] as const) {
        it(`gives bit-identical step() logits with MAMBA_EVAL_ISA=avx2 and =avx512 (${weightType} weights)`, async () => {
            if (!have512) return;  // the rejection is covered above
            const weights = randomWeights(shape, 987, weightType === "bf16");
            const tensors = writeSafetensors(path.join(tempDir(), "m.safetensors"), weights);
            const avx2 = await withIsa("avx2", () => NativeBackend.fromSpec(tinySpec(weights, tensors, 2, weightType)));
            const ref = await stepLogits(avx2, shape.vocab);
            avx2.dispose();
            for (const threads of [1, 2]) {
                const m = await withIsa("avx512", () => NativeBackend.fromSpec(tinySpec(weights, tensors, threads, weightType)));
                const got = await stepLogits(m, shape.vocab);
                m.dispose();
                expect(got.equals(ref)).toBe(true);
            }
        });
    }
});

describe("MAMBA_EVAL_ISA", () => {
    it("rejects an unknown value with one line naming the variable", async () => {
        const weights = randomWeights(MAMBA1_SHAPE, 1);
        const spec = tinySpec(weights, writeSafetensors(path.join(tempDir(), "m.safetensors"), weights));
        await expect(withIsa("sse2", () => NativeBackend.fromSpec(spec))).rejects.toThrow(
            /MAMBA_EVAL_ISA must be auto, avx2 or avx512, got "sse2"/,
        );
    });

    it("auto picks AVX-512 exactly when the CPU has it", async () => {
        const weights = randomWeights(MAMBA1_SHAPE, 2);
        const spec = tinySpec(weights, writeSafetensors(path.join(tempDir(), "m.safetensors"), weights));
        const m = await withIsa("auto", () => NativeBackend.fromSpec(spec));
        expect(m.info().isa).toBe(have512 ? "avx512f+avx2+fma" : "avx2+fma");
        m.dispose();
    });
});
