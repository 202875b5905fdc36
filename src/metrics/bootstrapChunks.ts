/**
 * lm-eval's perplexity bootstrap, chunk by chunk, in this thread. lm-eval draws its replicates in independent
 * chunks: chunk c is `chunkSize` resamples made by a fresh `random.Random(c)`, replicate = perplexity(resample)
 * = exp(-(resample sum / n)). The work splits in two steps, so that the native addon can do the first
 * (metrics.ts picks; nativeResample.ts) with the same results bit for bit:
 *
 * - `inThreadResampleSums(values, chunkSize, chunkCount)`: every chunk's resample sums, chunk after chunk (the
 *   JS reference of the addon's `bootstrapResampleSums`).
 * - `replicatesFromSums(sums, n)`: each sum → exp(-(sum / n)), correctly rounded like Python's math.exp.
 *
 * `inThreadBootstrapReplicates` is the two together.
 */
import { correctlyRoundedExp } from "./exactExp.js";
import { resampleSumsFromSeed } from "./pyrandom.js";

/** chunkCount × chunkSize resample sums in lm-eval's order: chunk c from `random.Random(c)`, c-major. */
export function inThreadResampleSums(values: Float64Array, chunkSize: number, chunkCount: number): Float64Array {
    const sums = new Float64Array(chunkSize * chunkCount);
    for (let chunk = 0; chunk < chunkCount; chunk++) resampleSumsFromSeed(chunk, values, sums, chunk * chunkSize, chunkSize);
    return sums;
}

/** Turns resample sums of n values into replicate perplexities, exp(-(sum / n)), in place; returns `sums`. */
export function replicatesFromSums(sums: Float64Array, n: number): Float64Array {
    for (let i = 0; i < sums.length; i++) sums[i] = correctlyRoundedExp(-(sums[i]! / n));
    return sums;
}

/** All chunks in this thread, in order: lm-eval's replicates (chunkCount × chunkSize). */
export function inThreadBootstrapReplicates(values: Float64Array, chunkSize: number, chunkCount: number): Float64Array {
    return replicatesFromSums(inThreadResampleSums(values, chunkSize, chunkCount), values.length);
}
