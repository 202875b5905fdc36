import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CheckpointFormatError } from "../../src/errors.js";
import { PyDict, PyTuple, restrictedUnpickle, type UnpickleHooks } from "../../src/model/pickle.js";
import { readTensorF32 } from "../../src/model/tensorData.js";
import { readTorchBin } from "../../src/model/torchBin.js";
import { readZipArchive } from "../../src/model/zip.js";

// Files written by fixtures/make_torch_fixtures.py (Python stdlib pickle + zipfile emulating torch.save).
const here = path.dirname(fileURLToPath(import.meta.url));
const bin = (name: string): string => path.join(here, "fixtures", "torch-bin", name);
const MARKER = "/tmp/mamba-eval-pickle-was-executed";

describe("readTorchBin", () => {
    it("resolves views into one shared storage to byte offsets (storage_offset × element size)", async () => {
        const tensors = await readTorchBin(bin("shared-views.bin"));
        expect(tensors.map((t) => [t.name, t.shape, t.byteLength])).toEqual([["first", [2, 3], 24], ["second", [3, 2], 24], ["row", [1, 3], 12]]);
        const [first, second, row] = tensors;
        expect(second!.offset - first!.offset).toBe(24);
        expect(row!.offset - first!.offset).toBe(36);
        // storage "0" holds (i + 1) * 0.25 for i = 0..11
        expect(Array.from(await readTensorF32(second!))).toEqual([1.75, 2, 2.25, 2.5, 2.75, 3]);
        expect(Array.from(await readTensorF32(row!))).toEqual([2.5, 2.75, 3]);
    });

    it("reads a float16 checkpoint pickled with protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE) under another archive name", async () => {
        const tensors = await readTorchBin(bin("half-protocol4.bin"));
        const normF = tensors.find((t) => t.name === "backbone.norm_f.weight")!;
        expect(normF.dtype).toBe("F16");
        expect(Array.from(await readTensorF32(normF))).toEqual([11.25, 11.5, 11.75, 12]);
        const embedding = tensors.find((t) => t.name === "backbone.embedding.weight")!;
        const lmHead = tensors.find((t) => t.name === "lm_head.weight")!;
        expect([lmHead.offset, lmHead.byteLength]).toEqual([embedding.offset, embedding.byteLength]);
    });

    it("reads ZIP64 central-directory records", async () => {
        const archive = await readZipArchive(bin("zip64.bin"));
        expect(archive.entries.get("archive/data/0")!.size).toBe(48);
        const tensors = await readTorchBin(bin("zip64.bin"));
        expect(Array.from(await readTensorF32(tensors[0]!))).toEqual([0.25, 0.5, 0.75, 1, 1.25, 1.5]);
    });

    it.each([
        ["os-system.bin", /refers to global posix\.system, which is not allowed/],
        ["builtins-eval.bin", /refers to global __builtin__\.eval, which is not allowed/],
        ["load-from-bytes.bin", /refers to global torch\.storage\._load_from_bytes, which is not allowed/],
        ["stack-global-exec.bin", /refers to global builtins\.exec, which is not allowed/],
    ])("refuses the hostile pickle %s without executing it", async (name, message) => {
        const error = await readTorchBin(bin(name)).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CheckpointFormatError);
        expect((error as Error).message).toMatch(message);
        expect((error as Error).message).toContain(bin(name));
        expect(existsSync(MARKER)).toBe(false);
    });

    it.each([
        ["transposed.bin", /tensor t has shape \[3, 4\] with strides \[1, 3\]; only contiguous row-major/],
        ["double.bin", /tensor d is DoubleStorage; expected FloatStorage, HalfStorage or BFloat16Storage/],
        ["deflated.bin", /zip entry archive\/\w+ is compressed \(method 8\)/],
        ["big-endian.bin", /byteorder is "big"/],
        ["legacy.bin", /legacy torch format \(non-zip torch\.save\) not supported/],
    ])("refuses %s with a clear message", async (name, message) => {
        await expect(readTorchBin(bin(name))).rejects.toThrow(message);
    });

    it("refuses a file that is neither zip nor pickle", async () => {
        await expect(readTorchBin(path.join(here, "fixtures", "tiny-mamba1-bin", "config.json"))).rejects.toThrow(/not a PyTorch zip checkpoint/);
    });
});

describe("restrictedUnpickle", () => {
    const refuseAll: UnpickleHooks = {
        resolveGlobal: (module, name) => (module === "collections" && name === "OrderedDict" ? "od" : undefined),
        persistentLoad: () => { throw new Error("no"); },
        call: () => new PyDict("OrderedDict"),
        build: () => { throw new Error("no"); },
    };
    const bytes = (...parts: Array<number | string>): Uint8Array =>
        Buffer.concat(parts.map((p) => (typeof p === "number" ? Buffer.from([p]) : Buffer.from(p, "latin1"))));

    it("decodes the basic value opcodes (hand-assembled protocol 2)", () => {
        // {"a": (1, -2, 300, 2**40, True, None, 1.5, [b"xy"])}
        const data = bytes(0x80, 2, "}", "q", 0, "X", "\x01\x00\x00\x00a", "(", "K", 1, "J", "\xfe\xff\xff\xff", "M", "\x2c\x01",
            0x8a, 6, "\x00\x00\x00\x00\x00\x01", 0x88, "N", "G", "\x3f\xf8\x00\x00\x00\x00\x00\x00", "]", "C", 2, "xy", "a", "t", "s", ".");
        const value = restrictedUnpickle(data, "test.pkl", refuseAll) as PyDict;
        const tuple = value.entries.get("a") as PyTuple;
        expect(tuple.items.slice(0, 7)).toEqual([1, -2, 300, 2 ** 40, true, null, 1.5]);
        expect(Array.from((tuple.items[7] as Uint8Array[])[0]!)).toEqual([0x78, 0x79]);
    });

    it("refuses object construction opcodes, unknown globals, truncation and bad memo reads", () => {
        const newobj = bytes(0x80, 2, "c", "collections\nOrderedDict\n", ")", 0x81, ".");
        expect(() => restrictedUnpickle(newobj, "x.pkl", refuseAll)).toThrow(/x\.pkl: pickle uses opcode 0x81/);
        expect(() => restrictedUnpickle(bytes(0x80, 2, "c", "subprocess\nPopen\n", "."), "x.pkl", refuseAll)).toThrow(/global subprocess\.Popen/);
        expect(() => restrictedUnpickle(bytes(0x80, 2, "X", "\xff\x00\x00\x00ab"), "x.pkl", refuseAll)).toThrow(/is truncated/);
        expect(() => restrictedUnpickle(bytes(0x80, 2, "h", 7, "."), "x.pkl", refuseAll)).toThrow(/memo entry 7/);
        expect(() => restrictedUnpickle(bytes(0x80, 2, "I", "1\n", "."), "x.pkl", refuseAll)).toThrow(/opcode 0x49 'I'/);
        expect(() => restrictedUnpickle(bytes(0x80, 6, "N", "."), "x.pkl", refuseAll)).toThrow(/protocol 6 is not supported/);
    });
});
