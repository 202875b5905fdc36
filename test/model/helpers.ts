/**
 * Test helpers for the model loaders: a safetensors writer (written from the format description, independent of
 * the reader), tiny Mamba tensor lists for both families, and temporary folders.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { MambaConfig, TensorDType } from "../../src/model/types.js";

/** A tensor to write: its values are `value(k, i)` = (i + 1) * 0.25 + k unless `bytes` is given. */
export interface TensorSpec {
    name: string;
    shape: number[];
    dtype?: TensorDType;
    bytes?: Uint8Array;
}

/** Element value used by every generated tensor (the k-th tensor, element i); exact in F32, F16 and BF16 for small k, i. */
export function elementValue(k: number, i: number): number {
    return (i + 1) * 0.25 + k;
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** float → IEEE half bits, for values exactly representable in half (the test values are). */
function floatToHalfBits(value: number): number {
    if (value === 0) return 0;
    const sign = value < 0 ? 0x8000 : 0;
    const abs = Math.abs(value);
    const exponent = Math.floor(Math.log2(abs));
    const mantissa = Math.round((abs / 2 ** exponent - 1) * 1024);
    return sign | ((exponent + 15) << 10) | mantissa;
}

/** The little-endian bytes of the k-th generated tensor. */
export function tensorBytes(k: number, shape: number[], dtype: TensorDType): Uint8Array {
    const n = numel(shape);
    const out = Buffer.alloc(n * (dtype === "F32" ? 4 : 2));
    for (let i = 0; i < n; i++) {
        const v = elementValue(k, i);
        if (dtype === "F32") out.writeFloatLE(v, 4 * i);
        else if (dtype === "F16") out.writeUInt16LE(floatToHalfBits(v), 2 * i);
        else {
            const f = Buffer.alloc(4);
            f.writeFloatLE(v, 0);
            out.writeUInt16LE(f.readUInt16LE(2), 2 * i);
        }
    }
    return out;
}

/** Writes a safetensors file: 8-byte LE header length, JSON header (padded with spaces to 8 bytes), data. */
export async function writeSafetensors(file: string, tensors: TensorSpec[], headerOverride?: (header: Record<string, unknown>) => void): Promise<void> {
    const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
    const chunks: Uint8Array[] = [];
    let offset = 0;
    tensors.forEach((t, k) => {
        const dtype = t.dtype ?? "F32";
        const bytes = t.bytes ?? tensorBytes(k, t.shape, dtype);
        header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
        chunks.push(bytes);
        offset += bytes.byteLength;
    });
    headerOverride?.(header);
    let json = JSON.stringify(header);
    json += " ".repeat((8 - (json.length % 8)) % 8);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    await writeFile(file, Buffer.concat([length, Buffer.from(json), ...chunks]));
}

/** A temporary folder, removed by the returned cleanup. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
    const dir = await mkdtemp(path.join(tmpdir(), "mamba-eval-model-"));
    return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Shapes of every tensor of a model, written independently of weightMap.ts from docs/architecture.md. */
export function modelTensorSpecs(c: MambaConfig, layout: "mamba_ssm" | "transformers", rows: number, withLmHead: boolean): TensorSpec[] {
    const D = c.dModel;
    const E = c.dInner;
    const N = c.dState;
    const K = c.dConv;
    const specs: TensorSpec[] = [
        { name: layout === "transformers" ? "backbone.embeddings.weight" : "backbone.embedding.weight", shape: [rows, D] },
    ];
    for (let i = 0; i < c.nLayer; i++) {
        const p = `backbone.layers.${i}.`;
        specs.push({ name: `${p}norm.weight`, shape: [D] });
        if (c.family === "mamba1") {
            const R = c.dtRank;
            specs.push(
                { name: `${p}mixer.A_log`, shape: [E, N] }, { name: `${p}mixer.D`, shape: [E] },
                { name: `${p}mixer.conv1d.weight`, shape: [E, 1, K] }, { name: `${p}mixer.conv1d.bias`, shape: [E] },
                { name: `${p}mixer.in_proj.weight`, shape: [2 * E, D] }, { name: `${p}mixer.x_proj.weight`, shape: [R + 2 * N, E] },
                { name: `${p}mixer.dt_proj.weight`, shape: [E, R] }, { name: `${p}mixer.dt_proj.bias`, shape: [E] },
                { name: `${p}mixer.out_proj.weight`, shape: [D, E] },
            );
        } else {
            const H = c.nHeads;
            const GN = c.nGroups * N;
            specs.push(
                { name: `${p}mixer.A_log`, shape: [H] }, { name: `${p}mixer.D`, shape: [H] }, { name: `${p}mixer.dt_bias`, shape: [H] },
                { name: `${p}mixer.conv1d.weight`, shape: [E + 2 * GN, 1, K] }, { name: `${p}mixer.conv1d.bias`, shape: [E + 2 * GN] },
                { name: `${p}mixer.in_proj.weight`, shape: [2 * E + 2 * GN + H, D] }, { name: `${p}mixer.norm.weight`, shape: [E] },
                { name: `${p}mixer.out_proj.weight`, shape: [D, E] },
            );
        }
    }
    specs.push({ name: "backbone.norm_f.weight", shape: [D] });
    if (withLmHead) specs.push({ name: "lm_head.weight", shape: [rows, D] });
    return specs;
}
