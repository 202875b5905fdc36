/**
 * The model checksum recorded in results' provenance: sha256 over the bytes of every weight file a checkpoint's
 * tensors come from (files in name order, each preceded by its name and size), so two results files can be told
 * apart by the exact weights they were computed from, not only by the tensor layout (Checkpoint.fingerprint).
 * Reading is streamed; the weights are usually in the page cache already (they are memory-mapped for compute).
 * startWeightsChecksum does the same on a worker thread, so a run hashes its weights (seconds for a 2.8b checkpoint)
 * while it evaluates instead of after.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { Worker } from "node:worker_threads";
import type { Checkpoint } from "./types.js";

/** The files the checksum covers, in the order it reads them. */
function checksumFiles(checkpoint: Checkpoint): string[] {
    return [...new Set(checkpoint.tensors.map((t) => t.file))].sort((a, b) => path.basename(a).localeCompare(path.basename(b)));
}

/** The worker's program: weightsChecksum's bytes, read synchronously in 4 MiB pieces. */
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const path = require("node:path");
const hash = require("node:crypto").createHash("sha256");
const buffer = Buffer.allocUnsafe(1 << 22);
for (const file of workerData) {
    hash.update(path.basename(file) + "\0" + fs.statSync(file).size + "\0");
    const fd = fs.openSync(file, "r");
    try {
        for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
    } finally {
        fs.closeSync(fd);
    }
}
parentPort.postMessage(hash.digest("hex"));
`;

/**
 * weightsChecksum(checkpoint), computed on a worker thread that starts now; falls back to the main thread if the
 * worker cannot run. The returned promise never rejects unobserved: await it when the value is needed.
 */
export function startWeightsChecksum(checkpoint: Checkpoint): Promise<string> {
    const fallback = () => weightsChecksum(checkpoint);
    const result = new Promise<string>((resolve) => {
        let worker: Worker;
        try {
            worker = new Worker(WORKER_SOURCE, { eval: true, workerData: checksumFiles(checkpoint), execArgv: [] });
        } catch {
            resolve(fallback());
            return;
        }
        worker.unref();  // a run that ends early (an error) does not wait for the hash
        let settled = false;
        worker.once("message", (hex: string) => {
            settled = true;
            resolve(hex);
        });
        worker.once("error", () => {
            if (!settled) resolve(fallback());
            settled = true;
        });
        worker.once("exit", () => {
            if (!settled) resolve(fallback());
            settled = true;
        });
    });
    result.catch(() => undefined);  // observed here; the caller's await still sees a rejection
    return result;
}

export async function weightsChecksum(checkpoint: Checkpoint): Promise<string> {
    const files = checksumFiles(checkpoint);
    const hash = createHash("sha256");
    for (const file of files) {
        const { size } = await stat(file);
        hash.update(`${path.basename(file)}\0${size}\0`);
        for await (const chunk of createReadStream(file, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
    }
    return hash.digest("hex");
}
