/**
 * lm-eval's perplexity bootstrap, chunk by chunk, in this thread or spread over worker threads with the same
 * results bit for bit. lm-eval draws its replicates in independent chunks: chunk c is `chunkSize` resamples made
 * by a fresh `random.Random(c)`, replicate = perplexity(resample). A chunk's replicates depend only on c, so
 * chunks can be computed anywhere, in any order, and still land in lm-eval's order in the output.
 *
 * - `inThreadBootstrapReplicates(values, chunkSize, chunkCount)`: all chunks here, in order.
 * - `parallelBootstrapReplicates(values, chunkSize, chunkCount, options)`: synchronous too. Values, replicates
 *   and a control block live in SharedArrayBuffers; worker threads (and, by default, this thread) claim chunks
 *   from an atomic counter and mark each one done; this thread then blocks in Atomics.wait until every chunk is
 *   marked. Any chunk a worker does not finish (it failed to start, threw, or went silent for `stallTimeoutMs`)
 *   is computed here, so the result never depends on the workers.
 *
 * The worker's code is the same functions the in-thread path calls, serialised with Function.prototype.toString
 * (pyrandom.ts's `PYRANDOM_WORKER_FUNCTIONS`, exactExp.ts's `EXACT_EXP_FUNCTIONS`, this module's chunk
 * functions) into `new Worker(code, { eval: true })`, which works alike from dist/ and from the TypeScript sources
 * under vitest or tsx. Rule for the serialised functions: each refers only to functions of its own module's set
 * and to literals; what comes from another module arrives as a parameter (`resampleSums`, `exp`).
 */
import os from "node:os";
import { Worker } from "node:worker_threads";
import { EXACT_EXP_FUNCTIONS, correctlyRoundedExp } from "./exactExp.js";
import { PYRANDOM_WORKER_FUNCTIONS, resampleSumsFromSeed } from "./pyrandom.js";

/** One bootstrap's inputs, outputs and coordination, visible to every thread working on it. */
export interface BootstrapJob {
    /** The per-document log-likelihoods being resampled. */
    values: Float64Array;
    /** chunkCount × chunkSize replicate perplexities, in lm-eval's order. */
    replicates: Float64Array;
    chunkSize: number;
    chunkCount: number;
    /** [0] next chunk to claim, [1] chunks finished, [2] workers that failed; [3 + c] = 1 once chunk c is written. */
    control: Int32Array;
}

// Control block slots (the serialised functions below spell them as literals: they cannot see module constants).
const CHUNKS_FINISHED = 1;
const WORKERS_FAILED = 2;
const CHUNK_DONE_FLAGS = 3;

type ResampleSums = typeof resampleSumsFromSeed;
type Exp = (x: number) => number;

/**
 * Computes chunk `chunk` into job.replicates: `exp(-(sum / n))` of each resample sum drawn by
 * `random.Random(chunk)`. The sums go to a scratch array first, so a chunk computed twice at once (recovery
 * after a stall) only ever writes final, identical values.
 */
export function computeBootstrapChunk(job: BootstrapJob, chunk: number, resampleSums: ResampleSums, exp: Exp): void {
    const values = job.values;
    const n = values.length;
    const chunkSize = job.chunkSize;
    const sums = new Float64Array(chunkSize);
    resampleSums(chunk, values, sums, 0, chunkSize);
    const offset = chunk * chunkSize;
    for (let j = 0; j < chunkSize; j++) job.replicates[offset + j] = exp(-(sums[j]! / n));
}

/** Claims chunks from the job's counter until none are left, computing and marking each; returns how many. */
export function claimBootstrapChunks(job: BootstrapJob, resampleSums: ResampleSums, exp: Exp): number {
    const control = job.control;
    let computed = 0;
    for (;;) {
        const chunk = Atomics.add(control, 0, 1); // next chunk to claim
        if (chunk >= job.chunkCount) return computed;
        computeBootstrapChunk(job, chunk, resampleSums, exp);
        computed++;
        Atomics.store(control, 3 + chunk, 1); // chunk's done flag
        Atomics.add(control, 1, 1); // chunks finished, which the waiting thread watches
        Atomics.notify(control, 1);
    }
}

/** A worker thread's whole run: claim chunks; on an error, count the failure and wake the waiting thread. */
export function runBootstrapWorker(job: BootstrapJob, resampleSums: ResampleSums, exp: Exp): void {
    try {
        claimBootstrapChunks(job, resampleSums, exp);
    } catch {
        Atomics.add(job.control, 2, 1); // workers failed
        Atomics.notify(job.control, 1);
    }
}

let workerSourceCache: string | undefined;

/** The worker's program: every function it needs, serialised, then one call of runBootstrapWorker. */
export function bootstrapWorkerSource(): string {
    if (workerSourceCache === undefined) {
        const functions = [...PYRANDOM_WORKER_FUNCTIONS, ...EXACT_EXP_FUNCTIONS, computeBootstrapChunk, claimBootstrapChunks, runBootstrapWorker];
        workerSourceCache =
            `"use strict";\n${functions.map(String).join("\n")}\n` +
            `${runBootstrapWorker.name}(require("node:worker_threads").workerData, ${resampleSumsFromSeed.name}, ${correctlyRoundedExp.name});\n`;
    }
    return workerSourceCache;
}

function newJob(values: Float64Array, chunkSize: number, chunkCount: number, shared: boolean): BootstrapJob {
    const bytes = (count: number, size: number): ArrayBufferLike => (shared ? new SharedArrayBuffer(count * size) : new ArrayBuffer(count * size));
    const job: BootstrapJob = {
        values: new Float64Array(bytes(values.length, 8)),
        replicates: new Float64Array(bytes(chunkSize * chunkCount, 8)),
        chunkSize,
        chunkCount,
        control: new Int32Array(bytes(CHUNK_DONE_FLAGS + chunkCount, 4)),
    };
    job.values.set(values);
    return job;
}

/** All chunks in this thread, in order: lm-eval's replicates (chunkCount × chunkSize). */
export function inThreadBootstrapReplicates(values: Float64Array, chunkSize: number, chunkCount: number): Float64Array {
    const job = newJob(values, chunkSize, chunkCount, false);
    claimBootstrapChunks(job, resampleSumsFromSeed, correctlyRoundedExp);
    return job.replicates;
}

/** How parallelBootstrapReplicates spreads the work. */
export interface ParallelBootstrapOptions {
    /** Threads in all, this one included (default os.availableParallelism()). */
    threads?: number;
    /** Whether this thread claims chunks too (default true); false leaves all chunks to the workers (tests). */
    mainThreadComputes?: boolean;
    /** Milliseconds without any chunk finishing after which this thread computes the unfinished chunks itself. */
    stallTimeoutMs?: number;
}

/** Replicates plus who computed them (for tests and diagnostics; the replicates never depend on it). */
export interface ParallelBootstrapResult {
    replicates: Float64Array;
    chunksByWorkers: number;
    chunksByThisThread: number;
    /** Chunks this thread computed because workers failed or stalled. */
    chunksRecovered: number;
    workersStarted: number;
    workersFailed: number;
}

/** Generous bound on how long a healthy worker can go without finishing a chunk: 5 s + 100 ns per draw. */
function defaultStallTimeoutMs(n: number, chunkSize: number): number {
    return 5000 + n * chunkSize * 1e-4;
}

/** Same replicates as inThreadBootstrapReplicates, bit for bit, computed on worker threads (synchronous). */
export function parallelBootstrapReplicates(
    values: Float64Array,
    chunkSize: number,
    chunkCount: number,
    options: ParallelBootstrapOptions = {},
): ParallelBootstrapResult {
    const job = newJob(values, chunkSize, chunkCount, true);
    const control = job.control;
    const mainThreadComputes = options.mainThreadComputes ?? true;
    const threads = Math.max(1, Math.floor(options.threads ?? os.availableParallelism()));
    const workerCount = Math.min(threads - (mainThreadComputes ? 1 : 0), chunkCount);
    const workers: Worker[] = [];
    for (let w = 0; w < workerCount; w++) {
        try {
            const worker = new Worker(bootstrapWorkerSource(), { eval: true, workerData: job, execArgv: [] });
            // Errors also surface through the control block (or a stall); this thread never depends on events.
            worker.on("error", () => undefined);
            worker.unref();
            workers.push(worker);
        } catch {
            // Could not start a thread (resource limits): the remaining threads, or this one, do the work.
        }
    }

    const chunksByThisThread = mainThreadComputes ? claimBootstrapChunks(job, resampleSumsFromSeed, correctlyRoundedExp) : 0;
    const stallTimeoutMs = options.stallTimeoutMs ?? defaultStallTimeoutMs(values.length, chunkSize);
    let chunksRecovered = 0;
    for (;;) {
        const finished = Atomics.load(control, CHUNKS_FINISHED);
        if (finished >= chunkCount && allChunksDone(control, chunkCount)) break;
        const stalled =
            workers.length === 0 ||
            Atomics.load(control, WORKERS_FAILED) > 0 ||
            (Atomics.wait(control, CHUNKS_FINISHED, finished, stallTimeoutMs) === "timed-out" && Atomics.load(control, CHUNKS_FINISHED) === finished);
        if (stalled) {
            for (let chunk = 0; chunk < chunkCount; chunk++) {
                if (Atomics.load(control, CHUNK_DONE_FLAGS + chunk) === 1) continue;
                computeBootstrapChunk(job, chunk, resampleSumsFromSeed, correctlyRoundedExp);
                Atomics.store(control, CHUNK_DONE_FLAGS + chunk, 1);
                chunksRecovered++;
            }
            break;
        }
    }
    for (const worker of workers) void worker.terminate();
    return {
        replicates: job.replicates.slice(), // an ordinary copy: no worker can touch it afterwards
        chunksByWorkers: chunkCount - chunksByThisThread - chunksRecovered,
        chunksByThisThread,
        chunksRecovered,
        workersStarted: workers.length,
        workersFailed: Atomics.load(control, WORKERS_FAILED),
    };
}

function allChunksDone(control: Int32Array, chunkCount: number): boolean {
    for (let chunk = 0; chunk < chunkCount; chunk++) if (Atomics.load(control, CHUNK_DONE_FLAGS + chunk) !== 1) return false;
    return true;
}
