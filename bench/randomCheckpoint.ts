/**
 * Random-weight checkpoints at the real Mamba shapes, and at hybrid shapes of the same size (attention layers,
 * GatedMLP), written once as safetensors into a cache folder (os.tmpdir()/mamba-eval-bench) and reused while their
 * size matches. Values have sensible scales (dt ≈ 0.001–0.1, A = −(1..N), unit norms, projections ±1/√fan-in) so
 * activations stay finite over long sequences.
 */
import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { NativeModelSpec } from "../src/addon/addonTypes.js";
import type { TensorSource } from "../src/model/types.js";

/**
 * The attention layers and GatedMLP of a hybrid shape (mamba_ssm's attn_layer_idx, attn_cfg and d_intermediate).
 * The attention is MHA as the state-spaces hybrids configure it: causal, as many K/V heads as query heads, no
 * biases, no in-attention MLP, rotary base 10000, softmax scale 1/√head_dim.
 */
export interface HybridShape {
    /** Indices of the attention layers, ascending; every other layer is a Mamba layer of the shape's family. */
    attnLayers: number[];
    attnHeads: number;
    attnHeadDim: number;
    /** Taps of the causal depthwise conv over q, k, v (0: none). */
    attnConv: number;
    /** Rotary dimensions at the start of each q and k head. */
    attnRotaryDim: number;
    /** GatedMLP hidden size after every mixer, a multiple of 128 (0: no MLP, no norm2). */
    dIntermediate: number;
}

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
    /** Attention layers and GatedMLP; absent for a pure Mamba model. */
    hybrid?: HybridShape;
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

/**
 * mamba2attn-130m: mamba2-130m with 3 of its 24 layers attention, at 7, 14 and 21. mamba2attn-2.7b has 6 of 64
 * (9, 18, 27, 36, 45, 56 of 0–63: about every 9th layer); the same fraction of 24 would be 2.25 layers, so 3:
 * every other one of those (18, 36, 56) scaled by 24/64 is 6.75, 13.5, 21, rounded to every 7th layer. Attention:
 * 12 heads × 64 (width D; the 2.7b's 30 × 128 is 1.5 D), rotary on 32 dimensions (half a head, as the 2.7b's 64
 * of 128), a 4-tap conv over q, k, v, no biases; no GatedMLP (d_intermediate 0), as in mamba2attn-2.7b.
 * 125M parameters (mamba2-130m: 129M).
 */
export const MAMBA2ATTN_130M: BenchShape = {
    ...MAMBA2_130M, name: "mamba2attn-130m",
    hybrid: { attnLayers: [7, 14, 21], attnHeads: 12, attnHeadDim: 64, attnConv: 4, attnRotaryDim: 32, dIntermediate: 0 },
};
/**
 * transformerpp-130m: a Transformer++ (every layer attention, each followed by a GatedMLP) of 12 layers at D 768:
 * 12 heads × 64, rotary on 32 dimensions, no conv, no biases, GatedMLP hidden size 2048 (= 8/3 · D, already a
 * multiple of 128). A layer holds 7.08M parameters (qkv 2304 × 768, out_proj 768², fc1 4096 × 768, fc2 768 × 2048),
 * so 12 layers (85M) plus the 38.6M embedding make 124M, beside mamba2-130m's 129M (24 layers would make 208M);
 * GPT-3 Small and Pythia-160m have 12 layers at this width too. The Mamba-2 fields are those of mamba2-130m (its
 * config.json keeps a Mamba2 ssm_cfg, as scripts/cuda/make_bench_checkpoint.py writes for transformerpp-2.7b);
 * no layer uses them.
 */
export const TRANSFORMERPP_130M: BenchShape = {
    ...MAMBA2_130M, name: "transformerpp-130m", nLayer: 12,
    hybrid: { attnLayers: Array.from({ length: 12 }, (_, i) => i), attnHeads: 12, attnHeadDim: 64, attnConv: 0, attnRotaryDim: 32, dIntermediate: 2048 },
};

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

/** The value generators of one checkpoint, all drawing from one seeded stream (in the order tensors are written). */
function generators(r: () => number): { uni: (scale: number) => Gen; near1: Gen; dtBias: Gen; r: () => number } {
    return {
        uni: (scale) => () => r() * scale,
        near1: () => 1 + r() * 0.1,
        // softplus⁻¹ of a dt drawn log-uniformly in [0.001, 0.1] (mamba_ssm's dt init)
        dtBias: () => {
            const dt = Math.exp(Math.log(0.001) + (r() * 0.5 + 0.5) * (Math.log(0.1) - Math.log(0.001)));
            return dt + Math.log(-Math.expm1(-dt));
        },
        r,
    };
}

/** Whether layer `l` of `s` is an attention layer. */
function isAttention(s: BenchShape, l: number): boolean {
    return s.hybrid?.attnLayers.includes(l) ?? false;
}

/** Query/key/value rows of an attention layer's in_proj: H · hd each (as many K/V heads as query heads). */
function qkvRows(h: HybridShape): number {
    return 3 * h.attnHeads * h.attnHeadDim;
}

/** A Mamba layer's mixer tensors (`p` = "backbone.layers.{l}."). */
function mambaMixer(s: BenchShape, p: string, g: ReturnType<typeof generators>): Planned[] {
    const D = s.dModel, E = s.dInner, N = s.dState, K = s.dConv, H = heads(s), G = s.nGroups;
    const { uni, near1, dtBias, r } = g;
    const convCh = s.family === 1 ? E : E + 2 * G * N;
    const inRows = s.family === 1 ? 2 * E : 2 * E + 2 * G * N + H;
    const out: Planned[] = [
        { name: p + "mixer.in_proj.weight", shape: [inRows, D], gen: uni(1 / Math.sqrt(D)) },
        { name: p + "mixer.conv1d.weight", shape: [convCh, 1, K], gen: uni(0.5) },
        { name: p + "mixer.conv1d.bias", shape: [convCh], gen: uni(0.2) },
    ];
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
    return out;
}

/**
 * An attention layer's mixer tensors: in_proj [q | k | v] rows, the conv over them when it has one (taps ±0.5 as
 * the Mamba convs', so q·k stays O(1) and the softmax far from saturating), out_proj. No biases.
 */
function attentionMixer(s: BenchShape, h: HybridShape, p: string, g: ReturnType<typeof generators>): Planned[] {
    const D = s.dModel, qkv = qkvRows(h), ctx = h.attnHeads * h.attnHeadDim;
    const out: Planned[] = [{ name: p + "mixer.in_proj.weight", shape: [qkv, D], gen: g.uni(1 / Math.sqrt(D)) }];
    if (h.attnConv > 0) {
        out.push({ name: p + "mixer.conv1d.weight", shape: [qkv, 1, h.attnConv], gen: g.uni(0.5) });
        out.push({ name: p + "mixer.conv1d.bias", shape: [qkv], gen: g.uni(0.2) });
    }
    out.push({ name: p + "mixer.out_proj.weight", shape: [D, ctx], gen: g.uni(1 / Math.sqrt(ctx)) });
    return out;
}

/** The GatedMLP after a mixer: norm2, fc1 ([y | gate] rows), fc2. */
function gatedMlp(s: BenchShape, dI: number, p: string, g: ReturnType<typeof generators>): Planned[] {
    const D = s.dModel;
    return [
        { name: p + "norm2.weight", shape: [D], gen: g.near1 },
        { name: p + "mlp.fc1.weight", shape: [2 * dI, D], gen: g.uni(1 / Math.sqrt(D)) },
        { name: p + "mlp.fc2.weight", shape: [D, dI], gen: g.uni(1 / Math.sqrt(dI)) },
    ];
}

/** Every tensor of the checkpoint of `s`, with its generator (a pure Mamba shape's tensors are as they always were). */
function plan(s: BenchShape): Planned[] {
    const g = generators(rng(12345));
    const D = s.dModel;
    const out: Planned[] = [
        { name: "backbone.embedding.weight", shape: [s.vocab, D], gen: g.uni(1) },
        { name: "backbone.norm_f.weight", shape: [D], gen: g.near1 },
    ];
    for (let l = 0; l < s.nLayer; l++) {
        const p = `backbone.layers.${l}.`;
        out.push({ name: p + "norm.weight", shape: [D], gen: g.near1 });
        out.push(...(s.hybrid && isAttention(s, l) ? attentionMixer(s, s.hybrid, p, g) : mambaMixer(s, p, g)));
        if (s.hybrid?.dIntermediate) out.push(...gatedMlp(s, s.hybrid.dIntermediate, p, g));
    }
    return out;
}

/** The names and shapes of the checkpoint of `s` (what randomCheckpoint writes), in file order. */
export function plannedTensors(s: BenchShape): { name: string; shape: number[] }[] {
    return plan(s).map(({ name, shape }) => ({ name, shape }));
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

/**
 * Writes (or reuses) the random checkpoint of `shape` (by default in the bench cache folder; the tests write one
 * into a folder of their own); returns its tensor sources.
 */
export function randomCheckpoint(shape: BenchShape, file = path.join(benchCacheDir(), `${shape.name}-random-v1.safetensors`)): TensorSource[] {
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

/** The addon spec's hybrid fields for `h` (as NativeBackend's hybridSpec resolves them from a config). */
function hybridSpec(s: BenchShape, h: HybridShape): Partial<NativeModelSpec> {
    return {
        layerKinds: Array.from({ length: s.nLayer }, (_, l) => (isAttention(s, l) ? 1 : 0)),
        attnHeads: h.attnHeads, attnHeadsKv: h.attnHeads, attnHeadDim: h.attnHeadDim, attnConv: h.attnConv,
        attnRotaryDim: h.attnRotaryDim, attnRotaryBase: 10000, attnQkvBias: false, attnOutBias: false, attnMlpDim: 0,
        attnSoftmaxScale: 1 / Math.sqrt(h.attnHeadDim), dIntermediate: h.dIntermediate,
    };
}

/** The addon spec for a benchmark model. */
export function benchSpec(shape: BenchShape, tensors: TensorSource[], threads: number, weightType: "f32" | "bf16"): NativeModelSpec {
    return {
        device: "cpu", family: shape.family, dModel: shape.dModel, nLayer: shape.nLayer, vocab: shape.vocab,
        dState: shape.dState, dConv: shape.dConv, dInner: shape.dInner, dtRank: shape.dtRank, nHeads: heads(shape),
        headDim: shape.headDim, nGroups: shape.nGroups, normEps: 1e-5, convBias: true, projBias: false,
        tieEmbeddings: true, ...(shape.hybrid ? hybridSpec(shape, shape.hybrid) : {}), threads, weightType, tensors,
    };
}

/**
 * The config.json (mamba_ssm layout) of a checkpoint of this shape: loading the bench checkpoint with it through
 * the project's own parser and weight map must accept every tensor (test/bench/randomCheckpoint.test.ts). The
 * vocabulary is given already padded (50280, a multiple of 8).
 */
export function mambaSsmConfig(s: BenchShape): Record<string, unknown> {
    const expand = s.dInner / s.dModel;
    const ssmCfg = s.family === 1
        ? { layer: "Mamba1", d_state: s.dState, d_conv: s.dConv, expand, dt_rank: s.dtRank }
        : { layer: "Mamba2", d_state: s.dState, d_conv: s.dConv, expand, headdim: s.headDim, ngroups: s.nGroups };
    const h = s.hybrid;
    const attnCfg = h
        ? { causal: true, num_heads: h.attnHeads, head_dim: h.attnHeadDim, d_conv: h.attnConv, rotary_emb_dim: h.attnRotaryDim,
            qkv_proj_bias: false, out_proj_bias: false }
        : {};
    return {
        d_model: s.dModel, d_intermediate: h?.dIntermediate ?? 0, n_layer: s.nLayer, vocab_size: s.vocab, ssm_cfg: ssmCfg,
        attn_layer_idx: h?.attnLayers ?? [], attn_cfg: attnCfg, rms_norm: true, residual_in_fp32: true, fused_add_norm: true,
        pad_vocab_size_multiple: 8, tie_embeddings: true,
    };
}

/** Multiply-adds of a Mamba layer's matrix products per token (in_proj, x_proj, dt_proj, out_proj). */
function mambaLayerMacs(s: BenchShape): number {
    const D = s.dModel, E = s.dInner, N = s.dState;
    return s.family === 1
        ? 2 * E * D + (s.dtRank + 2 * N) * E + E * s.dtRank + D * E
        : (2 * E + 2 * s.nGroups * N + heads(s)) * D + D * E;
}

/** Multiply-adds of an attention layer's weight products per token: in_proj (q, k, v) and out_proj. */
function attentionLayerMacs(s: BenchShape, h: HybridShape): number {
    return qkvRows(h) * s.dModel + s.dModel * h.attnHeads * h.attnHeadDim;
}

/**
 * Multiply-adds of the weight matrix products per token, ×2 (the "GEMM flops"): every layer's projections (Mamba:
 * in_proj, x_proj, dt_proj, out_proj; attention: in_proj, out_proj), the GatedMLP's fc1 and fc2, and the LM head;
 * not the embedding lookup, the scans or attention's QKᵀ and A·V (attentionFlopsPerToken).
 */
export function gemmFlopsPerToken(s: BenchShape): number {
    const D = s.dModel, dI = s.hybrid?.dIntermediate ?? 0;
    let macs = s.vocab * D;
    for (let l = 0; l < s.nLayer; l++) {
        macs += s.hybrid && isAttention(s, l) ? attentionLayerMacs(s, s.hybrid) : mambaLayerMacs(s);
        macs += 3 * dI * D;  // fc1 (2·dI rows) and fc2
    }
    return 2 * macs;
}

/**
 * Attention's QKᵀ and A·V flops per token of a T-token prefill, on average over its rows: a query at position p
 * takes p + 1 keys, (T + 1)/2 on average, counted as T/2; QKᵀ and A·V are then T/2 · d multiply-adds each
 * (d = heads × head_dim), 2·T·d flops per attention layer. 0 for a pure Mamba shape.
 */
export function attentionFlopsPerToken(s: BenchShape, T: number): number {
    const h = s.hybrid;
    return h ? h.attnLayers.length * 2 * T * h.attnHeads * h.attnHeadDim : 0;
}

/** The flops per token a T-token prefill is credited with: the GEMM flops plus attention's QKᵀ and A·V. */
export function flopsPerToken(s: BenchShape, T: number): number {
    return gemmFlopsPerToken(s) + attentionFlopsPerToken(s, T);
}

/** Whether some layer of `s` is a Mamba layer. */
function hasMambaLayer(s: BenchShape): boolean {
    return (s.hybrid?.attnLayers.length ?? 0) < s.nLayer;
}

/** Floats per token of the Mamba layers' scratch: in_proj output, conv output, scan output (+ x_proj and dt for Mamba-1). */
function mambaScratchFloats(s: BenchShape): number {
    const E = s.dInner, N = s.dState, H = heads(s);
    const inRows = s.family === 1 ? 2 * E : 2 * E + 2 * s.nGroups * N + H;
    const convCh = s.family === 1 ? E : E + 2 * s.nGroups * N;
    return inRows + convCh + E + (s.family === 1 ? s.dtRank + 2 * N + E : 0);
}

/**
 * Floats per token of the attention and GatedMLP scratch (cpu_backend.cc run_score, the same as memoryGuard.ts
 * counts): in_proj or fc1 output, conv output or MLP hidden, the attention context and the layer's K and V rows.
 */
function hybridScratchFloats(h: HybridShape): number {
    const attn = h.attnLayers.length > 0, dI = h.dIntermediate;
    const ctx = h.attnHeads * h.attnHeadDim, kvRow = 2 * h.attnHeads * h.attnHeadDim;
    const big = Math.max(attn ? qkvRows(h) : 0, 2 * dI);
    const mid = Math.max(attn && h.attnConv > 0 ? qkvRows(h) : 0, dI);
    return big + mid + (attn ? ctx + kvRow : 0);
}

/**
 * Bytes of activation scratch one score() call of T tokens uses (the backend's buffers, LM head chunk of 128
 * rows). Left out, each well under 1 % here: the rotary table (T × rotary dims floats) and each thread's attention
 * tile (16 × T floats).
 */
export function activationBytes(s: BenchShape, T: number): number {
    const D = s.dModel;
    const perRow = 2 * D + (hasMambaLayer(s) ? mambaScratchFloats(s) : 0) + (s.hybrid ? hybridScratchFloats(s.hybrid) : 0);
    return 4 * (T * perRow + 128 * (s.vocab + D));
}
