/**
 * Peak resident memory of a model in a fresh child process (bench/memoryProbe.ts): VmHWM vs the budget
 * 1.15 × weight bytes + activations (+ the Node runtime's own resident set before the model loads).
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { activationBytes, benchCacheDir, benchSpec, randomCheckpoint, type BenchShape } from "./randomCheckpoint.js";

export interface MemoryResult {
    model: string;
    weightType: string;
    weightBytes: number;
    activationBytes: number;
    runtimeBytes: number;
    peakBytes: number;
    /** (peak − runtime) / (1.15 × weights + activations); ≤ 1 meets the target. */
    ratio: number;
}

export function measureMemory(repoRoot: string, shape: BenchShape, weightType: "f32" | "bf16", T: number, threads: number): MemoryResult {
    const spec = benchSpec(shape, randomCheckpoint(shape), threads, weightType);
    const specFile = path.join(benchCacheDir(), `${shape.name}-${weightType}-spec.json`);
    writeFileSync(specFile, JSON.stringify(spec));
    const out = execFileSync(process.execPath, ["--import", "tsx", path.join(repoRoot, "bench", "memoryProbe.ts"), specFile, String(T)], {
        cwd: repoRoot, encoding: "utf8",
    });
    const r = JSON.parse(out.trim().split("\n").pop()!) as { baselineKiB: number; peakKiB: number; weightBytes: number };
    const act = activationBytes(shape, T);
    const runtime = r.baselineKiB * 1024, peak = r.peakKiB * 1024;
    return {
        model: shape.name, weightType, weightBytes: r.weightBytes, activationBytes: act, runtimeBytes: runtime, peakBytes: peak,
        ratio: (peak - runtime) / (1.15 * r.weightBytes + act),
    };
}
