/**
 * lm-eval's perplexity bootstrap: the JS path (bootstrapChunks.ts over pyrandom.ts) and the native addon's
 * resample sums (native/src/cpu/pyrandom_bootstrap.cc) against the spec's CPython vectors and against each
 * other, bit for bit.
 */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { loadAddon } from "../../src/addon/loadAddon.js";
import { inThreadBootstrapReplicates, inThreadResampleSums } from "../../src/metrics/bootstrapChunks.js";
import { bootstrapPerplexityReplicates, bootstrapPerplexityStderr, correctlyRoundedExp } from "../../src/metrics/metrics.js";
import { nativeResampleSums } from "../../src/metrics/nativeResample.js";
import { PyRandom, resampleSumsFromSeed } from "../../src/metrics/pyrandom.js";

// The spec's §1.5 vectors (CPython 3.11 + lm-eval's bootstrap).
const specLls = [-1.5, -0.25, -3.0, -2.125, -0.5, -4.0, -1.0, -0.75];

function expectSameBits(actual: Float64Array, expected: Float64Array): void {
    expect(actual.length).toBe(expected.length);
    const differing: number[] = [];
    for (let i = 0; i < expected.length; i++) if (!Object.is(actual[i], expected[i])) differing.push(i);
    expect(differing).toEqual([]);
}

/** n log-likelihood-like values with all 53 bits random, so that any change of draw or summation order shows. */
function randomValues(n: number, seed: number): Float64Array {
    const rng = new PyRandom(seed);
    return Float64Array.from({ length: n }, () => -rng.random() * 14);
}

/** The JS reference, chunk by chunk straight from pyrandom.ts: chunk c from seed c. */
function referenceSums(values: Float64Array, chunkSize: number, chunkCount: number): Float64Array {
    const sums = new Float64Array(chunkSize * chunkCount);
    for (let c = 0; c < chunkCount; c++) resampleSumsFromSeed(c, values, sums, c * chunkSize, chunkSize);
    return sums;
}

describe("perplexity bootstrap", () => {
    it("reproduces the spec vectors through the JS path, the native path and the default", () => {
        for (const engine of ["js", "native", "auto"] as const) {
            expect(bootstrapPerplexityStderr(specLls, 100000, { engine })).toBe(2.720899536158438);
            expect(bootstrapPerplexityStderr(specLls, 1000, { engine, threads: 1 })).toBe(2.7355111648609305);
        }
        expect(bootstrapPerplexityStderr(specLls, 100000, { engine: "native", threads: 3 })).toBe(2.720899536158438);
    });

    it("makes chunk c from random.Random(c): replicate = exp(-(resample sum / n)), in chunk order", () => {
        const values = Float64Array.from({ length: 700 }, (_, i) => -((i * 37) % 101) / 16);
        const replicates = inThreadBootstrapReplicates(values, 3, 2);
        const expected: number[] = [];
        for (let seed = 0; seed < 2; seed++) {
            const rng = new PyRandom(seed);
            for (let j = 0; j < 3; j++) expected.push(correctlyRoundedExp(-(rng.resampleSum(values) / values.length)));
        }
        expectSameBits(replicates, Float64Array.from(expected));
    });

    it("gives the same replicates natively and in JS at every thread count", () => {
        const values = randomValues(257, 20240607);
        const expected = bootstrapPerplexityReplicates(values, 12000, { engine: "js" });
        expect(expected.length).toBe(12000);
        for (const threads of [1, 2, 3]) expectSameBits(bootstrapPerplexityReplicates(values, 12000, { engine: "native", threads }), expected);
        expectSameBits(inThreadBootstrapReplicates(values, 1000, 12), expected);
    });

    it("refuses a thread count outside [1, 256] with a UsageError", () => {
        for (const threads of [0, 1.5, 257]) {
            expect(() => bootstrapPerplexityReplicates(specLls, 10, { threads })).toThrow(UsageError);
        }
        expect(() => bootstrapPerplexityReplicates(specLls, 10, { threads: 0 })).toThrow(/bootstrap threads: expected an integer in \[1, 256\], got 0/);
    });
});

describe("native bootstrapResampleSums", () => {
    const resampleSums = nativeResampleSums();

    it("is there (the addon is built with it)", () => {
        expect(typeof resampleSums).toBe("function");
    });

    // 312 draws fill a 624-word block exactly; 311 and 313 make resamples end at every offset within a block.
    it.each([1, 2, 311, 312, 313, 5153])("equals resampleSumsFromSeed bit for bit for n = %i at 1, 2 and 3 threads", (n) => {
        const values = randomValues(n, 1000 + n);
        const chunkSize = n > 1000 ? 40 : 700;
        const chunkCount = n > 1000 ? 3 : 5;
        const expected = referenceSums(values, chunkSize, chunkCount);
        expectSameBits(inThreadResampleSums(values, chunkSize, chunkCount), expected);
        for (const threads of [1, 2, 3]) expectSameBits(resampleSums!(values, chunkSize, chunkCount, threads), expected);
    });

    it("reads a Float64Array view at its offset and handles empty shapes", () => {
        const backing = randomValues(400, 7);
        const view = backing.subarray(50, 363); // 313 values
        expectSameBits(resampleSums!(view, 9, 4, 2), referenceSums(Float64Array.from(view), 9, 4));
        expect(resampleSums!(view, 0, 4, 2).length).toBe(0);
        expect(resampleSums!(view, 9, 0, 2).length).toBe(0);
        expectSameBits(resampleSums!(new Float64Array(0), 3, 2, 1), new Float64Array(6)); // n = 0: empty sums
    });

    it("refuses bad arguments with a one-line TypeError naming the argument", () => {
        const addon = loadAddon();
        const values = randomValues(5, 1);
        const cases: Array<[() => unknown, RegExp]> = [
            [() => addon.bootstrapResampleSums(Float32Array.of(1, 2) as never, 1, 1, 1), /^bootstrapResampleSums: values must be a Float64Array$/],
            [() => addon.bootstrapResampleSums([1, 2] as never, 1, 1, 1), /^bootstrapResampleSums: values must be a Float64Array$/],
            [() => addon.bootstrapResampleSums(values, -1, 1, 1), /^bootstrapResampleSums: chunkSize must be an integer in \[0, 2147483647\], got -1$/],
            [() => addon.bootstrapResampleSums(values, 1.5, 1, 1), /^bootstrapResampleSums: chunkSize must be an integer in \[0, 2147483647\], got 1\.5$/],
            [() => addon.bootstrapResampleSums(values, "3" as never, 1, 1), /^bootstrapResampleSums: chunkSize must be an integer .*, got a non-number$/],
            [() => addon.bootstrapResampleSums(values, 1, Number.NaN, 1), /^bootstrapResampleSums: chunkCount must be an integer in \[0, 2147483647\], got NaN$/],
            [() => addon.bootstrapResampleSums(values, 1, 1, 0), /^bootstrapResampleSums: threads must be an integer in \[1, 256\], got 0$/],
            [() => addon.bootstrapResampleSums(values, 1, 1, 257), /^bootstrapResampleSums: threads must be an integer in \[1, 256\], got 257$/],
            [() => (addon.bootstrapResampleSums as (...args: unknown[]) => unknown)(values, 1, 1), /^bootstrapResampleSums: threads must be an integer in \[1, 256\], got a non-number$/],
            [() => addon.bootstrapResampleSums(values, 100000, 100000, 1), /^bootstrapResampleSums: chunkSize·chunkCount must be at most 2147483647, got 100000·100000$/],
        ];
        for (const [call, message] of cases) {
            let thrown: unknown;
            try {
                call();
            } catch (e) {
                thrown = e;
            }
            expect(thrown).toBeInstanceOf(TypeError);
            expect((thrown as Error).message).toMatch(message);
        }
    });
});
