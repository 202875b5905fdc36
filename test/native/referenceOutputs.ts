/** The fixtures' float64 reference outputs (fixtures/README.md): reading them, and the relative error rule. */
import { readFileSync } from "node:fs";
import { expect } from "vitest";

/** The float64 tensors of a safetensors file (reference outputs), by name. */
export function readF64Safetensors(file: string): Map<string, Float64Array> {
    const buf = readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const out = new Map<string, Float64Array>();
    for (const [name, t] of Object.entries(header)) {
        if (name === "__metadata__") continue;
        if (t.dtype !== "F64") throw new Error(`${file}: ${name} is ${t.dtype}, expected F64`);
        const [a, b] = t.data_offsets;
        const bytes = buf.subarray(8 + n + a, 8 + n + b);
        out.set(name, new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
    }
    return out;
}

/** max|got − ref| / max|ref| over all elements. */
export function relativeError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
    expect(got.length).toBe(ref.length);
    let d = 0, m = 0;
    for (let i = 0; i < ref.length; i++) {
        d = Math.max(d, Math.abs(got[i]! - ref[i]!));
        m = Math.max(m, Math.abs(ref[i]!));
    }
    return d / m;
}
