// kernels.cuh — launch wrappers of the CUDA kernels the backend chains per layer.
//
// Row-major everywhere; "T" is the number of packed token rows of one call. Every kernel computes
// each output element with a fixed reduction order that does not depend on T, on where a row sits in
// the batch, or on how the grid is split, so results are bit-identical under any packing.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace mamba::cuda {

/** Output of a kernel that feeds a GEMM: fp32, or bf16 when weights are bf16. */
struct ActOut {
    void* ptr;
    bool bf16;
};

/**
 * Per-segment view of one scoring call, in device memory. State pointers point at layer 0 of a
 * whole-model state (conv: [layer][channel][K-1], oldest first; ssm: [layer][...]) or are null
 * (init: start from zeros; save: do not save).
 */
struct SegTable {
    const int32_t* start;     // [n_seg] first row
    const int32_t* length;    // [n_seg] rows (≥ 1)
    float* const* init_conv;  // [n_seg]
    float* const* init_ssm;   // [n_seg]
    float* const* save_conv;  // [n_seg]
    float* const* save_ssm;   // [n_seg]
};

/** A run of at most kConvChunkRows rows of one segment that one conv thread computes. */
struct ConvChunk {
    int32_t seg;
    int32_t row_begin;  // absolute row
    int32_t row_end;    // absolute row, exclusive
};
constexpr int kConvChunkRows = 16;
constexpr int kMaxConvHistory = 3;  // d_conv − 1 for d_conv ≤ 4

/**
 * Where a segment's conv reads the K−1 inputs before its first row, so one launch serves every level of a call:
 * history[seg × kMaxConvHistory + j] (j = 0 … K−2, oldest first) is a row of this call (≥ 0: the input of an
 * ancestor segment of this call), kHistoryZero (no state: zeros) or kHistoryState − i: element i of the conv state
 * `state[seg]` points at (the saved state its chain of in-call ancestors started from, layer 0).
 */
struct ConvHistory {
    const int32_t* history;     // [n_seg × kMaxConvHistory]
    float* const* state;        // [n_seg]
};
constexpr int32_t kHistoryZero = -1;
constexpr int32_t kHistoryState = -2;

/**
 * The order of a scan launch that covers every level of a call at once. Block b takes ticket t from `counter`
 * (blocks run in any order; tickets are handed out in the order blocks start), item t = (position p = t / blocks,
 * block of channels or head c = t % blocks), segment order[p]. A segment whose state comes from another segment of
 * the call (parent[p] ≥ 0, an earlier position) waits until that item's flag reads `epoch`; every item sets its
 * flag once its state is saved. Deadlock-free: a block waits only on items with smaller tickets, which were taken
 * by blocks already running. With counter == nullptr the launch is one level: p = blockIdx.x, c = blockIdx.y
 * (the Mamba-2 chunked scan swaps them: heads on x, positions on y, so a segment's blocks run together).
 */
struct ScanQueue {
    const int32_t* order;   // [n] segments
    const int32_t* parent;  // [n] position of the in-call parent, or −1 (null: none anywhere)
    unsigned* counter;      // ticket counter of this launch, zero before it
    unsigned* flags;        // [n × blocks]
    unsigned epoch;
    int blocks;             // channel blocks (Mamba-1) or heads (Mamba-2) per segment
};

/** out[t, :] = embedding[tokens[t], :] as fp32. */
void launch_embed(const int32_t* tokens, int T, const void* emb /* [V×D] */, bool emb_bf16, int D, float* out /* [T×D] */,
                  cudaStream_t stream);

/**
 * With rows == nullptr: for t < n, resid[t] += mix[t] (when mix != nullptr), out[t] = RMSNorm(resid[t]) · w.
 * With rows: out[i] = RMSNorm(resid[rows[i]] + mix[rows[i]]) · w, resid untouched (the final norm of scored rows).
 */
void launch_add_rmsnorm(const int32_t* rows, int n, float* resid /* [T×D] */, const float* mix /* [T×D] or null */,
                        const float* w /* [D] */, int D, float eps, ActOut out /* [n×D] */, cudaStream_t stream);

/**
 * Causal depthwise conv + bias + SiLU over the rows of `chunks` (every segment of a call, any level; see
 * ConvHistory), and the conv state after each segment's last row into save_conv (the chunk that ends the segment
 * writes it). This layer's conv state starts `state_off` floats into a whole-model conv state ([C][K−1]). A buffer
 * some segment reads must not be saved into by another segment of the same launch.
 */
void launch_conv_silu(const ConvChunk* chunks, int n_chunks, SegTable segs, ConvHistory hist, size_t state_off,
                      const float* in, int in_stride, int C, int K, const float* w /* [C×K] */,
                      const float* bias /* [C] or null */, float* out /* [T×C] */,
                      ActOut out_copy /* [T×C] or ptr null */, cudaStream_t stream);
/** The same conv without the SiLU (the attention layers' conv over q, k, v). */
void launch_conv(const ConvChunk* chunks, int n_chunks, SegTable segs, ConvHistory hist, size_t state_off,
                 const float* in, int in_stride, int C, int K, const float* w /* [C×K] */, const float* bias /* [C] */,
                 float* out /* [T×C] */, cudaStream_t stream);

/** Mamba-1 selective scan (dt softplus, D skip and SiLU(z) gate fused) for the listed segments. */
struct Mamba1ScanArgs {
    int E, N, R;
    const float* dt;       // [T×E] dt_proj output (before bias)
    const float* dt_bias;  // [E]
    const float* x;        // [T×E] conv output
    const float* z;        // [T×z_stride]
    int z_stride;
    const float* dbc;      // [T×(R+2N)]: dt_low | B | C
    const float* A;        // [E×N] = -exp(A_log)
    const float* Dskip;    // [E]
    ActOut y;              // [T×E]
};
/** one_token_segments: step() (for the chunked kernel's sizes, N lanes per channel with the same arithmetic). */
void launch_mamba1_scan(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba1ScanArgs& a,
                        bool one_token_segments, cudaStream_t stream);
/** Blocks per segment of the Mamba-1 scan, or 0 when the kernel for d_state N cannot take a ScanQueue. */
int mamba1_scan_queue_blocks(int E, int N);
/** Every level at once (see ScanQueue): n positions × q.blocks items. */
void launch_mamba1_scan_queued(ScanQueue q, int n, SegTable segs, int layer, const Mamba1ScanArgs& a, cudaStream_t stream);

/** Mamba-2 recurrent SSD scan (per head scalar A, dt softplus, D skip) for the listed segments. */
struct Mamba2ScanArgs {
    int H, P, N, G;
    const float* xbc;      // [T×(E+2GN)] conv output: x | B | C
    const float* dt;       // [T×dt_stride] raw dt (before bias)
    int dt_stride;
    const float* dt_bias;  // [H]
    const float* A;        // [H] = -exp(A_log)
    const float* Dskip;    // [H]
    float* y;              // [T×E]
};
/** one_token_segments: step() (a warp per channel, the same arithmetic as the prefill kernel of these sizes). */
void launch_mamba2_scan(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba2ScanArgs& a,
                        bool one_token_segments, cudaStream_t stream);

/**
 * Mamba-2 chunked SSD scan on tensor cores (ssd_kernels.cu): the same result as launch_mamba2_scan up to fp16/bf16
 * operand rounding, for bf16 weights. Chunk grid anchored at each segment's first row; see SEGMENT_CUT_ALIGNMENT
 * (src/lm/scheduler.ts).
 */
void launch_mamba2_ssd(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba2ScanArgs& a,
                       cudaStream_t stream);
/** Every level at once (see ScanQueue; q.blocks = H). */
void launch_mamba2_ssd_queued(ScanQueue q, int n, SegTable segs, int layer, const Mamba2ScanArgs& a, cudaStream_t stream);
/** The chunk length the SSD kernel uses for head dim P and d_state N, or 0 when it does not support them. */
int mamba2_ssd_chunk_length(int P, int N);

/**
 * An attention call's tables (attention_kernels.cu), in device memory. A row's K|V in a state's block is
 * [attention layer][K heads | V heads] of one position; pointers point at layer 0 of such a row.
 */
struct AttnCall {
    const int32_t* pos;          // [T] each row's position in its sequence
    const int32_t* seg_start;    // [n_seg] first row
    const int32_t* seg_len;      // [n_seg] rows
    const int32_t* seg_pos0;     // [n_seg] position of the first row = length of the chain it starts from
    const int64_t* past_off;     // [n_seg] where the segment's positions 0 … pos0−1 start in `past`
    const float* const* past;    // the K|V row (layer 0) of every earlier position of every segment, in its block
    float* const* save;          // [T] where the row's K|V goes (layer 0 of a block row), or null
    const int32_t* items;        // [n_items × 2]: segment, first row of a tile of attention_query_rows() query rows
};
constexpr int kAttnRows = 16;         // query rows per block of the fp32 kernel (tiles start at a segment's first row)
constexpr int kAttnKeys = 64;         // key positions per tile (tiles start at multiples of kAttnKeys)
constexpr int kMaxAttnHeadDim = 256;

/** Refuses head dimensions the attention kernels cannot hold (one line naming attnHeadDim). */
void check_attention_shape(int hd);
/** Whether attention runs on tensor cores: bf16 weights and hd a multiple of 16. */
bool attention_uses_tensor_cores(bool bf16, int hd);
/** Query rows per tile (one block) of the kernel that runs this attention: the host cuts segments into such tiles. */
int attention_query_rows(bool bf16, int hd);

/** Rotary embedding in place on the first rd dims of the first `heads` heads (q then k) of every row. */
void launch_rotary(int T, float* qkv, int ld, const int32_t* pos, int heads, int hd, int rd, double base,
                   cudaStream_t stream);
/** save[t] + layer_off ← qkv[t][col … col + kv_row) for every row t whose save[t] is not null. */
void launch_kv_save(int T, float* const* save, size_t layer_off, const float* qkv, int ld, int col, int kv_row,
                    cudaStream_t stream);
/**
 * Causal attention of every query tile of `c.items` and head: ctx[t][h·hd …] = softmax(scale · q kᵀ) v over the
 * keys of the row's sequence up to its position (see the file for the order of operations).
 */
void launch_attention(int n_items, const AttnCall& c, size_t layer_off, const float* qkv /* [T×ld] q | k | v */, int ld,
                      int H, int Hkv, int hd, float scale, bool bf16, ActOut ctx, int ctx_ld, cudaStream_t stream);

/** dst[t·dst_ld + dst_col + c] = src[t·src_ld + a_col + c] · SiLU(src[t·src_ld + b_col + c]) for c < cols (GatedMLP). */
void launch_gated_product(int T, int cols, const float* src, int src_ld, int a_col, int b_col, ActOut dst, int dst_ld,
                          int dst_col, cudaStream_t stream);

/**
 * The decode projection (skinny_gemm.cu): y[t·ldy + n] = Σ_k x[t·ldx + k]·w[n·K + k] for t < T ≤ kMaxSkinnyRows, bf16
 * w and x, fp32 y; the same bits for a row at any T. `workspace` holds skinny_gemm_plan(N, K).splits × T × N floats.
 */
constexpr int kMaxSkinnyRows = 64;
struct SkinnyPlan {
    int splits;   // slices of K, each summed by its own blocks, then added in order
    int k_slice;  // k per slice
};
SkinnyPlan skinny_gemm_plan(int N, int K);
/** Whether the kernel takes these operands: K and ldx multiples of 8, 16-byte aligned w and x. */
bool skinny_gemm_fits(int K, int ldx, const void* w, const void* x);
void launch_skinny_gemm(const void* w /* [N×K] */, int N, int K, const void* x /* [T×ldx] */, int ldx, int T,
                        float* y /* [T×ldy] */, int ldy, float* workspace, cudaStream_t stream);

/** out = RMSNorm_group(y ⊙ SiLU(z)) · w, groups of E/G contiguous channels (Mamba-2, norm_before_gate=false). */
void launch_gated_rmsnorm(int T, const float* y /* [T×E] */, const float* z /* [T×z_stride] */, int z_stride,
                          const float* w /* [E] */, int E, int G, float eps, ActOut out /* [T×E] */, cudaStream_t stream);

/** dst[t, c] = src[t*src_stride + c] for c < cols, converted to the ActOut type. */
void launch_copy_cols(int T, int cols, const float* src, int src_stride, ActOut dst /* [T×cols] */, cudaStream_t stream);

/** y[t*ld + c] += bias[c] for t < T, c < cols. */
void launch_add_bias(int T, int cols, float* y, int ld, const float* bias, cudaStream_t stream);

/**
 * For each entry i: logprob[i] = logits[row[i], target[i]] − logsumexp(logits[row[i], :]) with the sum
 * taken in double; greedy[i] = 1 when target[i] is the first index of the row's maximum.
 */
void launch_logsoftmax_gather(const float* logits /* [rows×V] */, int V, const int32_t* row, const int32_t* target,
                              int n, double* logprob, uint8_t* greedy, cudaStream_t stream);

}  // namespace mamba::cuda
