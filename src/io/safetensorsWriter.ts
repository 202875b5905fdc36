/**
 * Writes float32 tensors to a .safetensors file: an 8-byte little-endian header length, the JSON header
 * (dtype, shape, data_offsets per tensor, in the given order), padded with spaces to a multiple of 8, then
 * the raw little-endian data.
 */
import { openSync, writeSync, closeSync } from "node:fs";
import { writeErrorMessage } from "./writeErrorMessage.js";
import { MambaEvalError } from "../errors.js";

export interface F32Tensor {
    name: string;
    shape: number[];
    data: Float32Array;
}

/** Writes `tensors` to `file` (overwriting it). */
export function writeSafetensorsF32(file: string, tensors: readonly F32Tensor[]): void {
    const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
    let offset = 0;
    for (const t of tensors) {
        const count = t.shape.reduce((a, b) => a * b, 1);
        if (count !== t.data.length) throw new RangeError(`tensor ${t.name}: shape ${JSON.stringify(t.shape)} holds ${count} values, data has ${t.data.length}`);
        header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
        offset += t.data.byteLength;
    }
    let json = JSON.stringify(header);
    json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
    const headerBytes = Buffer.from(json, "utf8");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(headerBytes.length));
    try {
        const fd = openSync(file, "w");
        try {
            writeSync(fd, len);
            writeSync(fd, headerBytes);
            for (const t of tensors) {
                const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength); // little-endian hosts
                writeSync(fd, bytes);
            }
        } finally {
            closeSync(fd);
        }
    } catch (e) {
        throw new MambaEvalError(writeErrorMessage(file, e));
    }
}
