/**
 * `node --import tsx bench/bootstrapBench.ts [documents] [iterations]`: lm-eval's perplexity bootstrap
 * (metrics.ts → bootstrapChunks.ts → pyrandom.ts) on `documents` synthetic log-likelihoods (default 5153, LAMBADA's
 * size) × `iterations` (default 100000): in this thread vs on os.availableParallelism() threads, replicates
 * checked bit-identical. Prints wall and CPU time, ns per draw, and the cost of starting workers.
 */
import os from "node:os";
import { inThreadBootstrapReplicates, parallelBootstrapReplicates } from "../src/harness/bootstrapChunks.js";
import { sampleStddev } from "../src/harness/metrics.js";
import { PyRandom } from "../src/harness/pyrandom.js";

const documents = Number(process.argv[2] ?? 5153);
const iterations = Number(process.argv[3] ?? 100000);
const chunkSize = Math.min(1000, iterations);
const chunkCount = Math.floor(iterations / chunkSize);
const draws = documents * chunkSize * chunkCount;
const rng = new PyRandom(5153);
const values = Float64Array.from({ length: documents }, () => -rng.random() * 12);
const threads = os.availableParallelism();

function timed<T>(run: () => T): { result: T; wallMs: number; cpuMs: number } {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const result = run();
    const wallMs = performance.now() - start;
    const used = process.cpuUsage(cpu);
    return { result, wallMs, cpuMs: (used.user + used.system) / 1000 };
}

const single = timed(() => inThreadBootstrapReplicates(values, chunkSize, chunkCount));
console.log(
    `in-thread: ${single.wallMs.toFixed(0)} ms wall, ${((single.wallMs * 1e6) / draws).toFixed(2)} ns/draw, stderr ${sampleStddev(single.result)}`,
);
const parallel = timed(() => parallelBootstrapReplicates(values, chunkSize, chunkCount, { threads }));
const identical = single.result.every((x, i) => Object.is(x, parallel.result.replicates[i]));
const { replicates: _, ...who } = parallel.result;
console.log(
    `parallel (${threads} threads): ${parallel.wallMs.toFixed(0)} ms wall, ${parallel.cpuMs.toFixed(0)} ms CPU (all threads), ` +
        `${(single.wallMs / parallel.wallMs).toFixed(2)}× faster, replicates ${identical ? "bit-identical" : "DIFFERENT"} ${JSON.stringify(who)}`,
);
const startup = timed(() => parallelBootstrapReplicates(values.subarray(0, 2), 1, 1, { threads: 1, mainThreadComputes: false }));
console.log(`one worker's start and one tiny chunk: ${startup.wallMs.toFixed(1)} ms wall`);
if (!identical) process.exitCode = 1;
