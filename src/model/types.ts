/**
 * The model-side data types shared by the loaders, the backends and the harness.
 * Plain data only: no behaviour lives here.
 */

/** Which Mamba mixer the layers use. */
export type MambaFamily = "mamba1" | "mamba2";

/** Which on-disk layout a checkpoint folder has. */
export type CheckpointLayout = "mamba_ssm" | "transformers";

/**
 * A normalised Mamba configuration, the same for both checkpoint layouts.
 * Derived fields (dInner, dtRank when "auto", nHeads, paddedVocabSize) are resolved by the loader.
 */
export interface MambaConfig {
    family: MambaFamily;
    layout: CheckpointLayout;
    dModel: number;
    nLayer: number;
    /** vocab_size as written in config.json. */
    vocabSize: number;
    /** vocabSize rounded up to padVocabSizeMultiple (mamba_ssm); the embedding/lm_head row count. */
    paddedVocabSize: number;
    padVocabSizeMultiple: number;
    dState: number;
    dConv: number;
    expand: number;
    /** expand * dModel */
    dInner: number;
    /** Mamba-1 only: rank of the dt projection (ceil(dModel/16) for "auto"). 0 for Mamba-2. */
    dtRank: number;
    /** Mamba-2 only (0 for Mamba-1): head dimension P, number of heads dInner/P, groups G, chunk size. */
    headDim: number;
    nHeads: number;
    nGroups: number;
    chunkSize: number;
    /** RMSNorm epsilon of the block norms and norm_f (1e-5 in mamba_ssm). */
    normEps: number;
    /** Whether conv1d has a bias (mamba_ssm default true) and in_proj/out_proj have biases (default false). */
    convBias: boolean;
    projBias: boolean;
    tieEmbeddings: boolean;
    residualInFp32: boolean;
    /**
     * Attention layers (mamba_ssm's attn_layer_idx with MHA(**attn_cfg)), every default resolved; absent when the
     * model has none. The Mamba fields above then describe the other layers (unused when every layer is attention).
     */
    attention?: AttentionConfig;
    /**
     * Hidden size of the GatedMLP after the mixer of every block (d_intermediate rounded up to a multiple of 128, as
     * GatedMLP does); absent when d_intermediate is 0 (no MLP, no norm2).
     */
    dIntermediate?: number;
}

/** mamba_ssm's MHA as the attention layers of a hybrid model build it (modules/mha.py), defaults resolved. */
export interface AttentionConfig {
    /** Indices of the attention layers, ascending, each in [0, nLayer). */
    layers: number[];
    /** Query heads H, key/value heads Hkv (H a multiple of Hkv), head dimension hd. */
    nHeads: number;
    nHeadsKv: number;
    headDim: number;
    /** Taps of the causal depthwise conv over q, k, v (with bias, no activation); 0 = no conv. */
    dConv: number;
    /** Rotary dimensions at the start of each q and k head (GPT-NeoX halves, not interleaved); 0 = none. */
    rotaryDim: number;
    rotaryBase: number;
    /** Biases of in_proj and out_proj (MHA's defaults: both true). */
    qkvBias: boolean;
    outBias: boolean;
    /** Width of the in-attention MLP's in_proj rows (mlp_dim rounded up to 256: up | gate halves); 0 = none. */
    mlpDim: number;
    /** Scale of q·k: softmax_scale, or 1/sqrt(headDim) when unset. */
    softmaxScale: number;
}

export type { TensorDType, TensorSource } from "../addon/addonTypes.js";
import type { TensorSource } from "../addon/addonTypes.js";

/** A loaded checkpoint: config plus one TensorSource per canonical weight name. */
export interface Checkpoint {
    /** The folder it came from. */
    dir: string;
    config: MambaConfig;
    tensors: TensorSource[];
    /** sha256 of config.json + tensor index, for provenance (cheap; not a hash of all weight bytes). */
    fingerprint: string;
}
