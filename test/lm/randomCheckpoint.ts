/**
 * Writes a small random Mamba checkpoint (mamba_ssm layout: config.json + model.safetensors) for tests that
 * need a real model but no particular weights. Values come from a seeded generator, scaled so the logits
 * are far from uniform (distinct argmaxes, non-trivial log-probs).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { writeSafetensorsF32, type F32Tensor } from "../../src/io/safetensorsWriter.js";
import { Mulberry32 } from "../../src/lm/prng.js";

export interface RandomModelShape {
    family: "mamba1" | "mamba2";
    dModel: number;
    nLayer: number;
    vocab: number;
    dState: number;
    headDim?: number;
}

/** Deterministic uniform [-0.5, 0.5) generator (the project's seeded PRNG). */
function rng(seed: number): () => number {
    const prng = new Mulberry32(seed);
    return () => prng.next() - 0.5;
}

/** Writes the checkpoint into `dir` and returns `dir`. */
export function writeRandomCheckpoint(dir: string, shape: RandomModelShape, seed = 1): string {
    mkdirSync(dir, { recursive: true });
    const r = rng(seed);
    const D = shape.dModel;
    const E = 2 * D;
    const N = shape.dState;
    const K = 4;
    const tensors: F32Tensor[] = [];
    const add = (name: string, dims: number[], scale: number, offset = 0) => {
        const n = dims.reduce((a, b) => a * b, 1);
        tensors.push({ name, shape: dims, data: Float32Array.from({ length: n }, () => offset + scale * r()) });
    };
    add("backbone.embedding.weight", [shape.vocab, D], 2);
    add("backbone.norm_f.weight", [D], 0.2, 1);
    for (let i = 0; i < shape.nLayer; i++) {
        const p = `backbone.layers.${i}.`;
        add(p + "norm.weight", [D], 0.2, 1);
        if (shape.family === "mamba1") {
            const R = Math.ceil(D / 16);
            add(p + "mixer.in_proj.weight", [2 * E, D], 1);
            add(p + "mixer.conv1d.weight", [E, 1, K], 1);
            add(p + "mixer.conv1d.bias", [E], 0.2);
            add(p + "mixer.x_proj.weight", [R + 2 * N, E], 1);
            add(p + "mixer.dt_proj.weight", [E, R], 1);
            add(p + "mixer.dt_proj.bias", [E], 1, -2);
            add(p + "mixer.A_log", [E, N], 1, 0.5);
            add(p + "mixer.D", [E], 0.5, 1);
            add(p + "mixer.out_proj.weight", [D, E], 1);
        } else {
            const P = shape.headDim ?? 8;
            const H = E / P;
            const conv = E + 2 * N;
            add(p + "mixer.in_proj.weight", [2 * E + 2 * N + H, D], 1);
            add(p + "mixer.conv1d.weight", [conv, 1, K], 1);
            add(p + "mixer.conv1d.bias", [conv], 0.2);
            add(p + "mixer.dt_bias", [H], 1, -2);
            add(p + "mixer.A_log", [H], 1, 0.5);
            add(p + "mixer.D", [H], 0.5, 1);
            add(p + "mixer.norm.weight", [E], 0.2, 1);
            add(p + "mixer.out_proj.weight", [D, E], 1);
        }
    }
    writeSafetensorsF32(path.join(dir, "model.safetensors"), tensors);
    const ssmCfg = shape.family === "mamba1" ? { d_state: N } : { layer: "Mamba2", d_state: N, headdim: shape.headDim ?? 8, ngroups: 1 };
    writeFileSync(
        path.join(dir, "config.json"),
        JSON.stringify({ d_model: D, n_layer: shape.nLayer, vocab_size: shape.vocab, ssm_cfg: ssmCfg, rms_norm: true, residual_in_fp32: true, fused_add_norm: true, pad_vocab_size_multiple: 8, tie_embeddings: true }),
    );
    return dir;
}
