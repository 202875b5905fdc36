/**
 * The whole surface of the native addon (native/src/addon.cc), typed. Nothing else in TypeScript
 * touches the raw addon; NativeBackend.ts wraps it.
 *
 * The addon is a few coarse calls over typed arrays. It holds no policy: which tokens to run, where
 * sequences are cut, which states are kept and freed, batching and caching are all decided in TS.
 * Every call that can take more than a millisecond runs on a worker thread and returns a Promise.
 */
/** Element types a checkpoint tensor may have on disk. */
export type TensorDType = "F32" | "F16" | "BF16";

/**
 * Where one tensor's bytes are: a contiguous, row-major run of `byteLength` bytes at `offset` in `file`.
 * Both safetensors and PyTorch zip checkpoints (stored, uncompressed entries) reduce to this, so the
 * native side can memory-map the file and make a bounds-checked view without copying in JS.
 */
export interface TensorSource {
    /** Canonical name (mamba_ssm naming, see src/model/weightMap.ts), e.g. "backbone.layers.3.mixer.in_proj.weight". */
    name: string;
    dtype: TensorDType;
    shape: number[];
    file: string;
    offset: number;
    byteLength: number;
}

export interface NativeModelSpec {
    /** "cpu" or "cuda". Asking for cuda in a build without CUDA is an error. */
    device: "cpu" | "cuda";
    /** 1 = Mamba-1 (selective scan), 2 = Mamba-2 (SSD). */
    family: 1 | 2;
    dModel: number;
    nLayer: number;
    /** Padded vocabulary: rows of the embedding and of the LM head; logits have this many columns. */
    vocab: number;
    dState: number;
    dConv: number;
    dInner: number;
    /** Mamba-1 only (0 otherwise). */
    dtRank: number;
    /** Mamba-2 only (0 otherwise). */
    nHeads: number;
    headDim: number;
    nGroups: number;
    normEps: number;
    convBias: boolean;
    projBias: boolean;
    tieEmbeddings: boolean;
    /**
     * Hybrid models (mamba_ssm's attn_layer_idx / attn_cfg / d_intermediate). Absent means a pure Mamba model: every
     * layer a Mamba mixer of `family`, no GatedMLP. Every default is resolved here, in TypeScript; the addon only
     * checks shapes and refuses what it cannot compute.
     *
     * One entry per layer: 0 = the Mamba mixer of `family`, 1 = attention (MHA).
     */
    layerKinds?: number[];
    /** Attention: query heads H, key/value heads Hkv (H a multiple of Hkv), head dimension hd. */
    attnHeads?: number;
    attnHeadsKv?: number;
    attnHeadDim?: number;
    /** Taps of the causal depthwise conv over q, k, v (with bias, no activation); 0 = none. */
    attnConv?: number;
    /** Rotary dimensions at the start of each q and k head (GPT-NeoX halves); 0 = none. */
    attnRotaryDim?: number;
    attnRotaryBase?: number;
    attnQkvBias?: boolean;
    attnOutBias?: boolean;
    /** In-attention MLP rows of in_proj (already rounded up to 256; halves up | gate); 0 = none. */
    attnMlpDim?: number;
    /** Scale of q·k (softmax_scale, or 1/sqrt(head_dim)). */
    attnSoftmaxScale?: number;
    /** GatedMLP hidden size after every mixer (already rounded up to 128); 0 = no MLP and no norm2. */
    dIntermediate?: number;
    /** Worker threads of the CPU backend (ignored by cuda). */
    threads: number;
    /** How weights are held for compute: "f32" (exact) or "bf16" (half the bytes; activations stay f32). */
    weightType: "f32" | "bf16";
    /** Canonical tensors (see src/model/weightMap.ts); the addon memory-maps `file` and bounds-checks every view. */
    tensors: TensorSource[];
}

/**
 * One scoring call over packed token segments. Tokens of all segments are laid end to end; only the
 * causal conv and the scan see segment boundaries, everything else runs on all rows at once.
 *
 * A segment starts from a saved state (or from zeros) and can save its final state ("the state after
 * its last token"). A segment may start from a slot that an earlier segment of the same call saves:
 * segments run in order, so a prefix and its branches can go in one call.
 *
 * With attention layers a state also holds the K and V rows of every token since the zero state (see
 * StateSnapshot.kv), kept as a chain of blocks shared between slots: saving a segment's final state makes a block
 * of that segment's own rows whose parent is the chain it started from (ancestors are never copied). A row's rotary
 * position is the length of the chain its segment started from plus its index in the segment.
 */
export interface ScoreBatch {
    /** Packed token ids, segment after segment. Every id must be in [0, vocab). */
    tokens: Int32Array;
    /** nSeg + 1 offsets into `tokens`; segment s is tokens[segOffsets[s] .. segOffsets[s+1]). Each segment has ≥ 1 token. */
    segOffsets: Int32Array;
    /** Per segment: state slot to start from, or -1 for the zero state. */
    segInit: Int32Array;
    /** Per segment: state slot that receives the state after its last token, or -1. */
    segSave: Int32Array;
    /** Rows (indices into `tokens`) whose next-token distribution is scored. Rows may repeat. */
    scoreRows: Int32Array;
    /** Same length as scoreRows: the token id whose log-probability is returned for that row. */
    scoreTargets: Int32Array;
    /** Optional rows whose full logits (vocab floats each) are returned. */
    logitRows?: Int32Array;
}

export interface ScoreOutput {
    /** Per scoreRows entry: log_softmax(logits[row])[target], the log-sum-exp taken in double precision. */
    logprobs: Float64Array;
    /** Per scoreRows entry: 1 when target is the argmax of logits[row] (first index wins ties), else 0. */
    greedy: Uint8Array;
    /** logitRows.length × vocab floats, row-major (empty when logitRows was not given). */
    logits: Float32Array;
}

/** A sequence's recurrent state: conv state and SSM state of every layer, as flat float32 arrays. */
export interface StateSnapshot {
    conv: Float32Array;
    ssm: Float32Array;
    /**
     * Attention layers' K and V rows of every token of the sequence so far: tokens × kvFloatsPerToken floats,
     * laid out [token][attention layer][K then V][Hkv][hd], K after rotary. Empty for a pure Mamba model (and may
     * be left out when importing one).
     */
    kv?: Float32Array;
}

export interface NativeModelInfo {
    device: "cpu" | "cuda";
    /** Bytes the weights take in compute form. */
    weightBytes: number;
    /** Bytes of memory of the GPU the model runs on (0 on the CPU; absent from builds before it was reported). */
    deviceMemoryBytes?: number;
    /** Floats of one state: conv part and SSM part. */
    convStateFloats: number;
    ssmStateFloats: number;
    /**
     * Floats a state holds per token of its sequence: 2 × Hkv × hd × the number of attention layers (0 for a pure
     * Mamba model). A slot's state takes (convStateFloats + ssmStateFloats + kvFloatsPerToken × tokens) floats at
     * most (chains are shared between slots, so usually less).
     */
    kvFloatsPerToken: number;
    threads: number;
    /** Instruction set the CPU kernels use, e.g. "avx2+fma", or the GPU name. */
    isa: string;
}

export interface NativeModel {
    info(): NativeModelInfo;
    score(batch: ScoreBatch): Promise<ScoreOutput>;
    /**
     * One recurrent step for each of n sequences: token[i] is fed to the sequence in slot[i], whose
     * state is updated in place (a slot never written starts from zeros). Returns n × vocab logits.
     */
    step(slots: Int32Array, tokens: Int32Array): Promise<Float32Array>;
    copyState(src: number, dst: number): Promise<void>;
    freeState(slot: number): void;
    exportState(slot: number): Promise<StateSnapshot>;
    importState(slot: number, state: StateSnapshot): Promise<void>;
    /** Frees weights and states; the object is unusable afterwards. */
    dispose(): void;
}

export interface NativeAddon {
    /** What this build and machine support. */
    capabilities(): { cuda: boolean; avx2: boolean; fma: boolean; hardwareThreads: number };
    createModel(spec: NativeModelSpec): Promise<NativeModel>;
    /**
     * lm-eval's perplexity bootstrap draws (src/harness/nativeResample.ts): chunkCount × chunkSize resample sums,
     * chunk c being `chunkSize` successive `random.Random(c).choices(values, k=values.length)` resamples, each
     * summed left to right; c-major. Bit-identical to bootstrapChunks.ts inThreadResampleSums at any `threads`
     * (integer in [1, 256]). Synchronous (it blocks for tens of milliseconds); bad arguments throw a TypeError.
     */
    bootstrapResampleSums(values: Float64Array, chunkSize: number, chunkCount: number, threads: number): Float64Array;
}
