/**
 * Small helpers for the GPU check: float64 tensors of a fixture's reference.safetensors (the project's
 * safetensors reader only accepts weight dtypes), norm-wise relative differences, first-index argmax.
 */
import { readFile } from "node:fs/promises";
import { DataFormatError } from "../../src/errors.js";

/** All F64 tensors of a safetensors file, by name, with their shapes. */
export async function readFloat64Tensors(file: string): Promise<Map<string, { shape: number[]; data: Float64Array }>> {
    const bytes = await readFile(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, unknown>;
    const dataStart = 8 + headerLength;
    const out = new Map<string, { shape: number[]; data: Float64Array }>();
    for (const [name, entry] of Object.entries(header)) {
        if (name === "__metadata__") continue;
        const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
        if (dtype !== "F64") throw new DataFormatError(`${file}: tensor ${name} has dtype ${dtype}; expected F64`);
        const [begin, end] = offsets;
        const copy = new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end));
        out.set(name, { shape, data: new Float64Array(copy.buffer, 0, (end - begin) / 8) });
    }
    return out;
}

/** ‖a − b‖ / ‖b‖ over paired elements (NaN anywhere gives NaN, which fails every tolerance). */
export function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
    let num = 0;
    let den = 0;
    for (let i = 0; i < b.length; i++) {
        const d = (a[i] ?? Number.NaN) - (b[i] ?? Number.NaN);
        num += d * d;
        den += (b[i] ?? 0) * (b[i] ?? 0);
    }
    return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-300);
}

/** Index of the first maximum of values[offset .. offset+length). */
export function firstArgmax(values: ArrayLike<number>, offset: number, length: number): number {
    let best = 0;
    let bestValue = -Infinity;
    for (let i = 0; i < length; i++) {
        const v = values[offset + i] ?? -Infinity;
        if (i === 0 || v > bestValue) {
            best = i;
            bestValue = v;
        }
    }
    return best;
}

/** log_softmax(row)[target] in float64. */
export function logSoftmaxAt(row: ArrayLike<number>, offset: number, length: number, target: number): number {
    let max = -Infinity;
    for (let i = 0; i < length; i++) max = Math.max(max, row[offset + i] ?? -Infinity);
    let sum = 0;
    for (let i = 0; i < length; i++) sum += Math.exp((row[offset + i] ?? -Infinity) - max);
    return (row[offset + target] ?? Number.NaN) - max - Math.log(sum);
}
