/**
 * Random-weight checkpoints at the real Mamba shapes, written once as safetensors into a cache folder
 * (os.tmpdir()/mamba-eval-bench) and reused while their size matches. Values have sensible scales
 * (dt ≈ 0.001–0.1, A = −(1..N), unit norms) so activations stay finite over long sequences.
 */
import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { NativeModelSpec } from "../src/addon/addonTypes.js";
import type { TensorSource } from "../src/model/types.js";

/** The dimensions of one benchmark model (mamba_ssm config fields). */
export interface BenchShape {
    name: string;
    family: 1 | 2;
    dModel: number;
    nLayer: number;
    vocab: number;
    dState: number;
    dConv: number;
    dInner: number;
    dtRank: number;
    headDim: number;
    nGroups: number;
}

const V = 50280;
/** mamba-130m: D 768, 24 layers, E 1536, N 16, dt_rank 48. */
export const MAMBA_130M: BenchShape = { name: "mamba-130m", family: 1, dModel: 768, nLayer: 24, vocab: V, dState: 16, dConv: 4, dInner: 1536, dtRank: 48, headDim: 0, nGroups: 0 };
/** mamba-370m: D 1024, 48 layers, E 2048, N 16, dt_rank 64. */
export const MAMBA_370M: BenchShape = { name: "mamba-370m", family: 1, dModel: 1024, nLayer: 48, vocab: V, dState: 16, dConv: 4, dInner: 2048, dtRank: 64, headDim: 0, nGroups: 0 };
/** mamba-790m: D 1536, 48 layers, E 3072, N 16, dt_rank 96. */
export const MAMBA_790M: BenchShape = { name: "mamba-790m", family: 1, dModel: 1536, nLayer: 48, vocab: V, dState: 16, dConv: 4, dInner: 3072, dtRank: 96, headDim: 0, nGroups: 0 };
/** mamba-1.4b: D 2048, 48 layers, E 4096, N 16, dt_rank 128. */
export const MAMBA_1_4B: BenchShape = { name: "mamba-1.4b", family: 1, dModel: 2048, nLayer: 48, vocab: V, dState: 16, dConv: 4, dInner: 4096, dtRank: 128, headDim: 0, nGroups: 0 };
/** mamba2-130m: D 768, 24 layers, E 1536, headdim 64 (24 heads), N 128, 1 group. */
export const MAMBA2_130M: BenchShape = { name: "mamba2-130m", family: 2, dModel: 768, nLayer: 24, vocab: V, dState: 128, dConv: 4, dInner: 1536, dtRank: 0, headDim: 64, nGroups: 1 };

function heads(s: BenchShape): number {
    return s.family === 2 ? s.dInner / s.headDim : 0;
}

type Gen = (i: number) => number;
interface Planned {
    name: string;
    shape: number[];
    gen: Gen;
}

/** xorshift32 → uniform [-1, 1). */
function rng(seed: number): () => number {
    let x = seed >>> 0 || 1;
    return () => {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        return x / 2147483648 - 1;
    };
}

function plan(s: BenchShape): Planned[] {
    const r = rng(12345);
    const D = s.dModel, E = s.dInner, N = s.dState, K = s.dConv, H = heads(s), G = s.nGroups;
    const uni = (scale: number): Gen => () => r() * scale;
    const near1: Gen = () => 1 + r() * 0.1;
    const dtBias: Gen = () => {
        const dt = Math.exp(Math.log(0.001) + (r() * 0.5 + 0.5) * (Math.log(0.1) - Math.log(0.001)));
        return dt + Math.log(-Math.expm1(-dt));
    };
    const out: Planned[] = [
        { name: "backbone.embedding.weight", shape: [s.vocab, D], gen: uni(1) },
        { name: "backbone.norm_f.weight", shape: [D], gen: near1 },
    ];
    for (let l = 0; l < s.nLayer; l++) {
        const p = `backbone.layers.${l}.`;
        const convCh = s.family === 1 ? E : E + 2 * G * N;
        const inRows = s.family === 1 ? 2 * E : 2 * E + 2 * G * N + H;
        out.push({ name: p + "norm.weight", shape: [D], gen: near1 });
        out.push({ name: p + "mixer.in_proj.weight", shape: [inRows, D], gen: uni(1 / Math.sqrt(D)) });
        out.push({ name: p + "mixer.conv1d.weight", shape: [convCh, 1, K], gen: uni(0.5) });
        out.push({ name: p + "mixer.conv1d.bias", shape: [convCh], gen: uni(0.2) });
        if (s.family === 1) {
            out.push({ name: p + "mixer.x_proj.weight", shape: [s.dtRank + 2 * N, E], gen: uni(1 / Math.sqrt(E)) });
            out.push({ name: p + "mixer.dt_proj.weight", shape: [E, s.dtRank], gen: uni(1 / Math.sqrt(s.dtRank)) });
            out.push({ name: p + "mixer.dt_proj.bias", shape: [E], gen: dtBias });
            out.push({ name: p + "mixer.A_log", shape: [E, N], gen: (i) => Math.log((i % N) + 1) });
            out.push({ name: p + "mixer.D", shape: [E], gen: near1 });
        } else {
            out.push({ name: p + "mixer.dt_bias", shape: [H], gen: dtBias });
            out.push({ name: p + "mixer.A_log", shape: [H], gen: () => Math.log(1 + (r() * 0.5 + 0.5) * 15) });
            out.push({ name: p + "mixer.D", shape: [H], gen: near1 });
            out.push({ name: p + "mixer.norm.weight", shape: [E], gen: near1 });
        }
        out.push({ name: p + "mixer.out_proj.weight", shape: [D, E], gen: uni(1 / Math.sqrt(E)) });
    }
    return out;
}

const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Header bytes (padded to 8) and the TensorSources of a planned file. */
function layout(tensors: Planned[], file: string): { header: Buffer; sources: TensorSource[]; total: number } {
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const t of tensors) {
        const bytes = count(t.shape) * 4;
        header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
        offset += bytes;
    }
    let json = JSON.stringify(header);
    json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
    const body = Buffer.from(json, "utf8");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(body.length));
    const base = 8 + body.length;
    let at = base;
    const sources = tensors.map((t) => {
        const byteLength = count(t.shape) * 4;
        const src: TensorSource = { name: t.name, dtype: "F32", shape: t.shape, file, offset: at, byteLength };
        at += byteLength;
        return src;
    });
    return { header: Buffer.concat([len, body]), sources, total: at };
}

/** The cache folder for benchmark checkpoints. */
export function benchCacheDir(): string {
    const dir = path.join(os.tmpdir(), "mamba-eval-bench");
    mkdirSync(dir, { recursive: true });
    return dir;
}

/** Writes (or reuses) the random checkpoint of `shape`; returns its tensor sources. */
export function randomCheckpoint(shape: BenchShape): TensorSource[] {
    const file = path.join(benchCacheDir(), `${shape.name}-random-v1.safetensors`);
    const tensors = plan(shape);
    const { header, sources, total } = layout(tensors, file);
    if (existsSync(file) && statSync(file).size === total) return sources;
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = openSync(tmp, "w");
    try {
        writeSync(fd, header);
        for (const t of tensors) {
            const n = count(t.shape);
            const chunk = 1 << 22;
            for (let i0 = 0; i0 < n; i0 += chunk) {
                const data = new Float32Array(Math.min(chunk, n - i0));
                for (let i = 0; i < data.length; i++) data[i] = t.gen(i0 + i);
                writeSync(fd, new Uint8Array(data.buffer));
            }
        }
    } finally {
        closeSync(fd);
    }
    renameSync(tmp, file);
    return sources;
}

/** The addon spec for a benchmark model. */
export function benchSpec(shape: BenchShape, tensors: TensorSource[], threads: number, weightType: "f32" | "bf16"): NativeModelSpec {
    return {
        device: "cpu", family: shape.family, dModel: shape.dModel, nLayer: shape.nLayer, vocab: shape.vocab,
        dState: shape.dState, dConv: shape.dConv, dInner: shape.dInner, dtRank: shape.dtRank, nHeads: heads(shape),
        headDim: shape.headDim, nGroups: shape.nGroups, normEps: 1e-5, convBias: true, projBias: false,
        tieEmbeddings: true, threads, weightType, tensors,
    };
}

/** Multiply-adds of the matrix products per token, ×2 (the "GEMM flops"; the LM head included, the embedding lookup not). */
export function flopsPerToken(s: BenchShape): number {
    const D = s.dModel, E = s.dInner, N = s.dState;
    const perLayer = s.family === 1
        ? 2 * E * D + (s.dtRank + 2 * N) * E + E * s.dtRank + D * E
        : (2 * E + 2 * s.nGroups * N + heads(s)) * D + D * E;
    return 2 * (s.nLayer * perLayer + s.vocab * D);
}

/** Floats of activation scratch one score() call of T tokens uses (the backend's buffers, LM head chunk of 128 rows). */
export function activationBytes(s: BenchShape, T: number): number {
    const D = s.dModel, E = s.dInner, N = s.dState, H = heads(s);
    const inRows = s.family === 1 ? 2 * E : 2 * E + 2 * s.nGroups * N + H;
    const convCh = s.family === 1 ? E : E + 2 * s.nGroups * N;
    const perRow = 2 * D + inRows + convCh + E + (s.family === 1 ? s.dtRank + 2 * N + E : 0);
    return 4 * (T * perRow + 128 * (s.vocab + D));
}
