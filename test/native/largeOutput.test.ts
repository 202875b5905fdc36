/**
 * Logits past 2 and 4 GiB. A native call returned its logits as an external ArrayBuffer; past node::Buffer's
 * 4 GiB limit Node frees the data through the finalizer and reports failure, and node-addon-api then frees its
 * finalizer record a second time (a double free that aborts the process). Past 2 GiB, `score --logits-out` died in
 * fs.writeSync (2^31 - 1 bytes at most per call) after truncating the old file. Now the addon refuses, before any
 * work, a call whose logits would pass 2^31 - 1 bytes, and the score command computes and writes logits in pieces.
 *
 * The model here has a 2^20-token vocabulary and a tiny body, so 1025 rows of logits are 4.3 GB: the call that
 * crashed, now refused at no cost. A whole CLI run past 2 or 4 GiB takes tens of seconds of memory traffic on a
 * small machine, so the path is tested in its parts: pieces give the numbers of single calls, the file writer
 * takes a write past 2^31 bytes (on /dev/shm, a RAM disk), and the header arithmetic is exact past 4 GiB.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync, statfsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NativeBackend } from "../../src/backend/NativeBackend.js";
import { LOGITS_BYTES_PER_CALL, logitRowsPerCall } from "../../src/cli/scoreCommand.js";
import { SafetensorsF32Writer, safetensorsF32Header } from "../../src/io/safetensorsWriter.js";
import { loadCheckpoint } from "../../src/model/loadModel.js";
import { writeRandomCheckpoint } from "../lm/randomCheckpoint.js";
import { cli } from "../reliability/cliProcess.js";

const VOCAB = 1 << 20;
let tmp: string;
let model: string;
beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-large-"));
    model = writeRandomCheckpoint(path.join(tmp, "wide"), { family: "mamba1", dModel: 8, nLayer: 1, vocab: VOCAB, dState: 4 }, 5);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the addon's output size", () => {
    it("refuses 1025 rows × 2^20 logits (4.3 GB, the call that double-freed) before any work, and keeps working", async () => {
        const backend = await NativeBackend.create(await loadCheckpoint(model), { threads: 1, weightType: "f32" });
        try {
            const rows = 1025;
            const batch = (n: number, logitRows: number) => ({
                tokens: new Int32Array(n).fill(1), segOffsets: Int32Array.of(0, n), segInit: Int32Array.of(-1), segSave: Int32Array.of(-1),
                scoreRows: new Int32Array(0), scoreTargets: new Int32Array(0), logitRows: Int32Array.from({ length: logitRows }, (_, i) => i),
            });
            const started = Date.now();
            await expect(backend.score(batch(rows, rows))).rejects.toThrow(
                "score: 1025 rows of 1048576 logits are 4299161600 bytes, more than one call may return (2147483647); ask for fewer rows per call",
            );
            expect(Date.now() - started).toBeLessThan(1000);  // refused up front, nothing computed
            // Just past 2^31 - 1 bytes is refused too; just below it is returned.
            await expect(backend.score(batch(512, 512))).rejects.toThrow(/512 rows of 1048576 logits are 2147483648 bytes/);
            const ok = await backend.score(batch(3, 3));
            expect(ok.logits.length).toBe(3 * VOCAB);
        } finally {
            await backend[Symbol.asyncDispose]();
        }
    });
});

describe("the size arithmetic of score --logits-out", () => {
    it("takes pieces of whole 64-row multiples within 256 MiB", () => {
        expect(logitRowsPerCall(50280)).toBe(1280);  // 1280 × 50280 × 4 = 257 433 600 ≤ 268 435 456
        expect(logitRowsPerCall(50280) * 50280 * 4).toBeLessThanOrEqual(LOGITS_BYTES_PER_CALL);
        expect(logitRowsPerCall(VOCAB)).toBe(64);
        expect(logitRowsPerCall(2 ** 24)).toBe(4);  // fewer than 64 rows fit: as many as fit
        expect(logitRowsPerCall(2 ** 27)).toBe(1);
    });

    it("writes headers with exact offsets past 4 GiB", () => {
        const { header, dataBytes } = safetensorsF32Header([{ name: "logits_0", shape: [21_000, 50280] }, { name: "logits_1", shape: [3, 50280] }]);
        expect(dataBytes).toEqual([4_223_520_000, 603_360]);
        const json = JSON.parse(header.subarray(8).toString("utf8")) as Record<string, { data_offsets: number[] }>;
        expect(Number(header.readBigUInt64LE(0))).toBe(header.length - 8);
        expect((header.length - 8) % 8).toBe(0);
        expect(json["logits_1"]!.data_offsets).toEqual([4_223_520_000, 4_224_123_360]);
    });
});

/** A folder on /dev/shm (a RAM disk: gigabytes written in a second) when it has `bytes` free, else undefined. */
function ramDisk(bytes: number): string | undefined {
    const shm = "/dev/shm";
    if (!existsSync(shm)) return undefined;
    const fs = statfsSync(shm);
    return fs.bavail * fs.bsize > bytes * 1.5 ? mkdtempSync(path.join(shm, "mamba-eval-logits-")) : undefined;
}

describe("score --logits-out", () => {
    it("writes logits in pieces (64 rows of 2^20 here) whose numbers are those of single calls", async () => {
        const rows = 150;  // three pieces: 64, 64, 22 rows; 629 MB
        const out = ramDisk(rows * VOCAB * 4) ?? tmp;
        try {
            const file = path.join(out, "logits.safetensors");
            const ids = Array.from({ length: rows }, (_, i) => (i * 7919) % VOCAB);
            const r = cli(["score", "--model", model, "--ids", ids.join(","), "--logits-out", file, "--threads", "2"], { timeout: 120_000 });
            expect(r.status, r.stderr).toBe(0);
            const fd = openSync(file, "r");
            const backend = await NativeBackend.create(await loadCheckpoint(model), { threads: 1, weightType: "f32" });
            try {
                const length = Buffer.alloc(8);
                readSync(fd, length, 0, 8, 0);
                const headerLength = Number(length.readBigUInt64LE(0));
                expect(statSync(file).size).toBe(8 + headerLength + rows * VOCAB * 4);
                // Rows of each piece, at its edges, against the same row computed by one call over its prefix.
                for (const row of [0, 63, 64, 127, 128, rows - 1]) {
                    const expected = await backend.score({
                        tokens: Int32Array.from(ids.slice(0, row + 1)), segOffsets: Int32Array.of(0, row + 1), segInit: Int32Array.of(-1), segSave: Int32Array.of(-1),
                        scoreRows: new Int32Array(0), scoreTargets: new Int32Array(0), logitRows: Int32Array.of(row),
                    });
                    const got = Buffer.alloc(VOCAB * 4);
                    readSync(fd, got, 0, got.length, 8 + headerLength + row * VOCAB * 4);
                    expect(Buffer.from(expected.logits.buffer, expected.logits.byteOffset, expected.logits.byteLength).equals(got), `row ${row}`).toBe(true);
                }
            } finally {
                closeSync(fd);
                await backend[Symbol.asyncDispose]();
            }
        } finally {
            if (out !== tmp) rmSync(out, { recursive: true, force: true });
        }
    });

    it("writes more than 2^31 bytes of one tensor's data in one write (fs.writeSync takes at most 2^31 - 1)", () => {
        const floats = 2 ** 29 + 16;  // 2 GiB + 64 bytes
        const out = ramDisk(floats * 4);
        if (out === undefined) {
            console.log("a single 2 GiB write: skipped (no /dev/shm with 3.3 GB free)");
            return;
        }
        try {
            const file = path.join(out, "big.safetensors");
            const data = new Float32Array(floats);
            data[0] = 1.5;
            data[floats - 1] = -2.5;
            const writer = new SafetensorsF32Writer(file, [{ name: "x", shape: [floats] }]);
            writer.write(data);
            writer.commit();
            const { header } = safetensorsF32Header([{ name: "x", shape: [floats] }]);
            expect(statSync(file).size).toBe(header.length + floats * 4);
            const fd = openSync(file, "r");
            try {
                const ends = Buffer.alloc(4);
                readSync(fd, ends, 0, 4, header.length);
                expect(ends.readFloatLE(0)).toBe(1.5);
                readSync(fd, ends, 0, 4, header.length + (floats - 1) * 4);
                expect(ends.readFloatLE(0)).toBe(-2.5);
            } finally {
                closeSync(fd);
            }
        } finally {
            rmSync(out, { recursive: true, force: true });
        }
    });
});
