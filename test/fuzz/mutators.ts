/**
 * Seeded mutations of checkpoint and data files for the fuzz tests: raw byte flips and truncations, and
 * format-aware edits (safetensors header length / offsets / dtypes / shapes, JSON field deletions and type
 * changes, pickle opcode edits inside a PyTorch zip with the CRC-32 fixed up so the unpickler sees them).
 *
 * Every mutator takes the file's bytes and a PRNG and returns the new bytes plus a short description; the
 * description and the case's seed are enough to replay a case.
 */
import type { Mulberry32 as Prng } from "../../src/lm/prng.js";
import { crc32 } from "node:zlib";

/** The fuzzers' seeded PRNG (mulberry32, shared with generate --seed). */
export { Mulberry32 as Prng } from "../../src/lm/prng.js";

/** The outcome of one mutation. */
export interface Mutation {
    bytes: Buffer;
    what: string;
}

export type Mutator = (input: Buffer, rng: Prng) => Mutation;

/** XORs 1–4 random bytes with a random non-zero mask. */
export const byteFlip: Mutator = (input, rng) => {
    const out = Buffer.from(input);
    const n = 1 + rng.int(4);
    const at: number[] = [];
    for (let i = 0; i < n && out.length > 0; i++) {
        const pos = rng.int(out.length);
        out[pos] = out[pos]! ^ (1 + rng.int(255));
        at.push(pos);
    }
    return { bytes: out, what: `byte flip at ${at.join(",")}` };
};

/** Cuts the file: anywhere, or just before its end, or to nothing. */
export const truncate: Mutator = (input, rng) => {
    const choice = rng.int(4);
    const length = choice === 0 ? 0 : choice === 1 ? Math.max(0, input.length - 1 - rng.int(16)) : rng.int(input.length);
    return { bytes: input.subarray(0, length), what: `truncate to ${length} of ${input.length} bytes` };
};

/** Random JSON values of every type, including edge numbers. */
function randomJsonValue(rng: Prng): unknown {
    return rng.pick<() => unknown>([
        () => null,
        () => true,
        () => false,
        () => 0,
        () => -1,
        () => 1,
        () => 1.5,
        () => 2 ** 31,
        () => 2 ** 53 + 2,
        () => 1e308,
        () => -1e-300,
        () => "",
        () => "x",
        () => "auto",
        () => "NaN",
        () => [],
        () => [1, 2],
        () => ({}),
        () => ({ a: 1 }),
    ])();
}

/** Every path (list of keys / indices) to a value inside a JSON document. */
function jsonPaths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
    if (Array.isArray(value)) {
        value.forEach((v, i) => {
            out.push([...prefix, i]);
            jsonPaths(v, [...prefix, i], out);
        });
    } else if (value !== null && typeof value === "object") {
        for (const [k, v] of Object.entries(value)) {
            out.push([...prefix, k]);
            jsonPaths(v, [...prefix, k], out);
        }
    }
    return out;
}

/** Deletes a random field or array element, or replaces it with a value of another type. */
export function editJsonValue(doc: unknown, rng: Prng): { doc: unknown; what: string } {
    const paths = jsonPaths(doc);
    if (paths.length === 0) return { doc: randomJsonValue(rng), what: "replace the whole document" };
    const target = rng.pick(paths);
    let parent = doc as Record<string | number, unknown>;
    for (const key of target.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    const last = target[target.length - 1]!;
    const where = target.join(".");
    if (rng.int(3) === 0) {
        if (Array.isArray(parent)) parent.splice(last as number, 1);
        else delete parent[last];
        return { doc, what: `delete ${where}` };
    }
    const value = randomJsonValue(rng);
    parent[last] = value;
    return { doc, what: `set ${where} = ${JSON.stringify(value)}` };
}

/** A JSON file (config.json, the sharded index): a field deleted or given another type, or the text reformatted. */
export const jsonFieldEdit: Mutator = (input, rng) => {
    const doc: unknown = JSON.parse(input.toString("utf8"));
    if (rng.int(8) === 0) return { bytes: Buffer.from(JSON.stringify(doc)), what: "reformat without whitespace" };
    const { doc: edited, what } = editJsonValue(doc, rng);
    return { bytes: Buffer.from(JSON.stringify(edited, null, 2)), what };
};

/** Offset of the safetensors header's end (8 + header length), or undefined when the prefix is unreadable. */
function safetensorsHeaderEnd(input: Buffer): number | undefined {
    if (input.length < 8) return undefined;
    const n = input.readBigUInt64LE(0);
    return n > BigInt(input.length - 8) ? undefined : 8 + Number(n);
}

/** Rewrites the 8-byte header length of a safetensors file. */
export const safetensorsHeaderLength: Mutator = (input, rng) => {
    const out = Buffer.from(input);
    const n = input.readBigUInt64LE(0);
    const candidates = [n + 1n, n - 1n, n + 8n, n - 8n, 0n, 1n, 7n, BigInt(input.length), BigInt(input.length - 8), 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, n * 2n];
    const value = BigInt.asUintN(64, rng.pick(candidates));
    out.writeBigUInt64LE(value, 0);
    return { bytes: out, what: `header length ${n} → ${value}` };
};

/** Edits one tensor entry (or the metadata) of a safetensors header: offsets, dtype, shape, deletions, extras. */
export const safetensorsHeaderEdit: Mutator = (input, rng) => {
    const end = safetensorsHeaderEnd(input);
    if (end === undefined) return byteFlip(input, rng);
    const header = JSON.parse(input.subarray(8, end).toString("utf8")) as Record<string, Record<string, unknown>>;
    const names = Object.keys(header).filter((k) => k !== "__metadata__");
    const name = rng.pick(names);
    const entry = header[name]!;
    const offsets = entry["data_offsets"] as [number, number];
    const dataLength = input.length - end;
    const [a, b] = offsets;
    const edits: Array<() => string> = [
        () => ((entry["data_offsets"] = [b, a]), "swap data_offsets"),
        () => ((entry["data_offsets"] = [a, b + 2]), "data_offsets end + 2"),
        () => ((entry["data_offsets"] = [a + 2, b + 2]), "data_offsets shifted by 2"),
        () => ((entry["data_offsets"] = [a, dataLength + 4]), "data_offsets past the end"),
        () => ((entry["data_offsets"] = [-4, b]), "negative data offset"),
        () => ((entry["data_offsets"] = [a + 0.5, b]), "fractional data offset"),
        () => ((entry["data_offsets"] = [a]), "one data offset"),
        () => ((entry["data_offsets"] = String(a)), "data_offsets as a string"),
        () => ((entry["data_offsets"] = [2 ** 53, 2 ** 53 + 4]), "offsets beyond 2^53"),
        () => ((entry["dtype"] = rng.pick(["F64", "I8", "BOOL", "F16", "BF16", "F32", "F8_E4M3", "f32", "", 4])), `dtype ${JSON.stringify(entry["dtype"])}`),
        () => {
            const shape = [...(entry["shape"] as number[])];
            const i = rng.int(Math.max(1, shape.length));
            shape[i] = rng.pick([0, -1, 1, 2 ** 31, 2 ** 40, 1.5, (shape[i] ?? 1) + 1, (shape[i] ?? 2) - 1]);
            entry["shape"] = shape;
            return `shape[${i}] → ${shape[i]}`;
        },
        () => ((entry["shape"] = [...(entry["shape"] as number[])].reverse()), "shape reversed"),
        () => ((entry["shape"] = []), "shape []"),
        () => ((entry["shape"] = "12"), "shape as a string"),
        () => (delete entry[rng.pick(["dtype", "shape", "data_offsets"])], "field deleted"),
        () => (delete header[name], "entry deleted"),
        () => ((header[`${name}.copy`] = { ...entry }), "duplicate entry under a new name"),
        () => ((header["__metadata__"] = { format: rng.pick(["pt", "tf", "np"]), n: rng.pick(["1", 1, null] as unknown[]) } as Record<string, unknown>), "metadata edited"),
        () => ((header[name] = rng.pick([null, [], "x", 3] as unknown[]) as Record<string, unknown>), "entry replaced by a non-object"),
    ];
    const what = rng.pick(edits)();
    let json = Buffer.from(JSON.stringify(header));
    const oldLength = end - 8;
    // Keep the original length (space padding) when the new header is no longer, so the data stays aligned.
    if (json.length < oldLength) json = Buffer.concat([json, Buffer.alloc(oldLength - json.length, 0x20)]);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    return { bytes: Buffer.concat([prefix, json, input.subarray(end)]), what: `${name}: ${what}` };
};

/** Replaces a whitespace byte of the safetensors header padding or between JSON tokens by other whitespace. */
export const safetensorsWhitespace: Mutator = (input, rng) => {
    const end = safetensorsHeaderEnd(input);
    const out = Buffer.from(input);
    const spaces: number[] = [];
    if (end !== undefined) for (let i = 8; i < end; i++) if (out[i] === 0x20) spaces.push(i);
    if (spaces.length === 0) {
        // No padding: rewrite the header with one trailing space (still a valid, equal header).
        const json = input.subarray(8, end ?? 8);
        const prefix = Buffer.alloc(8);
        prefix.writeBigUInt64LE(BigInt(json.length + 1));
        return { bytes: Buffer.concat([prefix, json, Buffer.from(" "), input.subarray(end ?? 8)]), what: "header padded by one space" };
    }
    const pos = rng.pick(spaces);
    out[pos] = rng.pick([0x09, 0x0a, 0x0d]);
    return { bytes: out, what: `header whitespace at ${pos} changed` };
};

/** A stored entry of a zip archive, located through its local header. */
interface ZipEntry {
    name: string;
    localHeader: number;
    dataStart: number;
    size: number;
    centralHeader: number;
}

/** The entries of a zip (central directory walk; no zip64). */
export function zipEntries(zip: Buffer): ZipEntry[] {
    let eocd = -1;
    for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65557); i--) {
        if (zip.readUInt32LE(i) === 0x06054b50) {
            eocd = i;
            break;
        }
    }
    if (eocd < 0) return [];
    const count = zip.readUInt16LE(eocd + 10);
    let at = zip.readUInt32LE(eocd + 16);
    const out: ZipEntry[] = [];
    for (let k = 0; k < count && at + 46 <= zip.length && zip.readUInt32LE(at) === 0x02014b50; k++) {
        const nameLength = zip.readUInt16LE(at + 28);
        const extra = zip.readUInt16LE(at + 30);
        const comment = zip.readUInt16LE(at + 32);
        const localHeader = zip.readUInt32LE(at + 42);
        const name = zip.subarray(at + 46, at + 46 + nameLength).toString("utf8");
        const size = zip.readUInt32LE(at + 20);
        const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
        out.push({ name, localHeader, dataStart, size, centralHeader: at });
        at += 46 + nameLength + extra + comment;
    }
    return out;
}

/** Argument bytes of the pickle opcodes torch.save writes (protocol 2), or undefined when not known here. */
function pickleArgLength(data: Buffer, pos: number): number | undefined {
    const op = data[pos]!;
    const u8 = () => data[pos + 1] ?? 0;
    const u32 = () => (pos + 5 <= data.length ? data.readUInt32LE(pos + 1) : 0);
    switch (op) {
        case 0x80: case 0x71: case 0x68: case 0x4b: return 1; // PROTO, BINPUT, BINGET, BININT1
        case 0x72: case 0x6a: case 0x4a: return 4; // LONG_BINPUT, LONG_BINGET, BININT
        case 0x4d: return 2; // BININT2
        case 0x47: return 8; // BINFLOAT
        case 0x58: case 0x42: case 0x54: return 4 + u32(); // BINUNICODE, BINBYTES, BINSTRING
        case 0x8c: case 0x43: case 0x55: case 0x8a: return 1 + u8(); // SHORT_BINUNICODE, SHORT_BINBYTES, SHORT_BINSTRING, LONG1
        case 0x63: { // GLOBAL: two newline-terminated lines
            const first = data.indexOf(0x0a, pos + 1);
            const second = first < 0 ? -1 : data.indexOf(0x0a, first + 1);
            return second < 0 ? undefined : second - pos;
        }
        case 0x7d: case 0x28: case 0x74: case 0x85: case 0x86: case 0x87: case 0x29: case 0x89: case 0x88: case 0x4e:
        case 0x51: case 0x52: case 0x75: case 0x73: case 0x62: case 0x2e: case 0x5d: case 0x61: case 0x65: case 0x94:
        case 0x93: case 0x81: case 0x30: case 0x31: case 0x32:
            return 0;
        default:
            return undefined;
    }
}

/** Start offsets of the opcodes of a pickle stream (as far as it can be walked). */
export function pickleOpcodeOffsets(data: Buffer): number[] {
    const out: number[] = [];
    let pos = 0;
    while (pos < data.length) {
        out.push(pos);
        const arg = pickleArgLength(data, pos);
        if (arg === undefined || data[pos] === 0x2e) break;
        pos += 1 + arg;
    }
    return out;
}

/** Every opcode byte of the pickle protocol (0–5), plus a few bytes that are none. */
const PICKLE_OPCODES = Buffer.from("(.0123FGIJKLMNPQRSTUVXabcdeghijlopqrstu}~)]", "latin1");
const PICKLE_OPCODES_EXTRA = [0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x00, 0xff, 0x21];

/** Edits the pickle (data.pkl) inside a PyTorch zip in place, same length, then fixes both CRC-32 fields. */
export const pickleOpcodeEdit: Mutator = (input, rng) => {
    const out = Buffer.from(input);
    const entry = zipEntries(out).find((e) => e.name.endsWith("/data.pkl") || e.name === "data.pkl");
    if (!entry) return byteFlip(input, rng);
    const pkl = out.subarray(entry.dataStart, entry.dataStart + entry.size);
    const ops = pickleOpcodeOffsets(pkl);
    const kind = rng.int(4);
    let what: string;
    if (kind <= 1) {
        const pos = rng.pick(ops);
        const old = pkl[pos]!;
        const op = rng.next() < 0.6 ? PICKLE_OPCODES[rng.int(PICKLE_OPCODES.length)]! : rng.pick(PICKLE_OPCODES_EXTRA);
        pkl[pos] = op;
        what = `opcode at ${pos}: 0x${old.toString(16)} → 0x${op.toString(16)}`;
    } else if (kind === 2) {
        // An argument byte: memo indices, integers (shapes, strides, storage offsets), string lengths.
        const withArgs = ops.filter((p) => (pickleArgLength(pkl, p) ?? 0) > 0);
        const pos = rng.pick(withArgs.length > 0 ? withArgs : ops);
        const argAt = Math.min(pkl.length - 1, pos + 1 + rng.int(Math.max(1, Math.min(4, pickleArgLength(pkl, pos) ?? 1))));
        pkl[argAt] = rng.pick([0x00, 0xff, 0x7f, 0x80, (pkl[argAt]! + 1) & 0xff, (pkl[argAt]! - 1) & 0xff]);
        what = `argument byte at ${argAt} of opcode 0x${pkl[pos]!.toString(16)}`;
    } else {
        // Swap two neighbouring opcodes' first bytes.
        const i = rng.int(Math.max(1, ops.length - 1));
        const p = ops[i]!, q = ops[Math.min(ops.length - 1, i + 1)]!;
        const t = pkl[p]!;
        pkl[p] = pkl[q]!;
        pkl[q] = t;
        what = `swap opcode bytes at ${p} and ${q}`;
    }
    const crc = crc32(pkl);
    out.writeUInt32LE(crc, entry.localHeader + 14);
    out.writeUInt32LE(crc, entry.centralHeader + 16);
    return { bytes: out, what: `data.pkl ${what}` };
};

/** Flips bytes inside the zip structure only (local headers, central directory, end record). */
export const zipStructureFlip: Mutator = (input, rng) => {
    const entries = zipEntries(input);
    if (entries.length === 0) return byteFlip(input, rng);
    const out = Buffer.from(input);
    const entry = rng.pick(entries);
    const region = rng.int(3);
    const pos = region === 0 ? entry.localHeader + rng.int(30) : region === 1 ? entry.centralHeader + rng.int(46) : out.length - 22 + rng.int(22);
    out[pos] = out[pos]! ^ (1 + rng.int(255));
    return { bytes: out, what: `zip ${["local header", "central directory", "end record"][region]} byte ${pos} (${entry.name})` };
};

/** Bit patterns of NaN, +Inf, −Inf per dtype. */
const NON_FINITE: Readonly<Record<"F32" | "F16" | "BF16", readonly [number, number, number]>> = {
    F32: [0x7fc00000, 0x7f800000, 0xff800000],
    F16: [0x7e00, 0x7c00, 0xfc00],
    BF16: [0x7fc0, 0x7f80, 0xff80],
};

/** Replaces the tensor element at byte `at` (of the given dtype) with NaN or ±Inf. */
export function injectNonFinite(input: Buffer, at: number, dtype: "F32" | "F16" | "BF16", rng: Prng): Mutation {
    const out = Buffer.from(input);
    const k = rng.int(3);
    const bits = NON_FINITE[dtype][k]!;
    if (dtype === "F32") out.writeUInt32LE(bits, at);
    else out.writeUInt16LE(bits, at);
    return { bytes: out, what: `${["NaN", "+Inf", "-Inf"][k]} (${dtype}) written at byte ${at}` };
}
