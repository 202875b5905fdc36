/**
 * The model checksum recorded in results' provenance: sha256 over the bytes of every weight file a checkpoint's
 * tensors come from (files in name order, each preceded by its name and size), so two results files can be told
 * apart by the exact weights they were computed from, not only by the tensor layout (Checkpoint.fingerprint).
 * Reading is streamed; the weights are usually in the page cache already (they are memory-mapped for compute).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import type { Checkpoint } from "./types.js";

export async function weightsChecksum(checkpoint: Checkpoint): Promise<string> {
    const files = [...new Set(checkpoint.tensors.map((t) => t.file))].sort((a, b) => path.basename(a).localeCompare(path.basename(b)));
    const hash = createHash("sha256");
    for (const file of files) {
        const { size } = await stat(file);
        hash.update(`${path.basename(file)}\0${size}\0`);
        for await (const chunk of createReadStream(file, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
    }
    return hash.digest("hex");
}
