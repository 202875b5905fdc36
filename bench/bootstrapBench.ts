/**
 * `node --import tsx bench/bootstrapBench.ts [documents] [iterations]`: the resample sums of lm-eval's perplexity
 * bootstrap on `documents` synthetic log-likelihoods (default 5153, LAMBADA's size) × `iterations` (default
 * 100000): JS in this thread (bootstrapChunks.ts over pyrandom.ts) against the native addon's
 * bootstrapResampleSums on 1 thread, 2 threads and os.availableParallelism() threads, every result checked
 * bit-identical to the JS one. Prints wall time and ns per draw (per thread: wall × threads / draws).
 */
import os from "node:os";
import { inThreadResampleSums } from "../src/metrics/bootstrapChunks.js";
import { nativeResampleSums } from "../src/metrics/nativeResample.js";
import { PyRandom } from "../src/metrics/pyrandom.js";

const documents = Number(process.argv[2] ?? 5153);
const iterations = Number(process.argv[3] ?? 100000);
const chunkSize = Math.min(1000, iterations);
const chunkCount = Math.floor(iterations / chunkSize);
const draws = documents * chunkSize * chunkCount;
const rng = new PyRandom(5153);
const values = Float64Array.from({ length: documents }, () => -rng.random() * 12);

function timed(run: () => Float64Array): { sums: Float64Array; wallMs: number } {
    const start = performance.now();
    const sums = run();
    return { sums, wallMs: performance.now() - start };
}

function line(label: string, wallMs: number, threads: number): string {
    const perDraw = (wallMs * 1e6) / draws;
    return `${label}: ${wallMs.toFixed(0)} ms wall, ${perDraw.toFixed(2)} ns/draw, ${(perDraw * threads).toFixed(2)} ns/draw per thread`;
}

console.log(`${documents} documents × ${chunkCount} chunks × ${chunkSize} resamples = ${draws} draws`);
const js = timed(() => inThreadResampleSums(values, chunkSize, chunkCount));
console.log(line("JS, this thread", js.wallMs, 1));
const native = nativeResampleSums();
if (native === undefined) {
    console.log("native: the addon is not built or lacks bootstrapResampleSums (npm run build:native)");
    process.exitCode = 1;
} else {
    for (const threads of [...new Set([1, 2, os.availableParallelism()])]) {
        const run = timed(() => native(values, chunkSize, chunkCount, threads));
        const identical = run.sums.every((x, i) => Object.is(x, js.sums[i]));
        console.log(`${line(`native, ${threads} thread(s)`, run.wallMs, threads)}, ${(js.wallMs / run.wallMs).toFixed(1)}× JS, sums ${identical ? "bit-identical" : "DIFFERENT"}`);
        if (!identical) process.exitCode = 1;
    }
}
