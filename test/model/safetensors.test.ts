import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointFormatError } from "../../src/errors.js";
import { readSafetensorsHeader, readSafetensorsIndex } from "../../src/model/safetensors.js";
import { bytesToF32, readTensorF32 } from "../../src/model/tensorData.js";
import { elementValue, tempDir, writeSafetensors } from "./helpers.js";

let dir = "";
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

const expected = (k: number, n: number): number[] => Array.from({ length: n }, (_, i) => elementValue(k, i));

describe("readSafetensorsHeader", () => {
    it("lists tensors with absolute offsets and reads F32, F16 and BF16 values exactly", async () => {
        const file = path.join(dir, "mixed.safetensors");
        await writeSafetensors(file, [
            { name: "a", shape: [2, 3] },
            { name: "b", shape: [4], dtype: "F16" },
            { name: "c", shape: [1, 5], dtype: "BF16" },
            { name: "scalar", shape: [] },
        ]);
        const tensors = await readSafetensorsHeader(file);
        expect(tensors.map((t) => [t.name, t.dtype, t.shape, t.byteLength])).toEqual([
            ["a", "F32", [2, 3], 24], ["b", "F16", [4], 8], ["c", "BF16", [1, 5], 10], ["scalar", "F32", [], 4],
        ]);
        const [a, b, c, scalar] = tensors;
        expect(b!.offset - a!.offset).toBe(24);
        expect(Array.from(await readTensorF32(a!))).toEqual(expected(0, 6));
        expect(Array.from(await readTensorF32(b!))).toEqual(expected(1, 4));
        expect(Array.from(await readTensorF32(c!))).toEqual(expected(2, 5));
        expect(Array.from(await readTensorF32(scalar!))).toEqual([3.25]);
    });

    it("converts half and bfloat16 special values (hand-checked bit patterns)", () => {
        // F16: 0x3c00 = 1, 0xc000 = -2, 0x7bff = 65504, 0x0001 = 2^-24, 0x7c00 = inf. BF16: 0x3f80 = 1, 0xc0a0 = -5.
        const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00]).buffer);
        expect(Array.from(bytesToF32(f16, "F16"))).toEqual([1, -2, 65504, 2 ** -24, Infinity]);
        const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc0a0]).buffer);
        expect(Array.from(bytesToF32(bf16, "BF16"))).toEqual([1, -5]);
    });

    const cases: Array<[string, (h: Record<string, unknown>) => void, RegExp]> = [
        ["an unsupported dtype by name", (h) => { h.a = { dtype: "I64", shape: [3], data_offsets: [0, 24] }; }, /tensor a: unsupported dtype I64/],
        ["a byte count that is not prod(shape) × size", (h) => { h.a = { dtype: "F32", shape: [5], data_offsets: [0, 24] }; }, /holds 24 bytes but shape \[5\] of F32 needs 20/],
        ["offsets past the data", (h) => { h.a = { dtype: "F32", shape: [7], data_offsets: [8, 36] }; }, /run past the end of the data/],
        ["overlapping tensors", (h) => { h.b = { dtype: "F32", shape: [2], data_offsets: [16, 24] }; }, /tensors a and b overlap/],
        ["a bad shape", (h) => { h.a = { dtype: "F32", shape: [-1], data_offsets: [0, 24] }; }, /tensor a: shape must be/],
        // what a header naming a tensor twice leaves (JSON.parse keeps the last entry): bytes no tensor covers
        ["a gap in the data", (h) => { h.a = { dtype: "F32", shape: [4], data_offsets: [0, 16] }; }, /data bytes 16\.\.24 belong to no tensor/],
        ["bytes after the last tensor", (h) => { h.b = { dtype: "F32", shape: [1], data_offsets: [24, 28] }; }, /4 bytes after the last tensor's data belong to no tensor/],
    ];
    it.each(cases)("refuses %s", async (_, change, message) => {
        const file = path.join(dir, "bad.safetensors");
        await writeSafetensors(file, [{ name: "a", shape: [6] }, { name: "b", shape: [2] }], change);
        await expect(readSafetensorsHeader(file)).rejects.toThrow(message);
    });

    it("refuses an insane header length, a truncated file and non-JSON", async () => {
        const file = path.join(dir, "huge.safetensors");
        const bytes = Buffer.alloc(64);
        bytes.writeBigUInt64LE(1n << 40n);
        await writeFile(file, bytes);
        await expect(readSafetensorsHeader(file)).rejects.toThrow(/header length 1099511627776 is not sane/);
        await writeFile(file, Buffer.from([1, 2, 3]));
        await expect(readSafetensorsHeader(file)).rejects.toThrow(/too short for a safetensors file/);
        bytes.writeBigUInt64LE(8n);
        bytes.write("{not json", 8);
        await writeFile(file, bytes);
        await expect(readSafetensorsHeader(file)).rejects.toThrow(CheckpointFormatError);
        await expect(readSafetensorsHeader(path.join(dir, "absent.safetensors"))).rejects.toThrow(/cannot open/);
    });
});

describe("readSafetensorsIndex", () => {
    it("reads every shard the weight_map names", async () => {
        await writeSafetensors(path.join(dir, "s-1.safetensors"), [{ name: "x", shape: [2] }]);
        await writeSafetensors(path.join(dir, "s-2.safetensors"), [{ name: "y", shape: [3] }, { name: "z", shape: [1] }]);
        const index = path.join(dir, "model.safetensors.index.json");
        await writeFile(index, JSON.stringify({ metadata: {}, weight_map: { x: "s-1.safetensors", y: "s-2.safetensors", z: "s-2.safetensors" } }));
        const tensors = await readSafetensorsIndex(index);
        expect(tensors.map((t) => [t.name, path.basename(t.file)])).toEqual([["x", "s-1.safetensors"], ["y", "s-2.safetensors"], ["z", "s-2.safetensors"]]);
        expect(Array.from(await readTensorF32(tensors[2]!))).toEqual(expected(1, 1));
    });

    it("refuses a shard outside the folder, a missing shard, a tensor in the wrong shard", async () => {
        const index = path.join(dir, "model.safetensors.index.json");
        await writeFile(index, JSON.stringify({ weight_map: { x: "../s-1.safetensors" } }));
        await expect(readSafetensorsIndex(index)).rejects.toThrow(/outside the folder/);
        await writeFile(index, JSON.stringify({ weight_map: { x: "nope.safetensors" } }));
        await expect(readSafetensorsIndex(index)).rejects.toThrow(/shard nope\.safetensors is missing/);
        await writeFile(index, JSON.stringify({ weight_map: { x: "s-2.safetensors", y: "s-2.safetensors", z: "s-2.safetensors" } }));
        await expect(readSafetensorsIndex(index)).rejects.toThrow(/tensor x is not in shard/);
        await writeFile(index, JSON.stringify({ weight_map: { y: "s-2.safetensors" } }));
        await expect(readSafetensorsIndex(index)).rejects.toThrow(/tensor z is in the shard but not in/);
        // y and z listed, z in a shard that does not exist: the shard sorted first holds z, which the index put elsewhere
        await writeFile(index, JSON.stringify({ weight_map: { x: "s-1.safetensors", y: "s-2.safetensors", z: "s-9.safetensors" } }));
        await expect(readSafetensorsIndex(index)).rejects.toThrow(/s-2\.safetensors: tensor z is in this shard, but .*model\.safetensors\.index\.json puts it in s-9\.safetensors$/);
    });
});
