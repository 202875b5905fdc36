/**
 * This machine's limits, measured in the same run as the benchmarks: fp32 FMA peak per ISA and memory read
 * bandwidth, from native/bench/bench_limits.cc (built with cmake into native/build).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

/** GFLOP/s (FMA peak) and GB/s (read bandwidth), keyed by thread count ("1", and the benchmark's count). */
export interface MachineLimits {
    fma: { avx2: Record<string, number> | null; avx512: Record<string, number> | null };
    bandwidth: Record<string, number>;
}

/** A problem the bench reports in one line (no stack trace). */
export class BenchSetupError extends Error {}

/** The first line of a failed child process's stderr (or its message). */
function firstLine(e: unknown): string {
    const err = e as { stderr?: Buffer | string; message?: string };
    const text = (err.stderr ? String(err.stderr) : "") || err.message || String(e);
    return text.trim().split("\n")[0] ?? "";
}

/** Builds and runs bench_limits with `threads` threads over a buffer of `mib` MiB. */
export function measureLimits(repoRoot: string, threads: number, mib: number): MachineLimits {
    const buildDir = path.join(repoRoot, "native", "build");
    if (!existsSync(path.join(buildDir, "CMakeCache.txt")))
        throw new BenchSetupError(`${buildDir} is not a configured native build: run \`npm ci\` (or \`npm run build:native\`) first`);
    try {
        execFileSync("cmake", ["--build", buildDir, "--target", "bench_limits"], { stdio: "pipe" });
    } catch (e) {
        const code = (e as { code?: string }).code;
        throw new BenchSetupError(code === "ENOENT" ? "cmake is not on PATH (the bench builds native/bench/bench_limits.cc with it)"
            : `cmake --build ${buildDir} --target bench_limits failed: ${firstLine(e)}`);
    }
    const out = execFileSync(path.join(buildDir, "bench_limits"), [String(threads), String(mib)], { encoding: "utf8" });
    return JSON.parse(out) as MachineLimits;
}

/**
 * The fp32 FMA peak (GFLOP/s) at `threads` threads of an ISA, or NaN where the CPU lacks it: the larger of the
 * figure measured on `threads` threads and `threads` × the 1-thread figure. On a machine other work shares, the
 * many-thread measurement comes out low (its threads wait for cores), which would flatter every "% of peak".
 */
export function isaPeak(l: MachineLimits, isa: "avx2" | "avx512", threads: number): number {
    const f = l.fma[isa];
    if (!f) return NaN;
    return Math.max(f[String(threads)] ?? 0, threads * (f["1"] ?? 0)) || NaN;
}

/** Whether the many-thread peak came out well below threads × the 1-thread one (other work held the cores). */
export function peakLooksShared(l: MachineLimits, threads: number): boolean {
    return (["avx2", "avx512"] as const).some((isa) => {
        const f = l.fma[isa];
        return f !== null && threads > 1 && (f[String(threads)] ?? 0) < 0.9 * threads * (f["1"] ?? 0);
    });
}

/** The best fp32 peak (GFLOP/s) at `threads` threads: AVX-512 where present, else AVX2. */
export function bestPeak(l: MachineLimits, threads: number): { isa: string; gflops: number } {
    const key = String(threads);
    if (l.fma.avx512?.[key] !== undefined) return { isa: "avx512", gflops: l.fma.avx512[key]! };
    return { isa: "avx2", gflops: l.fma.avx2?.[key] ?? NaN };
}

/** Per ISA and thread count, the larger peak of two measurements (the stricter reference for "% of peak"). */
export function maxLimits(a: MachineLimits, b: MachineLimits): MachineLimits {
    const merge = (x: Record<string, number> | null, y: Record<string, number> | null): Record<string, number> | null => {
        if (!x || !y) return x ?? y;
        const out: Record<string, number> = { ...x };
        for (const [k, v] of Object.entries(y)) out[k] = Math.max(out[k] ?? 0, v);
        return out;
    };
    return { fma: { avx2: merge(a.fma.avx2, b.fma.avx2), avx512: merge(a.fma.avx512, b.fma.avx512) }, bandwidth: merge(a.bandwidth, b.bandwidth)! };
}
