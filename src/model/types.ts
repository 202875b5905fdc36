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
