/**
 * Tiny random Mamba-1 / Mamba-2 checkpoints for the native tests: written as a real safetensors file
 * (header + little-endian data) and described by a NativeModelSpec, so the addon loads them like any model.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { NativeModelSpec, ScoreBatch } from "../../src/addon/addonTypes.js";
import type { TensorDType, TensorSource } from "../../src/model/types.js";
import { Mulberry32 } from "../../src/lm/prng.js";

/** Shapes of a tiny model. */
export interface TinyShape {
    family: 1 | 2;
    dModel: number;
    nLayer: number;
    vocab: number;
    dState: number;
    dConv: number;
    expand: number;
    dtRank?: number;
    headDim?: number;
    nGroups?: number;
    projBias?: boolean;
    tieEmbeddings?: boolean;
}

/** A weight in float64 (the values the file holds, after any bf16 rounding). */
export interface TinyWeights {
    shape: Required<TinyShape> & { dInner: number; nHeads: number };
    tensors: Map<string, { shape: number[]; data: Float64Array }>;
}

export const MAMBA1_SHAPE: TinyShape = { family: 1, dModel: 32, nLayer: 2, vocab: 64, dState: 8, dConv: 4, expand: 2, dtRank: 5 };
export const MAMBA2_SHAPE: TinyShape = {
    family: 2, dModel: 32, nLayer: 2, vocab: 64, dState: 12, dConv: 4, expand: 2, headDim: 16, nGroups: 2,
};

/** Deterministic uniform [0, 1) generator (the project's seeded PRNG). */
function rng(seed: number): () => number {
    const prng = new Mulberry32(seed);
    return () => prng.next();
}

/** float64 → nearest bf16, returned as float64 (round to nearest even, like the addon). */
function roundBf16(x: number): number {
    const f = new Float32Array([x]);
    const u = new Uint32Array(f.buffer);
    const bits = u[0]!;
    u[0] = ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) << 16;
    return f[0]!;
}

/** Random weights with sensible scales (dt ≈ 0.001–0.1, A = −(1..N), unit norms with noise). */
export function randomWeights(s: TinyShape, seed: number, roundToBf16 = false): TinyWeights {
    const r = rng(seed);
    const full = {
        dtRank: 0, headDim: 0, nGroups: 0, projBias: false, tieEmbeddings: true, ...s,
        dInner: s.expand * s.dModel,
        nHeads: s.family === 2 ? (s.expand * s.dModel) / (s.headDim ?? 1) : 0,
    };
    const D = full.dModel, E = full.dInner, N = full.dState, K = full.dConv, V = full.vocab;
    const tensors = new Map<string, { shape: number[]; data: Float64Array }>();
    const put = (name: string, shape: number[], gen: (i: number) => number): void => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = new Float64Array(n);
        for (let i = 0; i < n; i++) {
            const v = Math.fround(gen(i));
            data[i] = roundToBf16 ? roundBf16(v) : v;
        }
        tensors.set(name, { shape, data });
    };
    const uni = (scale: number) => () => (r() * 2 - 1) * scale;
    put("backbone.embedding.weight", [V, D], uni(1));
    put("backbone.norm_f.weight", [D], () => 1 + (r() - 0.5) * 0.2);
    if (!full.tieEmbeddings) put("lm_head.weight", [V, D], uni(0.5));
    for (let l = 0; l < full.nLayer; l++) {
        const p = `backbone.layers.${l}.`;
        put(p + "norm.weight", [D], () => 1 + (r() - 0.5) * 0.2);
        const convCh = full.family === 1 ? E : E + 2 * full.nGroups * N;
        const inRows = full.family === 1 ? 2 * E : 2 * E + 2 * full.nGroups * N + full.nHeads;
        put(p + "mixer.in_proj.weight", [inRows, D], uni(1 / Math.sqrt(D)));
        if (full.projBias) put(p + "mixer.in_proj.bias", [inRows], uni(0.1));
        put(p + "mixer.conv1d.weight", [convCh, 1, K], uni(0.5));
        put(p + "mixer.conv1d.bias", [convCh], uni(0.2));
        if (full.family === 1) {
            const R = full.dtRank;
            put(p + "mixer.x_proj.weight", [R + 2 * N, E], uni(1 / Math.sqrt(E)));
            put(p + "mixer.dt_proj.weight", [E, R], uni(1 / Math.sqrt(R)));
            // softplus⁻¹ of dt ∈ [0.001, 0.1]
            put(p + "mixer.dt_proj.bias", [E], () => {
                const dt = Math.exp(Math.log(0.001) + r() * (Math.log(0.1) - Math.log(0.001)));
                return dt + Math.log(-Math.expm1(-dt));
            });
            put(p + "mixer.A_log", [E, N], (i) => Math.log((i % N) + 1));
            put(p + "mixer.D", [E], () => 1 + (r() - 0.5) * 0.2);
        } else {
            put(p + "mixer.dt_bias", [full.nHeads], () => {
                const dt = Math.exp(Math.log(0.001) + r() * (Math.log(0.1) - Math.log(0.001)));
                return dt + Math.log(-Math.expm1(-dt));
            });
            put(p + "mixer.A_log", [full.nHeads], () => Math.log(1 + r() * 15));
            put(p + "mixer.D", [full.nHeads], () => 1 + (r() - 0.5) * 0.2);
            put(p + "mixer.norm.weight", [E], () => 1 + (r() - 0.5) * 0.2);
        }
        put(p + "mixer.out_proj.weight", [D, E], uni(1 / Math.sqrt(E)));
        if (full.projBias) put(p + "mixer.out_proj.bias", [D], uni(0.1));
    }
    return { shape: full, tensors };
}

/** Writes the weights as one safetensors file (every tensor in `dtype`) and returns its TensorSources. */
export function writeSafetensors(file: string, w: TinyWeights, dtype: TensorDType = "F32"): TensorSource[] {
    const esize = dtype === "F32" ? 4 : 2;
    const header: Record<string, unknown> = {};
    let offset = 0;
    const entries = [...w.tensors.entries()];
    for (const [name, t] of entries) {
        const bytes = t.data.length * esize;
        header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
        offset += bytes;
    }
    let json = JSON.stringify(header);
    json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
    const headerBytes = Buffer.from(json, "utf8");
    const buf = Buffer.alloc(8 + headerBytes.length + offset);
    buf.writeBigUInt64LE(BigInt(headerBytes.length), 0);
    headerBytes.copy(buf, 8);
    const base = 8 + headerBytes.length;
    const sources: TensorSource[] = [];
    let at = base;
    for (const [name, t] of entries) {
        const start = at;
        for (const v of t.data) {
            if (dtype === "F32") buf.writeFloatLE(v, at);
            else buf.writeUInt16LE(new Uint32Array(new Float32Array([v]).buffer)[0]! >>> 16, at);  // exact for bf16 values
            at += esize;
        }
        sources.push({ name, dtype, shape: t.shape, file, offset: start, byteLength: at - start });
    }
    writeFileSync(file, buf);
    return sources;
}

const created: string[] = [];

/** Removes every folder tempDir() made (call it in afterAll). */
export function removeTempDirs(): void {
    for (const d of created.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A fresh temporary folder for one test file's checkpoints; see removeTempDirs. */
export function tempDir(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), "mamba-eval-native-"));
    created.push(dir);
    return dir;
}

/** The addon spec of a tiny model whose tensors were written by writeSafetensors. */
export function tinySpec(w: TinyWeights, tensors: TensorSource[], threads = 1, weightType: "f32" | "bf16" = "f32"): NativeModelSpec {
    const s = w.shape;
    return {
        device: "cpu", family: s.family, dModel: s.dModel, nLayer: s.nLayer, vocab: s.vocab, dState: s.dState,
        dConv: s.dConv, dInner: s.dInner, dtRank: s.dtRank, nHeads: s.nHeads, headDim: s.headDim, nGroups: s.nGroups,
        normEps: 1e-5, convBias: true, projBias: s.projBias, tieEmbeddings: s.tieEmbeddings, threads, weightType, tensors,
    };
}

/** A batch of whole sequences, each from the zero state, asking for the logits of every row. */
export function wholeBatch(seqs: number[][]): ScoreBatch {
    const offsets = [0];
    for (const s of seqs) offsets.push(offsets[offsets.length - 1]! + s.length);
    const T = offsets[offsets.length - 1]!;
    return {
        tokens: Int32Array.from(seqs.flat()),
        segOffsets: Int32Array.from(offsets),
        segInit: new Int32Array(seqs.length).fill(-1),
        segSave: new Int32Array(seqs.length).fill(-1),
        scoreRows: new Int32Array(0),
        scoreTargets: new Int32Array(0),
        logitRows: Int32Array.from({ length: T }, (_, i) => i),
    };
}
