/**
 * safetensors files → `TensorSource[]` (names as written in the file; weightMap.ts canonicalises them).
 *
 * Format: 8-byte little-endian header length n, n bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__"?: {...}}`, then the data; offsets are relative to the byte after the header. Only headers are read.
 * Sharded checkpoints have `model.safetensors.index.json` with `weight_map: {tensor name: shard file}`.
 */
import { CheckpointFormatError } from "../errors.js";
import { FileAccessError, openRegularFile } from "../io/safeFile.js";
import { readShardedIndex } from "./shardedIndex.js";
import { DTYPE_BYTES, elementCount } from "./tensorData.js";
import type { TensorDType, TensorSource } from "./types.js";

/** Largest JSON header accepted (the format's own limit). */
export const MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024;

/** dtypes the safetensors format defines that we do not load (named in the refusal). */
const KNOWN_UNSUPPORTED_DTYPES = new Set([
    "F64", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3",
    "F6_E3M2", "F4", "C64",
]);

function isSupportedDType(dtype: string): dtype is TensorDType {
    return dtype === "F32" || dtype === "F16" || dtype === "BF16";
}

function isNonNegativeInt(value: unknown): value is number {
    return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Validates one header entry and turns it into a TensorSource with absolute file offsets. */
function headerEntryToSource(file: string, name: string, entry: unknown, dataStart: number, dataBytes: number): TensorSource {
    const fail = (what: string): never => {
        throw new CheckpointFormatError(`${file}: tensor ${name}: ${what}`);
    };
    if (typeof entry !== "object" || entry === null) fail("header entry is not an object");
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== "string") fail("missing dtype");
    const dtypeName = dtype as string;
    if (!isSupportedDType(dtypeName)) {
        const known = KNOWN_UNSUPPORTED_DTYPES.has(dtypeName) ? "unsupported" : "unknown";
        fail(`${known} dtype ${dtypeName}; expected F32, F16 or BF16`);
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) fail("shape must be a list of non-negative integers");
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
        fail("data_offsets must be [begin, end] with non-negative integers");
    }
    const dims = shape as number[];
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataBytes) fail(`data_offsets [${begin}, ${end}] run past the end of the data (${dataBytes} bytes)`);
    const expected = elementCount(dims) * DTYPE_BYTES[dtypeName as TensorDType];
    if (end - begin !== expected) {
        fail(`holds ${end - begin} bytes but shape [${dims.join(", ")}] of ${dtypeName} needs ${expected}`);
    }
    return { name, dtype: dtypeName as TensorDType, shape: dims, file, offset: dataStart + begin, byteLength: end - begin };
}

/**
 * The tensors must tile the data exactly, as the safetensors format requires (its reference reader refuses overlaps,
 * gaps and trailing bytes). A gap is what a header naming one tensor twice leaves behind: JSON.parse keeps the last
 * entry, so the first one's bytes belong to no tensor.
 */
function checkTiling(file: string, tensors: TensorSource[], dataStart: number, fileSize: number): void {
    const sorted = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
    let end = dataStart;
    let last: TensorSource | undefined;
    for (const t of sorted) {
        if (t.offset < end) throw new CheckpointFormatError(`${file}: tensors ${last!.name} and ${t.name} overlap`);
        if (t.offset > end) {
            throw new CheckpointFormatError(
                `${file}: data bytes ${end - dataStart}..${t.offset - dataStart} belong to no tensor (the tensors must cover the ` +
                    "data exactly; a header that names a tensor twice leaves such a gap)",
            );
        }
        end = t.offset + t.byteLength;
        last = t;
    }
    if (end !== fileSize) {
        throw new CheckpointFormatError(`${file}: ${fileSize - end} bytes after the last tensor's data belong to no tensor`);
    }
}

/** Parses one .safetensors file's header → its tensors (only F32/F16/BF16 accepted), in header order. */
export async function readSafetensorsHeader(file: string): Promise<TensorSource[]> {
    const { handle, size } = await openRegularFile(file).catch((e: unknown) => {
        const why = e instanceof FileAccessError && e.code === "ENOTREG" ? e.reason : "cannot open the safetensors file";
        throw new CheckpointFormatError(`${file}: ${why}`);
    });
    try {
        const lengthBytes = Buffer.alloc(8);
        if (size < 8 || (await handle.read(lengthBytes, 0, 8, 0)).bytesRead !== 8) {
            throw new CheckpointFormatError(`${file}: too short for a safetensors file (${size} bytes)`);
        }
        const headerLength = lengthBytes.readBigUInt64LE(0);
        if (headerLength > BigInt(MAX_SAFETENSORS_HEADER_BYTES) || headerLength + 8n > BigInt(size)) {
            throw new CheckpointFormatError(
                `${file}: header length ${headerLength} is not sane (file is ${size} bytes, limit ${MAX_SAFETENSORS_HEADER_BYTES})`,
            );
        }
        const n = Number(headerLength);
        const headerBytes = Buffer.alloc(n);
        await handle.read(headerBytes, 0, n, 8);
        let header: unknown;
        try {
            header = JSON.parse(headerBytes.toString("utf8"));
        } catch (e) {
            throw new CheckpointFormatError(`${file}: header is not valid JSON (${(e as Error).message.split("\n")[0]})`);
        }
        if (typeof header !== "object" || header === null || Array.isArray(header)) {
            throw new CheckpointFormatError(`${file}: header must be a JSON object`);
        }
        const dataStart = 8 + n;
        const tensors = Object.entries(header)
            .filter(([name]) => name !== "__metadata__")
            .map(([name, entry]) => headerEntryToSource(file, name, entry, dataStart, size - dataStart));
        checkTiling(file, tensors, dataStart, size);
        return tensors;
    } finally {
        await handle.close();
    }
}

/**
 * Reads a sharded safetensors checkpoint through its `model.safetensors.index.json` (see shardedIndex.ts for the
 * rules: every listed tensor in its shard, every shard tensor listed, shard names inside the folder).
 */
export async function readSafetensorsIndex(indexFile: string): Promise<TensorSource[]> {
    return readShardedIndex(indexFile, readSafetensorsHeader);
}
