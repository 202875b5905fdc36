/**
 * A plain float64 Mamba-1 / Mamba-2 forward for one sequence from the zero state, written from the formulas in
 * docs/architecture.md (mamba_ssm semantics). It is a readable cross-check of the native kernels until the
 * transformers fixtures land; it is not the independent oracle (same author).
 */
import type { TinyWeights } from "./tinyModel.js";

const silu = (x: number): number => x / (1 + Math.exp(-x));
const softplus = (x: number): number => (x > 20 ? x : Math.log1p(Math.exp(x)));

function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
    let ss = 0;
    for (const v of x) ss += v * v;
    const r = 1 / Math.sqrt(ss / x.length + eps);
    return x.map((v, i) => v * r * w[i]!);
}

/** y[n] = Σ_k W[n][k]·x[k] (+ b[n]) */
function linear(W: { shape: number[]; data: Float64Array }, x: Float64Array, b?: Float64Array): Float64Array {
    const [N, K] = W.shape as [number, number];
    const y = new Float64Array(N);
    for (let n = 0; n < N; n++) {
        let s = b ? b[n]! : 0;
        for (let k = 0; k < K; k++) s += W.data[n * K + k]! * x[k]!;
        y[n] = s;
    }
    return y;
}

/** Logits [T][V] of `tokens` scored from the zero state. */
export function referenceLogits(w: TinyWeights, tokens: readonly number[], eps = 1e-5): Float64Array[] {
    return referenceForward(w, tokens, eps).logits;
}

/**
 * Logits [T][V] of `tokens` scored from the zero state, and the state after the last token in the backend's exchange
 * layout (exportState): conv [layer][C][K−1] (oldest first), ssm [layer][E][N] (Mamba-1) or [layer][H][P][N] (Mamba-2).
 */
export function referenceForward(
    w: TinyWeights,
    tokens: readonly number[],
    eps = 1e-5,
): { logits: Float64Array[]; conv: number[]; ssm: number[] } {
    const conv: number[] = [], ssm: number[] = [];
    const s = w.shape;
    const get = (name: string) => {
        const t = w.tensors.get(name);
        if (!t) throw new Error(`reference: missing ${name}`);
        return t;
    };
    const D = s.dModel, E = s.dInner, N = s.dState, K = s.dConv, G = s.nGroups, H = s.nHeads, P = s.headDim;
    const emb = get("backbone.embedding.weight");
    let hs = tokens.map((t) => emb.data.slice(t * D, (t + 1) * D));
    for (let l = 0; l < s.nLayer; l++) {
        const p = `backbone.layers.${l}.mixer.`;
        const normW = get(`backbone.layers.${l}.norm.weight`).data;
        const inB = s.projBias ? get(p + "in_proj.bias").data : undefined;
        const outB = s.projBias ? get(p + "out_proj.bias").data : undefined;
        const xz = hs.map((h) => linear(get(p + "in_proj.weight"), rmsNorm(h, normW, eps), inB));
        const C = s.family === 1 ? E : E + 2 * G * N;
        const off = s.family === 1 ? 0 : E;
        const cw = get(p + "conv1d.weight").data, cb = get(p + "conv1d.bias").data;
        for (let c = 0; c < C; c++)
            for (let j = 0; j < K - 1; j++) {
                const tt = tokens.length - (K - 1) + j;
                conv.push(tt >= 0 ? xz[tt]![off + c]! : 0);
            }
        // causal depthwise conv + SiLU
        const xc = xz.map((_, t) => {
            const o = new Float64Array(C);
            for (let c = 0; c < C; c++) {
                let acc = cb[c]!;
                for (let j = 0; j < K; j++) {
                    const tt = t - (K - 1) + j;
                    if (tt >= 0) acc += cw[c * K + j]! * xz[tt]![off + c]!;
                }
                o[c] = silu(acc);
            }
            return o;
        });
        const ys: Float64Array[] = [];
        if (s.family === 1) {
            const R = s.dtRank;
            const A = get(p + "A_log").data.map((v) => -Math.exp(v));
            const Dv = get(p + "D").data;
            const h = new Float64Array(E * N);
            for (let t = 0; t < tokens.length; t++) {
                const x = xc[t]!;
                const dbl = linear(get(p + "x_proj.weight"), x);
                const dt = linear(get(p + "dt_proj.weight"), dbl.slice(0, R), get(p + "dt_proj.bias").data).map(softplus);
                const y = new Float64Array(E);
                for (let e = 0; e < E; e++) {
                    let acc = 0;
                    for (let n = 0; n < N; n++) {
                        const i = e * N + n;
                        h[i] = Math.exp(dt[e]! * A[i]!) * h[i]! + dt[e]! * dbl[R + n]! * x[e]!;
                        acc += h[i]! * dbl[R + N + n]!;
                    }
                    y[e] = (acc + Dv[e]! * x[e]!) * silu(xz[t]![E + e]!);
                }
                ys.push(y);
            }
            ssm.push(...h);
        } else {
            const A = get(p + "A_log").data.map((v) => -Math.exp(v));
            const Dv = get(p + "D").data, dtb = get(p + "dt_bias").data, nw = get(p + "norm.weight").data;
            const S = new Float64Array(H * P * N);
            for (let t = 0; t < tokens.length; t++) {
                const row = xc[t]!;
                const y = new Float64Array(E);
                for (let hd = 0; hd < H; hd++) {
                    const g = Math.floor(hd / (H / G));
                    const dt = softplus(xz[t]![2 * E + 2 * G * N + hd]! + dtb[hd]!);
                    const dA = Math.exp(dt * A[hd]!);
                    for (let q = 0; q < P; q++) {
                        const x = row[hd * P + q]!;
                        let acc = 0;
                        for (let n = 0; n < N; n++) {
                            const i = (hd * P + q) * N + n;
                            S[i] = dA * S[i]! + dt * x * row[E + g * N + n]!;
                            acc += S[i]! * row[E + G * N + g * N + n]!;
                        }
                        y[hd * P + q] = acc + Dv[hd]! * x;
                    }
                }
                // gated RMSNorm per group
                const gs = E / G;
                for (let e = 0; e < E; e++) y[e] = y[e]! * silu(xz[t]![e]!);
                for (let g = 0; g < G; g++) {
                    let ss = 0;
                    for (let i = 0; i < gs; i++) ss += y[g * gs + i]! ** 2;
                    const r = 1 / Math.sqrt(ss / gs + eps);
                    for (let i = 0; i < gs; i++) y[g * gs + i] = y[g * gs + i]! * r * nw[g * gs + i]!;
                }
                ys.push(y);
            }
            ssm.push(...S);
        }
        hs = hs.map((h, t) => {
            const o = linear(get(p + "out_proj.weight"), ys[t]!, outB);
            return h.map((v, i) => v + o[i]!);
        });
    }
    const head = w.tensors.get("lm_head.weight") ?? emb;
    return { logits: hs.map((h) => linear(head, rmsNorm(h, get("backbone.norm_f.weight").data, eps))), conv, ssm };
}
