/**
 * Hybrid configs (mamba_ssm's attn_layer_idx / attn_cfg / d_intermediate): the two released attention checkpoints'
 * config.json parsed with mamba_ssm's defaults (MHA's own: causal false, both biases true), the tensor shapes the
 * weight map then expects (worked out by hand from modules/mha.py and modules/mlp.py), the memory guard's counts,
 * and one clear line naming the field for everything the kernels cannot compute.
 */
import { describe, expect, it } from "vitest";
import { parseMambaConfig } from "../../src/model/config.js";
import { expectedTensorShapes, mapCheckpointTensors } from "../../src/model/weightMap.js";
import { estimateMemory, stateFloats } from "../../src/model/memoryGuard.js";
import { ConfigError, CheckpointFormatError } from "../../src/errors.js";
import type { TensorSource } from "../../src/model/types.js";

/** config.json of state-spaces/transformerpp-2.7b, field for field. */
const TRANSFORMERPP = {
    d_model: 2560, d_intermediate: 6912, n_layer: 32, vocab_size: 50277, ssm_cfg: {},
    attn_layer_idx: Array.from({ length: 32 }, (_, i) => i),
    attn_cfg: { causal: true, head_dim: 80, num_heads: 32, out_proj_bias: false, qkv_proj_bias: false, rotary_emb_dim: 40 },
    rms_norm: true, residual_in_fp32: true, fused_add_norm: true, pad_vocab_size_multiple: 16, tie_embeddings: true,
};
/** config.json of state-spaces/mamba2attn-2.7b, field for field. */
const MAMBA2ATTN = {
    d_model: 2560, d_intermediate: 0, n_layer: 64, vocab_size: 50277, ssm_cfg: { layer: "Mamba2" },
    attn_layer_idx: [9, 18, 27, 36, 45, 56],
    attn_cfg: { causal: true, d_conv: 4, head_dim: 128, num_heads: 30, out_proj_bias: false, qkv_proj_bias: false, rotary_emb_dim: 64 },
    rms_norm: true, residual_in_fp32: true, fused_add_norm: true, pad_vocab_size_multiple: 16, tie_embeddings: true,
};

/** A small hybrid config with a given attn_cfg (and d_intermediate). */
function small(attnCfg: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { d_model: 64, n_layer: 3, vocab_size: 100, ssm_cfg: { layer: "Mamba2", headdim: 16 }, attn_layer_idx: [1], attn_cfg: attnCfg, ...extra };
}

describe("parseMambaConfig, hybrid configs", () => {
    it("transformerpp-2.7b: 32 attention layers of 32 heads of 80, rotary on 40 dims, GatedMLP 6912, no biases", () => {
        const c = parseMambaConfig(TRANSFORMERPP);
        expect(c.attention).toEqual({
            layers: Array.from({ length: 32 }, (_, i) => i), nHeads: 32, nHeadsKv: 32, headDim: 80, dConv: 0, rotaryDim: 40,
            rotaryBase: 10000, qkvBias: false, outBias: false, mlpDim: 0, softmaxScale: 1 / Math.sqrt(80),
        });
        expect(c.dIntermediate).toBe(6912); // 54 × 128: unchanged by GatedMLP's rounding
        expect(c.paddedVocabSize).toBe(50288);
        const shapes = expectedTensorShapes(c);
        // in_proj rows hd·(H + 2·Hkv) = 80·96 = 7680; out_proj over H·hd = 2560; fc1 [2·6912, 2560], fc2 [2560, 6912]
        expect(shapes.get("backbone.layers.0.mixer.in_proj.weight")).toEqual([7680, 2560]);
        expect(shapes.get("backbone.layers.31.mixer.out_proj.weight")).toEqual([2560, 2560]);
        expect(shapes.get("backbone.layers.5.mlp.fc1.weight")).toEqual([13824, 2560]);
        expect(shapes.get("backbone.layers.5.mlp.fc2.weight")).toEqual([2560, 6912]);
        expect(shapes.get("backbone.layers.5.norm2.weight")).toEqual([2560]);
        expect(shapes.has("backbone.layers.0.mixer.conv1d.weight")).toBe(false);
        expect(shapes.has("backbone.layers.0.mixer.in_proj.bias")).toBe(false);
        expect(shapes.has("backbone.layers.0.mixer.A_log")).toBe(false);
        // embedding + norm_f + 32 × (norm + in_proj + out_proj + norm2 + fc1 + fc2)
        expect(shapes.size).toBe(2 + 32 * 6);
    });

    it("mamba2attn-2.7b: attention at 9, 18, 27, 36, 45, 56 (30 heads of 128, conv 4, rotary 64), Mamba-2 elsewhere", () => {
        const c = parseMambaConfig(MAMBA2ATTN);
        expect(c.family).toBe("mamba2");
        expect(c.attention).toMatchObject({ layers: [9, 18, 27, 36, 45, 56], nHeads: 30, nHeadsKv: 30, headDim: 128, dConv: 4, rotaryDim: 64, mlpDim: 0 });
        expect(c.dIntermediate).toBeUndefined();
        const shapes = expectedTensorShapes(c);
        // attention: qkv 128·(30 + 60) = 11520 rows, out_proj over 30·128 = 3840 ≠ d_model; the conv has a bias
        expect(shapes.get("backbone.layers.9.mixer.in_proj.weight")).toEqual([11520, 2560]);
        expect(shapes.get("backbone.layers.9.mixer.conv1d.weight")).toEqual([11520, 1, 4]);
        expect(shapes.get("backbone.layers.9.mixer.conv1d.bias")).toEqual([11520]);
        expect(shapes.get("backbone.layers.56.mixer.out_proj.weight")).toEqual([2560, 3840]);
        // Mamba-2: 2·5120 + 2·128 + 80 = 10576 in_proj rows, conv over 5120 + 256 channels
        expect(shapes.get("backbone.layers.8.mixer.in_proj.weight")).toEqual([10576, 2560]);
        expect(shapes.get("backbone.layers.10.mixer.conv1d.weight")).toEqual([5376, 1, 4]);
        expect(shapes.has("backbone.layers.9.mixer.A_log")).toBe(false);
        expect(shapes.has("backbone.layers.9.norm2.weight")).toBe(false);
    });

    it("fills MHA's own defaults: causal must be given; biases true; num_heads_kv = num_heads; head_dim = d_model / num_heads", () => {
        const c = parseMambaConfig(small({ num_heads: 4, causal: true }));
        expect(c.attention).toEqual({
            layers: [1], nHeads: 4, nHeadsKv: 4, headDim: 16, dConv: 0, rotaryDim: 0, rotaryBase: 10000, qkvBias: true,
            outBias: true, mlpDim: 0, softmaxScale: 0.25,
        });
        const shapes = expectedTensorShapes(c);
        expect(shapes.get("backbone.layers.1.mixer.in_proj.bias")).toEqual([192]);
        expect(shapes.get("backbone.layers.1.mixer.out_proj.bias")).toEqual([64]);
    });

    it("rounds mlp_dim up to 256 and d_intermediate up to 128; the in-attention MLP widens in_proj and out_proj", () => {
        const c = parseMambaConfig(small(
            { num_heads: 4, num_heads_kv: 2, head_dim: 8, mlp_dim: 100, causal: true, softmax_scale: 0.5, rotary_emb_base: 500 },
            { d_intermediate: 72 },
        ));
        expect(c.attention).toMatchObject({ mlpDim: 256, softmaxScale: 0.5, rotaryBase: 500, nHeadsKv: 2 });
        expect(c.dIntermediate).toBe(128);
        const shapes = expectedTensorShapes(c);
        expect(shapes.get("backbone.layers.1.mixer.in_proj.weight")).toEqual([8 * (4 + 4) + 256, 64]); // [q | k | v | up | gate]
        expect(shapes.get("backbone.layers.1.mixer.out_proj.weight")).toEqual([64, 32 + 128]);      // over cat(ctx, mlp out)
        expect(shapes.get("backbone.layers.0.mlp.fc1.weight")).toEqual([256, 64]);                   // every block, Mamba ones too
        expect(shapes.get("backbone.layers.2.mlp.fc2.weight")).toEqual([64, 128]);
    });

    it("a layer index outside [0, n_layer) names no layer (as in create_block); an empty list ignores attn_cfg", () => {
        expect(parseMambaConfig(small({ num_heads: 4, causal: true }, { attn_layer_idx: [1, 7, -1, 1] })).attention?.layers).toEqual([1]);
        const none = parseMambaConfig(small({ anything: 1 }, { attn_layer_idx: [] }));
        expect(none.attention).toBeUndefined();
        expect(none.dIntermediate).toBeUndefined();
    });

    it.each([
        ["causal false", { num_heads: 4, causal: false }, /field attn_cfg\.causal: is false: bidirectional attention is not supported/],
        ["causal unset (MHA's default is false)", { num_heads: 4 }, /field attn_cfg\.causal: is unset \(MHA's default is false\): bidirectional/],
        ["interleaved rotary", { num_heads: 4, causal: true, rotary_emb_dim: 8, rotary_emb_interleaved: true }, /field attn_cfg\.rotary_emb_interleaved: true/],
        ["an unknown key", { num_heads: 4, causal: true, dropout: 0.1 }, /field attn_cfg\.dropout: is not an argument of mamba_ssm's MHA/],
        ["layer_idx (create_block passes it)", { num_heads: 4, causal: true, layer_idx: 1 }, /field attn_cfg\.layer_idx: is not an argument/],
        ["no num_heads", { causal: true }, /field attn_cfg\.num_heads: /],
        ["num_heads not a multiple of num_heads_kv", { num_heads: 4, num_heads_kv: 3, causal: true }, /field attn_cfg\.num_heads_kv: 3 must divide num_heads 4/],
        ["num_heads not dividing d_model without head_dim", { num_heads: 5, causal: true }, /field attn_cfg\.num_heads: 5 must divide d_model 64/],
        ["odd rotary_emb_dim", { num_heads: 4, causal: true, rotary_emb_dim: 5 }, /field attn_cfg\.rotary_emb_dim: 5 must be even and at most head_dim 16/],
        ["rotary_emb_dim > head_dim", { num_heads: 4, causal: true, rotary_emb_dim: 18 }, /field attn_cfg\.rotary_emb_dim: 18 must be even/],
        ["d_conv > 8", { num_heads: 4, causal: true, d_conv: 9 }, /field attn_cfg\.d_conv: 9 is larger than the 8 taps/],
        ["a negative mlp_dim", { num_heads: 4, causal: true, mlp_dim: -1 }, /field attn_cfg\.mlp_dim: /],
        ["a non-numeric softmax_scale", { num_heads: 4, causal: true, softmax_scale: "x" }, /field attn_cfg\.softmax_scale: /],
    ])("refuses %s with one line naming the field", (_what, attnCfg, message) => {
        const run = () => parseMambaConfig(small(attnCfg), "/m/config.json");
        expect(run).toThrow(ConfigError);
        expect(run).toThrow(message);
        expect(run).toThrow(/^\/m\/config\.json: field /);
    });

    it("refuses a negative d_intermediate naming the field", () => {
        expect(() => parseMambaConfig({ ...TRANSFORMERPP, d_intermediate: -1 })).toThrow(/field d_intermediate: /);
    });
});

describe("memory guard, hybrid models", () => {
    it("transformerpp-2.7b: 2666.5 M parameters, 160 Ki floats of K/V per token, no fixed state", () => {
        const c = parseMambaConfig(TRANSFORMERPP);
        // embedding 50288·2560 + norm_f + 32 × (in_proj 7680·2560 + out_proj 2560² + fc1 13824·2560 + fc2 2560·6912 + 2 norms)
        const perLayer = 7680 * 2560 + 2560 * 2560 + 13824 * 2560 + 2560 * 6912 + 2 * 2560;
        const e = estimateMemory({ config: c, weightType: "f32", tokensPerCall: 1, stateSlots: 1 });
        expect(e.parameters).toBe(50288 * 2560 + 2560 + 32 * perLayer);
        expect(stateFloats(c)).toEqual({ conv: 0, ssm: 0, kvPerToken: 32 * 2 * 32 * 80 });
    });

    it("mamba2attn-2.7b: 2697.6 M parameters; attention layers add conv state and K/V rows, no SSM state", () => {
        const c = parseMambaConfig(MAMBA2ATTN);
        const mambaLayer = 10576 * 2560 + 5376 * 5 + 3 * 80 + 5120 + 2560 * 5120 + 2560;
        const attentionLayer = 11520 * 2560 + 11520 * 5 + 2560 * 3840 + 2560;
        const e = estimateMemory({ config: c, weightType: "f32", tokensPerCall: 1, stateSlots: 1 });
        expect(e.parameters).toBe(50288 * 2560 + 2560 + 58 * mambaLayer + 6 * attentionLayer);
        expect(stateFloats(c)).toEqual({ conv: 58 * 3 * 5376 + 6 * 3 * 11520, ssm: 58 * 80 * 64 * 128, kvPerToken: 6 * 2 * 30 * 128 });
    });
});

describe("weight map, hybrid models", () => {
    const config = parseMambaConfig(small(
        { num_heads: 4, num_heads_kv: 2, head_dim: 8, d_conv: 3, mlp_dim: 10, causal: true, rotary_emb_dim: 4 },
        { d_intermediate: 100 },
    ));
    const tensors = (): TensorSource[] => {
        const out: TensorSource[] = [];
        for (const [name, shape] of expectedTensorShapes(config)) {
            out.push({ name, dtype: "F32", shape, file: "/m/model.safetensors", offset: 0, byteLength: 4 * shape.reduce((a, b) => a * b, 1) });
        }
        return out;
    };

    it("maps every attention and MLP tensor, drops a tied lm_head and a rotary inv_freq buffer", () => {
        const raw = [
            ...tensors(),
            { name: "lm_head.weight", dtype: "F32" as const, shape: [104, 64], file: "/m/model.safetensors", offset: 0, byteLength: 4 },
            { name: "backbone.layers.1.mixer.rotary_emb.inv_freq", dtype: "F32" as const, shape: [2], file: "/m/model.safetensors", offset: 0, byteLength: 8 },
        ];
        const { tensors: mapped } = mapCheckpointTensors(raw, config, "/m");
        expect(mapped.map((t) => t.name)).toEqual([...expectedTensorShapes(config).keys()]);
    });

    it("refuses a missing, misshapen or unexpected attention / MLP tensor, naming it", () => {
        const missing = tensors().filter((t) => t.name !== "backbone.layers.1.mixer.conv1d.bias");
        expect(() => mapCheckpointTensors(missing, config, "/m")).toThrow(/^\/m: tensor backbone\.layers\.1\.mixer\.conv1d\.bias is missing$/);
        const bad = tensors().map((t) => (t.name === "backbone.layers.1.mixer.out_proj.weight" ? { ...t, shape: [64, 64] } : t));
        expect(() => mapCheckpointTensors(bad, config, "/m")).toThrow(
            /tensor backbone\.layers\.1\.mixer\.out_proj\.weight has shape \[64, 64\]; the config expects \[64, 160\]/,
        );
        const fc1 = tensors().map((t) => (t.name === "backbone.layers.0.mlp.fc1.weight" ? { ...t, shape: [200, 64] } : t));
        expect(() => mapCheckpointTensors(fc1, config, "/m")).toThrow(/mlp\.fc1\.weight has shape \[200, 64\]; the config expects \[256, 64\]/);
        const extra = [...tensors(), { ...tensors()[0]!, name: "backbone.layers.1.mixer.A_log", shape: [4] }];
        expect(() => mapCheckpointTensors(extra, config, "/m")).toThrow(CheckpointFormatError);
        expect(() => mapCheckpointTensors(extra, config, "/m")).toThrow(/unexpected tensor backbone\.layers\.1\.mixer\.A_log .*attention layers 1, d_intermediate 128/);
        const invFreq = [...tensors(), { ...tensors()[0]!, name: "backbone.layers.1.mixer.rotary_emb.inv_freq", shape: [4] }];
        expect(() => mapCheckpointTensors(invFreq, config, "/m")).toThrow(/rotary_emb\.inv_freq has shape \[4\]; expected \[2\]/);
    });
});
