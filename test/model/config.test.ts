import { describe, expect, it } from "vitest";
import { parseMambaConfig, padVocabSize } from "../../src/model/config.js";
import { ConfigError } from "../../src/errors.js";

// The config.json files published with the checkpoints (state-spaces/* on the hub), field for field.
const MAMBA_130M = {
    d_model: 768, n_layer: 24, vocab_size: 50277, ssm_cfg: {}, rms_norm: true, residual_in_fp32: true,
    fused_add_norm: true, pad_vocab_size_multiple: 8,
};
const MAMBA2_130M = {
    d_model: 768, d_intermediate: 0, n_layer: 24, vocab_size: 50277, ssm_cfg: { layer: "Mamba2" }, attn_layer_idx: [],
    attn_cfg: {}, rms_norm: true, residual_in_fp32: true, fused_add_norm: true, pad_vocab_size_multiple: 16,
    tie_embeddings: true,
};
const MAMBA_130M_HF = {
    architectures: ["MambaForCausalLM"], bos_token_id: 0, conv_kernel: 4, eos_token_id: 0, expand: 2, fused_add_norm: true,
    hidden_act: "silu", hidden_size: 768, initializer_range: 0.1, intermediate_size: 1536, layer_norm_epsilon: 1e-5,
    model_type: "mamba", n_layer: 24, num_hidden_layers: 24, pad_token_id: 0, pad_vocab_size_multiple: 8,
    rescale_prenorm_residual: false, residual_in_fp32: true, rms_norm: true, ssm_cfg: {}, state_size: 16,
    time_step_floor: 1e-4, time_step_init_scheme: "random", time_step_max: 0.1, time_step_min: 0.001, time_step_rank: 48,
    time_step_scale: 1.0, torch_dtype: "float32", use_bias: false, use_cache: true, use_conv_bias: true, vocab_size: 50280,
};
const CODESTRAL_HF = {
    model_type: "mamba2", hidden_size: 4096, num_hidden_layers: 64, vocab_size: 32768, state_size: 128, num_heads: 128,
    head_dim: 64, n_groups: 8, expand: 2, conv_kernel: 4, chunk_size: 256, norm_before_gate: false, rms_norm: true,
    use_bias: false, use_conv_bias: true, layer_norm_epsilon: 1e-5, residual_in_fp32: true, tie_word_embeddings: false,
};

describe("parseMambaConfig, mamba_ssm layout", () => {
    it("mamba-130m: Mamba-1 defaults, dt_rank auto = ceil(768/16) = 48, vocab 50277 padded to 50280", () => {
        expect(parseMambaConfig(MAMBA_130M)).toEqual({
            family: "mamba1", layout: "mamba_ssm", dModel: 768, nLayer: 24, vocabSize: 50277, paddedVocabSize: 50280,
            padVocabSizeMultiple: 8, dState: 16, dConv: 4, expand: 2, dInner: 1536, dtRank: 48, headDim: 0, nHeads: 0,
            nGroups: 0, chunkSize: 0, normEps: 1e-5, convBias: true, projBias: false, tieEmbeddings: true, residualInFp32: true,
        });
    });

    it("mamba-2.8b: dt_rank ceil(2560/16) = 160, d_inner 5120", () => {
        const c = parseMambaConfig({ ...MAMBA_130M, d_model: 2560, n_layer: 64 });
        expect([c.dtRank, c.dInner, c.nLayer]).toEqual([160, 5120, 64]);
    });

    it("mamba-790m: dt_rank rounds up, ceil(1536/16) = 96; ceil(1000/16) = 63", () => {
        expect(parseMambaConfig({ ...MAMBA_130M, d_model: 1536 }).dtRank).toBe(96);
        expect(parseMambaConfig({ ...MAMBA_130M, d_model: 1000 }).dtRank).toBe(63);
        expect(parseMambaConfig({ ...MAMBA_130M, ssm_cfg: { dt_rank: 7 } }).dtRank).toBe(7);
    });

    it("mamba2-130m: Mamba-2 defaults, 24 heads of 64, d_state 128, vocab padded to 50288", () => {
        const c = parseMambaConfig(MAMBA2_130M);
        expect(c).toMatchObject({
            family: "mamba2", dState: 128, dConv: 4, expand: 2, dInner: 1536, headDim: 64, nHeads: 24, nGroups: 1,
            chunkSize: 256, dtRank: 0, paddedVocabSize: 50288, padVocabSizeMultiple: 16, tieEmbeddings: true,
        });
        // in_proj rows 2E + 2GN + H = 3072 + 256 + 24 = 3352, the published mamba2-130m in_proj shape.
        expect(2 * c.dInner + 2 * c.nGroups * c.dState + c.nHeads).toBe(3352);
    });

    it("missing pad_vocab_size_multiple defaults to 8, tie_embeddings to true", () => {
        const { pad_vocab_size_multiple: _, ...rest } = MAMBA_130M;
        expect(parseMambaConfig(rest)).toMatchObject({ padVocabSizeMultiple: 8, paddedVocabSize: 50280, tieEmbeddings: true });
    });

    it("refuses unsupported architectures with the field named", () => {
        // Attention layers need MHA's num_heads (hybrid configs: test/model/hybridConfig.test.ts).
        expect(() => parseMambaConfig({ ...MAMBA_130M, attn_layer_idx: [3] })).toThrow(/config\.json: field attn_cfg\.num_heads: /);
        expect(() => parseMambaConfig({ ...MAMBA_130M, rms_norm: false })).toThrow(/field rms_norm: .*not supported/);
        expect(() => parseMambaConfig({ ...MAMBA2_130M, ssm_cfg: { layer: "Mamba2", norm_before_gate: true } })).toThrow(/ssm_cfg\.norm_before_gate/);
        expect(() => parseMambaConfig({ ...MAMBA2_130M, ssm_cfg: { layer: "Mamba2", headdim: 100 } })).toThrow(/ssm_cfg\.headdim: d_inner 1536/);
        expect(() => parseMambaConfig({ ...MAMBA_130M, ssm_cfg: { layer: "Mamba3" } })).toThrow(ConfigError);
    });

    it("names the bad or missing field", () => {
        expect(() => parseMambaConfig({ ...MAMBA_130M, n_layer: "24" }, "/m/config.json")).toThrow(/^\/m\/config\.json: field n_layer: /);
        expect(() => parseMambaConfig({ ...MAMBA_130M, d_model: -4 })).toThrow(/field d_model/);
        expect(() => parseMambaConfig({ ...MAMBA_130M, ssm_cfg: { d_state: 1.5 } })).toThrow(/field ssm_cfg\.d_state/);
        const { vocab_size: _, ...noVocab } = MAMBA_130M;
        expect(() => parseMambaConfig(noVocab)).toThrow(/field vocab_size/);
        expect(() => parseMambaConfig([1, 2])).toThrow(/expected a JSON object/);
        expect(() => parseMambaConfig({ hidden: 3 })).toThrow(/neither a mamba_ssm config/);
    });
});

describe("parseMambaConfig, transformers layout", () => {
    it("mamba-130m-hf: same model as mamba-130m, vocab already 50280 and not padded again", () => {
        const c = parseMambaConfig(MAMBA_130M_HF);
        expect(c).toEqual({ ...parseMambaConfig(MAMBA_130M), layout: "transformers", vocabSize: 50280, padVocabSizeMultiple: 1 });
    });

    it("time_step_rank 'auto' and defaults", () => {
        const c = parseMambaConfig({ model_type: "mamba", hidden_size: 64, num_hidden_layers: 2, vocab_size: 100, time_step_rank: "auto" });
        expect(c).toMatchObject({ dtRank: 4, dState: 16, dConv: 4, expand: 2, dInner: 128, tieEmbeddings: true, convBias: true, projBias: false });
    });

    it("mamba2 (Codestral-style): 128 heads of 64, 8 groups, untied", () => {
        expect(parseMambaConfig(CODESTRAL_HF)).toMatchObject({
            family: "mamba2", layout: "transformers", dModel: 4096, dInner: 8192, nHeads: 128, headDim: 64, nGroups: 8,
            dState: 128, chunkSize: 256, tieEmbeddings: false, paddedVocabSize: 32768,
        });
    });

    it("refuses what the kernels do not compute, naming the field", () => {
        expect(() => parseMambaConfig({ ...CODESTRAL_HF, norm_before_gate: true })).toThrow(/field norm_before_gate: true is not supported/);
        expect(() => parseMambaConfig({ ...CODESTRAL_HF, num_heads: 100 })).toThrow(/field num_heads: 100 does not match/);
        expect(() => parseMambaConfig({ ...CODESTRAL_HF, rms_norm: false })).toThrow(/field rms_norm/);
        expect(() => parseMambaConfig({ ...MAMBA_130M_HF, hidden_size: undefined })).toThrow(/field hidden_size: missing/);
        expect(() => parseMambaConfig({ model_type: "llama" })).toThrow(/field model_type: "llama" is not a Mamba model/);
    });
});

describe("padVocabSize", () => {
    it("rounds up as MambaLMHeadModel does", () => {
        expect([padVocabSize(50277, 8), padVocabSize(50277, 16), padVocabSize(50280, 8), padVocabSize(10, 1)]).toEqual([50280, 50288, 50280, 10]);
    });
});

describe("fields that would change the computation the kernels do not do", () => {
    it("refuses a Δ clamp (dt_limit, time_step_limit) and accepts the default (0, ∞) in its JSON spellings", () => {
        const m2 = (dt_limit: unknown) => ({ ...MAMBA2_130M, ssm_cfg: { layer: "Mamba2", dt_limit } });
        expect(() => parseMambaConfig(m2([0, 0.001]))).toThrow(/^config\.json: field ssm_cfg\.dt_limit: \[0,0\.001\] would clamp Δ/);
        expect(() => parseMambaConfig(m2([0.01, null]))).toThrow(/field ssm_cfg\.dt_limit: /);
        expect(() => parseMambaConfig(m2("garbage"))).toThrow(/field ssm_cfg\.dt_limit: "garbage" would clamp/);
        expect(parseMambaConfig(m2([0, null])).family).toBe("mamba2");
        const hf = (time_step_limit: unknown) => ({ ...CODESTRAL_HF, time_step_limit });
        expect(() => parseMambaConfig(hf([0, 0.001]))).toThrow(/^config\.json: field time_step_limit: /);
        expect(parseMambaConfig(hf([0, { __float__: "Infinity" }])).family).toBe("mamba2");  // transformers' own writing
        expect(parseMambaConfig(hf([0.0, "Infinity"])).family).toBe("mamba2");
    });

    it("refuses an activation other than SiLU (hidden_act)", () => {
        expect(() => parseMambaConfig({ ...MAMBA_130M_HF, hidden_act: "gelu" })).toThrow(
            /^config\.json: field hidden_act: "gelu" is not supported; the Mamba blocks use "silu"$/,
        );
        expect(parseMambaConfig(MAMBA_130M_HF).family).toBe("mamba1");
    });
});

describe("limits of the kernels, refused naming the config field", () => {
    it("a conv wider than 8 and an epsilon fp32 cannot hold", () => {
        expect(() => parseMambaConfig({ ...MAMBA_130M, ssm_cfg: { d_conv: 9 } })).toThrow(
            /^config\.json: field ssm_cfg\.d_conv: 9 is wider than the kernels' largest causal conv \(8\)$/,
        );
        expect(() => parseMambaConfig({ ...MAMBA_130M_HF, conv_kernel: 9 })).toThrow(/^config\.json: field conv_kernel: 9 is wider/);
        expect(() => parseMambaConfig({ ...MAMBA_130M_HF, layer_norm_epsilon: 1e-50 })).toThrow(/^config\.json: field layer_norm_epsilon: 1e-50 is outside/);
        expect(() => parseMambaConfig({ ...MAMBA_130M_HF, layer_norm_epsilon: 1e300 })).toThrow(/field layer_norm_epsilon: 1e\+300 is outside/);
        expect(parseMambaConfig({ ...MAMBA_130M_HF, conv_kernel: 8, layer_norm_epsilon: 1e-6 }).dConv).toBe(8);
    });
});
