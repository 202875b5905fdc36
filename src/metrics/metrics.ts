/**
 * lm-eval's metric aggregations and standard errors (`lm_eval/api/metrics.py`), with Python's float semantics:
 *
 * - `mean(xs)`: plain left-to-right sum divided by n (CPython ≤ 3.11 `sum`).
 * - `perplexity(lls)`: `exp(-mean(lls))`, per-document (per-target) perplexity.
 * - `sampleStddev(xs)`: Bessel-corrected (n − 1); `meanStderr(xs)` = sampleStddev / √n.
 * - `bootstrapPerplexityStderr(lls, iters)`: lm-eval's perplexity stderr: chunks of min(1000, iters) resamples,
 *   chunk i drawn with `random.Random(i).choices(xs, k=n)`, stderr = sampleStddev of all replicate perplexities
 *   (the draws in the native addon on several threads when it loads, else in JS in this thread; the same bits
 *   either way: bootstrapChunks.ts, nativeResample.ts).
 * - `correctlyRoundedExp(x)`: Python's math.exp bit for bit (re-exported from exactExp.ts).
 * - `aggregate(name, items)` / `stderrFor(name, items, bootstrapIters)`: dispatch by aggregation name, returning
 *   `"N/A"` where lm-eval does (one item, or bootstrapIters ≤ 0).
 */
import os from "node:os";
import { NativeError, UsageError } from "../errors.js";
import { inThreadResampleSums, replicatesFromSums } from "./bootstrapChunks.js";
import { correctlyRoundedExp } from "./exactExp.js";
import { nativeResampleSums } from "./nativeResample.js";

export { correctlyRoundedExp } from "./exactExp.js";

/** Aggregations used by the six tasks. */
export type AggregationName = "mean" | "perplexity";

/** lm-eval's `mean`: left-to-right float sum / n. */
export function mean(xs: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < xs.length; i++) total += xs[i]!;
    return total / xs.length;
}

/** lm-eval's `perplexity` aggregation: exp(−mean(log-likelihoods)). */
export function perplexity(lls: ArrayLike<number>): number {
    return correctlyRoundedExp(-mean(lls));
}

/** Sample standard deviation with n − 1 in the denominator (lm-eval's `sample_stddev`). */
export function sampleStddev(xs: ArrayLike<number>): number {
    const mu = mean(xs);
    let total = 0;
    for (let i = 0; i < xs.length; i++) {
        const d = xs[i]! - mu;
        total += d * d;
    }
    return Math.sqrt(total / (xs.length - 1));
}

/** Standard error of the mean: sampleStddev / √n (lm-eval's `mean_stderr`). */
export function meanStderr(xs: ArrayLike<number>): number {
    return sampleStddev(xs) / Math.sqrt(xs.length);
}

/** Most threads the native bootstrap takes (the addon's limit). */
const MAX_BOOTSTRAP_THREADS = 256;

/** Where and how the bootstrap draws are made; its results never depend on these. */
export interface BootstrapOptions {
    /**
     * "auto" (default): the native addon when it loads, else JS in this thread. "native": the addon or a
     * NativeError. "js": JS in this thread (the reference the addon is tested against).
     */
    engine?: "auto" | "native" | "js";
    /** Threads of the native path, this one included: an integer in [1, 256] (default os.availableParallelism()). */
    threads?: number;
}

function bootstrapThreads(threads: number | undefined): number {
    if (threads === undefined) return Math.min(os.availableParallelism(), MAX_BOOTSTRAP_THREADS);
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_BOOTSTRAP_THREADS) {
        throw new UsageError(`bootstrap threads: expected an integer in [1, ${MAX_BOOTSTRAP_THREADS}], got ${threads}`);
    }
    return threads;
}

/**
 * The perplexity replicates lm-eval's bootstrap draws: for chunk i = 0 .. iters/chunk − 1 a fresh
 * `random.Random(i)` makes `chunk` resamples of size n with `choices`; each replicate is `perplexity(resample)`
 * = exp(-(resample sum / n)). Returned in lm-eval's order (chunk by chunk). The resample sums come from the
 * native addon (on `threads` threads) when it loads, else from JS in this thread, bit for bit the same; the
 * exp is always taken here. Synchronous either way.
 */
export function bootstrapPerplexityReplicates(lls: ArrayLike<number>, iters: number, options: BootstrapOptions = {}): Float64Array {
    const engine = options.engine ?? "auto";
    const threads = bootstrapThreads(options.threads);
    if (!(iters >= 1)) return new Float64Array(0);
    const values = Float64Array.from(lls);
    const chunkSize = Math.min(1000, iters);
    const chunkCount = Math.floor(iters / chunkSize);
    const native = engine === "js" ? undefined : nativeResampleSums();
    if (engine === "native" && native === undefined) {
        throw new NativeError("bootstrap engine \"native\": the native addon is not built or lacks bootstrapResampleSums (run `npm run build:native`)");
    }
    const sums = native ? native(values, chunkSize, chunkCount, threads) : inThreadResampleSums(values, chunkSize, chunkCount);
    return replicatesFromSums(sums, values.length);
}

/** lm-eval's bootstrap stderr of the perplexity aggregation (deterministic; independent of --seed and threads). */
export function bootstrapPerplexityStderr(lls: ArrayLike<number>, iters: number, options: BootstrapOptions = {}): number {
    return sampleStddev(bootstrapPerplexityReplicates(lls, iters, options));
}

/** Aggregates per-document metric items the way the named lm-eval aggregation does. */
export function aggregate(aggregation: AggregationName, items: ArrayLike<number>): number {
    return aggregation === "perplexity" ? perplexity(items) : mean(items);
}

/**
 * lm-eval's stderr for an aggregation (`stderr_for_metric` + the evaluator's guards): `"N/A"` when
 * bootstrapIters ≤ 0 or fewer than two items; mean → meanStderr; perplexity → bootstrap.
 */
export function stderrFor(aggregation: AggregationName, items: ArrayLike<number>, bootstrapIters: number): number | "N/A" {
    if (!(bootstrapIters > 0) || items.length <= 1) return "N/A";
    return aggregation === "perplexity" ? bootstrapPerplexityStderr(items, bootstrapIters) : meanStderr(items);
}
