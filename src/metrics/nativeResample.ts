/**
 * The native addon's bootstrap resample sums (addonTypes.ts `NativeAddon.bootstrapResampleSums`), when there is
 * an addon that has them: the same numbers as bootstrapChunks.ts `inThreadResampleSums`, bit for bit, several
 * times faster and on several threads. metrics.ts falls back to the JS path when this returns undefined.
 */
import { loadAddon } from "../addon/loadAddon.js";
import type { NativeAddon } from "../addon/addonTypes.js";

/** (values, chunkSize, chunkCount, threads) → chunkCount × chunkSize resample sums, chunk c from random.Random(c). */
export type ResampleSumsFunction = NativeAddon["bootstrapResampleSums"];

let probed = false;
let cached: ResampleSumsFunction | undefined;

/**
 * The addon's `bootstrapResampleSums`, or undefined when the addon is not built, fails to load, or is an older
 * build without it. Probed once per process.
 */
export function nativeResampleSums(): ResampleSumsFunction | undefined {
    if (!probed) {
        probed = true;
        try {
            const addon: Partial<NativeAddon> = loadAddon();
            const resampleSums = addon.bootstrapResampleSums;
            if (typeof resampleSums === "function") cached = resampleSums.bind(addon);
        } catch {
            cached = undefined; // no usable addon: the caller computes the sums in JS (same results)
        }
    }
    return cached;
}
