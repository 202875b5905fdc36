/**
 * config.json of either checkpoint layout → the normalised `MambaConfig`.
 *
 * Two layouts exist:
 *  - mamba_ssm (state-spaces/mamba-130m … mamba-2.8b, mamba2-*): `d_model`, `n_layer`, `vocab_size`, `ssm_cfg`, …
 *    The vocabulary is padded up to `pad_vocab_size_multiple` (MambaLMHeadModel does this), block norms use eps 1e-5.
 *  - transformers (`model_type` "mamba" / "mamba2", e.g. state-spaces/mamba-130m-hf): `hidden_size`,
 *    `num_hidden_layers`, `state_size`, … The embedding has exactly `vocab_size` rows (transformers does not pad).
 *
 * Defaults follow mamba_ssm's MambaConfig / Mamba / Mamba2 constructors and transformers' MambaConfig /
 * Mamba2Config. Every invalid or unsupported field is a one-line ConfigError naming config.json and the field.
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import type { AttentionConfig, MambaConfig, MambaFamily } from "./types.js";

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

/** mamba_ssm's `ssm_cfg` (keyword arguments of Mamba / Mamba2); unknown keys (dt_min, conv_init, …) are ignored. */
const ssmCfgSchema = z.looseObject({
    layer: z.enum(["Mamba1", "Mamba2"]).optional(),
    d_state: positiveInt.optional(),
    d_conv: positiveInt.optional(),
    expand: positiveInt.optional(),
    dt_rank: z.union([z.literal("auto"), positiveInt]).optional(),
    headdim: positiveInt.optional(),
    ngroups: positiveInt.optional(),
    chunk_size: positiveInt.optional(),
    bias: z.boolean().optional(),
    conv_bias: z.boolean().optional(),
    rmsnorm: z.boolean().optional(),
    norm_before_gate: z.boolean().optional(),
    D_has_hdim: z.boolean().optional(),
    d_ssm: positiveInt.nullable().optional(),
    dt_limit: z.unknown().optional(),
});

/**
 * mamba_ssm's `attn_cfg`: the keyword arguments of MHA (modules/mha.py) besides embed_dim and layer_idx. MHA takes
 * no others (Python would raise a TypeError), so an unknown key is refused.
 */
const attnCfgSchema = z.strictObject({
    num_heads: positiveInt,
    num_heads_kv: positiveInt.nullable().optional(),
    head_dim: positiveInt.nullable().optional(),
    mlp_dim: nonNegativeInt.optional(),
    qkv_proj_bias: z.boolean().optional(),
    out_proj_bias: z.boolean().optional(),
    softmax_scale: z.number().positive().nullable().optional(),
    causal: z.boolean().optional(),
    d_conv: nonNegativeInt.optional(),
    rotary_emb_dim: nonNegativeInt.optional(),
    rotary_emb_base: z.number().positive().optional(),
    rotary_emb_interleaved: z.boolean().optional(),
});

/** mamba_ssm's MambaConfig dataclass (config_mamba.py). */
const mambaSsmSchema = z.looseObject({
    d_model: positiveInt,
    n_layer: positiveInt,
    vocab_size: positiveInt,
    d_intermediate: nonNegativeInt.optional(),
    ssm_cfg: ssmCfgSchema.nullable().optional(),
    attn_layer_idx: z.array(z.number().int()).nullable().optional(),
    attn_cfg: z.unknown().optional(),
    rms_norm: z.boolean().optional(),
    residual_in_fp32: z.boolean().optional(),
    fused_add_norm: z.boolean().optional(),
    pad_vocab_size_multiple: positiveInt.optional(),
    tie_embeddings: z.boolean().optional(),
});

/** transformers' MambaConfig / Mamba2Config (configuration_mamba.py, configuration_mamba2.py). */
const transformersSchema = z.looseObject({
    model_type: z.enum(["mamba", "mamba2"]),
    hidden_size: positiveInt.optional(),
    num_hidden_layers: positiveInt.optional(),
    vocab_size: positiveInt.optional(),
    state_size: positiveInt.optional(),
    conv_kernel: positiveInt.optional(),
    expand: positiveInt.optional(),
    time_step_rank: z.union([z.literal("auto"), positiveInt]).optional(),
    use_bias: z.boolean().optional(),
    use_conv_bias: z.boolean().optional(),
    layer_norm_epsilon: z.number().positive().optional(),
    residual_in_fp32: z.boolean().optional(),
    tie_word_embeddings: z.boolean().optional(),
    pad_vocab_size_multiple: positiveInt.optional(),
    num_heads: positiveInt.optional(),
    head_dim: positiveInt.optional(),
    n_groups: positiveInt.optional(),
    chunk_size: positiveInt.optional(),
    norm_before_gate: z.boolean().optional(),
    rmsnorm: z.boolean().optional(),
    rms_norm: z.boolean().optional(),
    time_step_limit: z.unknown().optional(),
    hidden_act: z.unknown().optional(),
});

/** Rounds `vocabSize` up to a multiple of `multiple`, as MambaLMHeadModel does. */
export function padVocabSize(vocabSize: number, multiple: number): number {
    const rest = vocabSize % multiple;
    return rest === 0 ? vocabSize : vocabSize + multiple - rest;
}

/** Turns the first zod issue into "config.json: field a.b: <what was expected>". */
function zodToConfigError(file: string, error: z.ZodError): ConfigError {
    const issue = error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join(".") : "(top level)";
    const what = issue ? issue.message : "invalid value";
    return new ConfigError(`${file}: field ${field}: ${what}`);
}

function parseWith<T extends z.ZodType>(schema: T, json: unknown, file: string): z.infer<T> {
    const result = schema.safeParse(json);
    if (!result.success) throw zodToConfigError(file, result.error);
    return result.data;
}

function refuse(file: string, field: string, why: string): never {
    throw new ConfigError(`${file}: field ${field}: ${why}`);
}

/** Mamba-2 derived sizes: nHeads = dInner / headDim, with the divisibility checks Mamba2's constructor makes. */
function mamba2Heads(file: string, dInner: number, headDim: number, nGroups: number, headField: string): number {
    if (dInner % headDim !== 0) {
        refuse(file, headField, `d_inner ${dInner} (expand × d_model) must be a multiple of the head dimension ${headDim}`);
    }
    const nHeads = dInner / headDim;
    if (nHeads % nGroups !== 0) {
        refuse(file, "ngroups", `the number of heads ${nHeads} must be a multiple of the number of groups ${nGroups}`);
    }
    return nHeads;
}

/** Rounds `n` up to a multiple of `multiple` (GatedMLP's hidden size, MHA's mlp_dim). */
function roundUp(n: number, multiple: number): number {
    return Math.ceil(n / multiple) * multiple;
}

/**
 * The attention layers: layer i is MHA(d_model, **attn_cfg) when i is in attn_layer_idx (create_block; indices
 * outside [0, n_layer) name no layer, as there). Defaults are MHA's own (causal false, both biases true, no conv,
 * no rotary, base 10000); what the kernels cannot compute is refused naming the field.
 */
function attentionConfig(file: string, dModel: number, nLayer: number, layerIdx: readonly number[], cfg: unknown): AttentionConfig | undefined {
    const layers = [...new Set(layerIdx)].filter((i) => i >= 0 && i < nLayer).sort((a, b) => a - b);
    if (layers.length === 0) return undefined;
    const result = attnCfgSchema.safeParse(cfg ?? {});
    if (!result.success) {
        const issue = result.error.issues[0];
        const keys = issue?.code === "unrecognized_keys" ? issue.keys : [];
        if (keys.length > 0) {
            refuse(file, `attn_cfg.${keys[0]}`, "is not an argument of mamba_ssm's MHA (expected num_heads, num_heads_kv, head_dim, " +
                "mlp_dim, qkv_proj_bias, out_proj_bias, softmax_scale, causal, d_conv, rotary_emb_dim, rotary_emb_base, rotary_emb_interleaved)");
        }
        const where = issue && issue.path.length > 0 ? `attn_cfg.${issue.path.join(".")}` : "attn_cfg";
        refuse(file, where, issue?.message ?? "invalid value");
    }
    const a = result.data;
    if (a.causal !== true) {
        refuse(file, "attn_cfg.causal", `is ${a.causal === false ? "false" : "unset (MHA's default is false)"}: bidirectional ` +
            "attention is not supported; a language model's attention layers need causal true");
    }
    if (a.rotary_emb_interleaved === true) {
        refuse(file, "attn_cfg.rotary_emb_interleaved", "true (GPT-J style rotary) is not supported; expected false (GPT-NeoX halves)");
    }
    const nHeads = a.num_heads;
    const nHeadsKv = a.num_heads_kv ?? nHeads;
    if (nHeads % nHeadsKv !== 0) {
        refuse(file, "attn_cfg.num_heads_kv", `${nHeadsKv} must divide num_heads ${nHeads}`);
    }
    if (a.head_dim == null && dModel % nHeads !== 0) {
        refuse(file, "attn_cfg.num_heads", `${nHeads} must divide d_model ${dModel} when head_dim is not given`);
    }
    const headDim = a.head_dim ?? dModel / nHeads;
    const rotaryDim = a.rotary_emb_dim ?? 0;
    if (rotaryDim % 2 !== 0 || rotaryDim > headDim) {
        refuse(file, "attn_cfg.rotary_emb_dim", `${rotaryDim} must be even and at most head_dim ${headDim}`);
    }
    const dConv = a.d_conv ?? 0;
    if (dConv > 8) refuse(file, "attn_cfg.d_conv", `${dConv} is larger than the 8 taps the kernels support`);
    return {
        layers,
        nHeads,
        nHeadsKv,
        headDim,
        dConv,
        rotaryDim,
        rotaryBase: a.rotary_emb_base ?? 10000,
        qkvBias: a.qkv_proj_bias ?? true,
        outBias: a.out_proj_bias ?? true,
        mlpDim: roundUp(a.mlp_dim ?? 0, 256),
        softmaxScale: a.softmax_scale ?? 1 / Math.sqrt(headDim),
    };
}

function fromMambaSsm(json: unknown, file: string): MambaConfig {
    const c = parseWith(mambaSsmSchema, json, file);
    const attention = attentionConfig(file, c.d_model, c.n_layer, c.attn_layer_idx ?? [], c.attn_cfg);
    // GatedMLP(hidden_features=d_intermediate, multiple_of=128) rounds the hidden size up (modules/mlp.py).
    const dIntermediate = roundUp(c.d_intermediate ?? 0, 128);
    const hybrid = { ...(attention ? { attention } : {}), ...(dIntermediate > 0 ? { dIntermediate } : {}) };
    if (c.rms_norm === false) {
        refuse(file, "rms_norm", "false (LayerNorm blocks) is not supported; only RMSNorm Mamba models are");
    }
    const ssm = c.ssm_cfg ?? {};
    checkConvWidth(file, "ssm_cfg.d_conv", ssm.d_conv ?? 4);
    const family: MambaFamily = ssm.layer === "Mamba2" ? "mamba2" : "mamba1";
    const padVocabSizeMultiple = c.pad_vocab_size_multiple ?? 8;
    const common = {
        layout: "mamba_ssm" as const,
        dModel: c.d_model,
        nLayer: c.n_layer,
        vocabSize: c.vocab_size,
        paddedVocabSize: padVocabSize(c.vocab_size, padVocabSizeMultiple),
        padVocabSizeMultiple,
        dConv: ssm.d_conv ?? 4,
        expand: ssm.expand ?? 2,
        dInner: (ssm.expand ?? 2) * c.d_model,
        // MambaLMHeadModel never passes norm_epsilon, so every RMSNorm uses MixerModel's default.
        normEps: 1e-5,
        convBias: ssm.conv_bias ?? true,
        projBias: ssm.bias ?? false,
        tieEmbeddings: c.tie_embeddings ?? true,
        residualInFp32: c.residual_in_fp32 ?? true,
    };
    if (family === "mamba1") {
        const dtRank = ssm.dt_rank === undefined || ssm.dt_rank === "auto" ? Math.ceil(c.d_model / 16) : ssm.dt_rank;
        return { ...common, family, dState: ssm.d_state ?? 16, dtRank, headDim: 0, nHeads: 0, nGroups: 0, chunkSize: 0, ...hybrid };
    }
    if (ssm.rmsnorm === false) refuse(file, "ssm_cfg.rmsnorm", "false (Mamba-2 without the gated RMSNorm) is not supported");
    if (ssm.norm_before_gate === true) {
        refuse(file, "ssm_cfg.norm_before_gate", "true is not supported; the Mamba-2 kernels gate before the norm (false)");
    }
    if (ssm.D_has_hdim === true) refuse(file, "ssm_cfg.D_has_hdim", "true (a D per channel) is not supported; expected false");
    checkNoDtClamp(file, "ssm_cfg.dt_limit", ssm.dt_limit);
    if (ssm.d_ssm != null && ssm.d_ssm !== common.dInner) {
        refuse(file, "ssm_cfg.d_ssm", `${ssm.d_ssm} differs from d_inner ${common.dInner}; partial SSM width is not supported`);
    }
    const headDim = ssm.headdim ?? 64;
    const nGroups = ssm.ngroups ?? 1;
    const nHeads = mamba2Heads(file, common.dInner, headDim, nGroups, "ssm_cfg.headdim");
    return { ...common, family, dState: ssm.d_state ?? 128, dtRank: 0, headDim, nHeads, nGroups, chunkSize: ssm.chunk_size ?? 256, ...hybrid };
}

/** ∞ as JSON writers spell it: transformers {"__float__": "Infinity"}, others null or the string "Infinity". */
function isInfinity(value: unknown): boolean {
    const text = typeof value === "object" && value !== null ? (value as Record<string, unknown>).__float__ : value;
    return value === null || text === "Infinity" || text === "inf";
}

/**
 * Mamba2's dt_limit (mamba_ssm) / time_step_limit (transformers): Δ is clamped to [lo, hi] when it is not the default
 * (0, ∞). Δ = softplus(…) is never negative, so a bound lo ≤ 0 clamps nothing; hi must be ∞. Anything that would
 * clamp is refused: the kernels do not clamp.
 */
function checkNoDtClamp(file: string, field: string, value: unknown): void {
    if (value === undefined || value === null) return;
    const pair = Array.isArray(value) && value.length === 2 ? value : undefined;
    const lo: unknown = pair?.[0];
    if (pair && typeof lo === "number" && lo <= 0 && isInfinity(pair[1])) return;
    refuse(file, field, `${JSON.stringify(value)} would clamp Δ, which is not supported; expected the default (0, ∞): leave the field out`);
}

/** The native kernels' largest conv width (native/src/weights.cc) and the range of an fp32 epsilon. */
const MAX_D_CONV = 8;
const FP32_MIN_NORMAL = 2 ** -126;

function checkConvWidth(file: string, field: string, dConv: number): void {
    if (dConv > MAX_D_CONV) refuse(file, field, `${dConv} is wider than the kernels' largest causal conv (${MAX_D_CONV})`);
}

function checkNormEps(file: string, field: string, normEps: number): void {
    if (!(normEps >= FP32_MIN_NORMAL && normEps <= 1)) {
        refuse(file, field, `${normEps} is outside what an fp32 RMSNorm epsilon can be here; expected a number in [1.2e-38, 1]`);
    }
}

function required<T>(value: T | undefined, file: string, field: string, expected: string): T {
    if (value === undefined) refuse(file, field, `missing; expected ${expected}`);
    return value;
}

function fromTransformers(json: unknown, file: string): MambaConfig {
    const c = parseWith(transformersSchema, json, file);
    const family: MambaFamily = c.model_type === "mamba2" ? "mamba2" : "mamba1";
    const dModel = required(c.hidden_size, file, "hidden_size", "a positive integer");
    const nLayer = required(c.num_hidden_layers, file, "num_hidden_layers", "a positive integer");
    const vocabSize = required(c.vocab_size, file, "vocab_size", "a positive integer");
    if (c.rms_norm === false || c.rmsnorm === false) {
        refuse(file, c.rms_norm === false ? "rms_norm" : "rmsnorm", "false is not supported; only RMSNorm Mamba models are");
    }
    if (c.hidden_act !== undefined && c.hidden_act !== "silu") {
        refuse(file, "hidden_act", `${JSON.stringify(c.hidden_act)} is not supported; the Mamba blocks use "silu"`);
    }
    checkNoDtClamp(file, "time_step_limit", c.time_step_limit);
    checkConvWidth(file, "conv_kernel", c.conv_kernel ?? 4);
    checkNormEps(file, "layer_norm_epsilon", c.layer_norm_epsilon ?? 1e-5);
    const expand = c.expand ?? 2;
    // transformers builds the embedding with exactly vocab_size rows; the multiple is kept only for the record.
    const common = {
        layout: "transformers" as const,
        dModel,
        nLayer,
        vocabSize,
        paddedVocabSize: vocabSize,
        padVocabSizeMultiple: 1,
        dConv: c.conv_kernel ?? 4,
        expand,
        dInner: expand * dModel,
        normEps: c.layer_norm_epsilon ?? 1e-5,
        convBias: c.use_conv_bias ?? true,
        projBias: c.use_bias ?? false,
        residualInFp32: c.residual_in_fp32 ?? true,
    };
    if (family === "mamba1") {
        const dtRank = c.time_step_rank === undefined || c.time_step_rank === "auto" ? Math.ceil(dModel / 16) : c.time_step_rank;
        return {
            ...common, family, dState: c.state_size ?? 16, dtRank, headDim: 0, nHeads: 0, nGroups: 0, chunkSize: 0,
            tieEmbeddings: c.tie_word_embeddings ?? true,
        };
    }
    if (c.norm_before_gate === true) {
        refuse(file, "norm_before_gate", "true is not supported; the Mamba-2 kernels gate before the norm (false)");
    }
    const headDim = c.head_dim ?? 64;
    const nGroups = c.n_groups ?? 8;
    const nHeads = mamba2Heads(file, common.dInner, headDim, nGroups, "head_dim");
    if (c.num_heads !== undefined && c.num_heads !== nHeads) {
        refuse(file, "num_heads", `${c.num_heads} does not match expand × hidden_size / head_dim = ${nHeads}`);
    }
    return {
        ...common, family, dState: c.state_size ?? 128, dtRank: 0, headDim, nHeads, nGroups, chunkSize: c.chunk_size ?? 256,
        tieEmbeddings: c.tie_word_embeddings ?? false,
    };
}

/**
 * Normalises a parsed config.json of either layout. `file` is used in error messages only.
 * A config with `model_type` "mamba"/"mamba2" is read as the transformers layout; one with `d_model` as mamba_ssm's.
 */
export function parseMambaConfig(json: unknown, file = "config.json"): MambaConfig {
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
        throw new ConfigError(`${file}: expected a JSON object`);
    }
    const record = json as Record<string, unknown>;
    if ("model_type" in record) {
        if (record.model_type === "mamba" || record.model_type === "mamba2") return fromTransformers(json, file);
        refuse(file, "model_type", `${JSON.stringify(record.model_type)} is not a Mamba model; expected "mamba" or "mamba2"`);
    }
    if ("d_model" in record) return fromMambaSsm(json, file);
    throw new ConfigError(`${file}: neither a mamba_ssm config (field d_model) nor a transformers one (field model_type)`);
}
