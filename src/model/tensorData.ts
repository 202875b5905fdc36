/**
 * Element types and reading a `TensorSource`'s bytes in TypeScript (tests, checks, the reference backend).
 * The native side memory-maps the files itself; nothing here is on its path.
 */
import { open } from "node:fs/promises";
import { endianness } from "node:os";
import { CheckpointFormatError } from "../errors.js";
import type { TensorDType, TensorSource } from "./types.js";

/** Bytes per element of each supported dtype. */
export const DTYPE_BYTES: Readonly<Record<TensorDType, number>> = { F32: 4, F16: 2, BF16: 2 };

/** Product of a shape's dimensions (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
    return shape.reduce((product, dim) => product * dim, 1);
}

/** Reads exactly `src.byteLength` bytes at `src.offset` of `src.file`. */
export async function readTensorBytes(src: TensorSource): Promise<Buffer> {
    const handle = await open(src.file, "r");
    try {
        const bytes = Buffer.alloc(src.byteLength);
        const { bytesRead } = await handle.read(bytes, 0, src.byteLength, src.offset);
        if (bytesRead !== src.byteLength) {
            throw new CheckpointFormatError(
                `${src.file}: tensor ${src.name} needs ${src.byteLength} bytes at offset ${src.offset} but the file ends first`,
            );
        }
        return bytes;
    } finally {
        await handle.close();
    }
}

/** IEEE half → float (exact). */
function halfToFloat(h: number): number {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) return sign * mantissa * 2 ** -24;
    if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
    return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * Little-endian bytes of `dtype` → Float32Array. F32 input on a little-endian machine whose buffer is 4-byte
 * aligned is viewed without copying; F16/BF16 are widened exactly.
 */
export function bytesToF32(bytes: Uint8Array, dtype: TensorDType): Float32Array {
    if (endianness() !== "LE") throw new CheckpointFormatError("checkpoint tensors are little-endian; this machine is not");
    const n = bytes.byteLength / DTYPE_BYTES[dtype];
    if (dtype === "F32") {
        if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
        return new Float32Array(bytes.slice().buffer, 0, n);
    }
    const out = new Float32Array(n);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dtype === "BF16") {
        const widened = new Uint32Array(out.buffer);
        for (let i = 0; i < n; i++) widened[i] = view.getUint16(2 * i, true) << 16;
    } else {
        for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
    }
    return out;
}

/** Reads a tensor and returns its values as float32 (row-major, `src.shape`). */
export async function readTensorF32(src: TensorSource): Promise<Float32Array> {
    return bytesToF32(await readTensorBytes(src), src.dtype);
}
