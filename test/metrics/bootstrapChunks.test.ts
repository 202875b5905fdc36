import { describe, expect, it } from "vitest";
import { bootstrapWorkerSource, inThreadBootstrapReplicates, parallelBootstrapReplicates } from "../../src/harness/bootstrapChunks.js";
import { bootstrapPerplexityReplicates, bootstrapPerplexityStderr, correctlyRoundedExp, sampleStddev } from "../../src/harness/metrics.js";
import { PyRandom } from "../../src/harness/pyrandom.js";

// The spec's §1.5 vectors (CPython 3.11 + lm-eval's bootstrap), through every path.
const specLls = [-1.5, -0.25, -3.0, -2.125, -0.5, -4.0, -1.0, -0.75];
const specValues = Float64Array.from(specLls);
// No chunk finishing for this long is a failure in these tests, never a reason to recover.
const patient = { stallTimeoutMs: 120_000 };

function expectSameBits(actual: Float64Array, expected: Float64Array): void {
    expect(actual.length).toBe(expected.length);
    const differing: number[] = [];
    for (let i = 0; i < expected.length; i++) if (!Object.is(actual[i], expected[i])) differing.push(i);
    expect(differing).toEqual([]);
}

describe("perplexity bootstrap on worker threads", () => {
    it("reproduces the spec vectors through the parallel path (forced) and the in-thread path", () => {
        expect(bootstrapPerplexityStderr(specLls, 100000, { minParallelDraws: 0, threads: 3 })).toBe(2.720899536158438);
        expect(bootstrapPerplexityStderr(specLls, 100000, { threads: 1 })).toBe(2.720899536158438);
        expect(bootstrapPerplexityStderr(specLls, 1000, { threads: 1 })).toBe(2.7355111648609305);
    });

    it("computes every chunk on the workers alone with the spec's results (the serialised code runs)", () => {
        const all = parallelBootstrapReplicates(specValues, 1000, 100, { threads: 2, mainThreadComputes: false, ...patient });
        expect({ byWorkers: all.chunksByWorkers, started: all.workersStarted, failed: all.workersFailed }).toEqual({ byWorkers: 100, started: 2, failed: 0 });
        expect(sampleStddev(all.replicates)).toBe(2.720899536158438);
        const one = parallelBootstrapReplicates(specValues, 1000, 1, { threads: 1, mainThreadComputes: false, ...patient });
        expect(one.chunksByWorkers).toBe(1);
        expect(sampleStddev(one.replicates)).toBe(2.7355111648609305);
    });

    it("gives the in-thread replicates bit for bit on random data, whoever computes which chunk", () => {
        const rng = new PyRandom(20240607);
        const values = Float64Array.from({ length: 257 }, () => -rng.random() * 14);
        const expected = inThreadBootstrapReplicates(values, 1000, 12);
        const shared = parallelBootstrapReplicates(values, 1000, 12, { threads: 3, ...patient });
        expect(shared.workersFailed).toBe(0);
        expect(shared.chunksByWorkers + shared.chunksByThisThread).toBe(12);
        expectSameBits(shared.replicates, expected);
        expectSameBits(bootstrapPerplexityReplicates(values, 12000, { minParallelDraws: 0, threads: 2 }), expected);
        // A stall timeout of 0 makes this thread take over unfinished chunks at once, racing the workers.
        const recovered = parallelBootstrapReplicates(values, 1000, 12, { threads: 2, mainThreadComputes: false, stallTimeoutMs: 0 });
        expect(recovered.chunksRecovered).toBeGreaterThan(0);
        expectSameBits(recovered.replicates, expected);
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

    it("serialises only self-contained functions (no bundler helpers or module references)", () => {
        const source = bootstrapWorkerSource();
        expect(source).not.toMatch(/__vi_|__vite|__name\(|import\(|\bexports\b/);
        expect(() => new Function(source)).not.toThrow();
    });
});
