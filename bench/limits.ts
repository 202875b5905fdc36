/**
 * This machine's limits, measured in the same run as the benchmarks: fp32 FMA peak per ISA and memory read
 * bandwidth, from native/bench/bench_limits.cc (built with cmake into native/build).
 */
import { execFileSync } from "node:child_process";
import path from "node:path";

/** GFLOP/s (FMA peak) and GB/s (read bandwidth), keyed by thread count ("1", and the benchmark's count). */
export interface MachineLimits {
    fma: { avx2: Record<string, number> | null; avx512: Record<string, number> | null };
    bandwidth: Record<string, number>;
}

/** Builds and runs bench_limits with `threads` threads over a buffer of `mib` MiB. */
export function measureLimits(repoRoot: string, threads: number, mib: number): MachineLimits {
    const buildDir = path.join(repoRoot, "native", "build");
    execFileSync("cmake", ["--build", buildDir, "--target", "bench_limits"], { stdio: "pipe" });
    const out = execFileSync(path.join(buildDir, "bench_limits"), [String(threads), String(mib)], { encoding: "utf8" });
    return JSON.parse(out) as MachineLimits;
}

/** The best fp32 peak (GFLOP/s) at `threads` threads: AVX-512 where present, else AVX2. */
export function bestPeak(l: MachineLimits, threads: number): { isa: string; gflops: number } {
    const key = String(threads);
    if (l.fma.avx512?.[key] !== undefined) return { isa: "avx512", gflops: l.fma.avx512[key]! };
    return { isa: "avx2", gflops: l.fma.avx2?.[key] ?? NaN };
}
