// attention.h — the attention layers of hybrid models on the CPU: mamba_ssm's MHA (modules/mha.py) as the
// CPU backend runs it over packed segments, and the K/V rows kept for later tokens.
//
// Layouts: the in_proj output of a row is [q (H·hd) | k (Hkv·hd) | v (Hkv·hd) | mlp up | mlp gate]; head h of q
// is q[h·hd .. h·hd + hd). Keys and values are read head-major (a head's rows contiguous): the call's own rows
// from gather_kv's copy, earlier rows from the KvBlocks of the chain a segment starts from (K after rotary).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "weights.h"

namespace mamba {

// A block of K/V rows of a state's chain: rows [start, start + rows) of the sequence, every attention layer.
// Blocks are shared between slots (std::shared_ptr counts the slots and child blocks holding one). Each layer
// keeps its rows head-major, [K | V][Hkv][capacity][hd], so a head's keys are one contiguous run.
class KvBlock {
public:
    std::shared_ptr<KvBlock> parent;  // the rows before `start` (null when start is 0)
    int64_t start = 0;                // chain length at this block's first row
    int64_t rows = 0;                 // rows held

    KvBlock(std::shared_ptr<KvBlock> parent, int64_t start, int64_t rows, int n_layers, const AttentionDims& a);
    ~KvBlock();  // releases a long parent chain iteratively (no recursion per block)
    KvBlock(const KvBlock&) = delete;
    KvBlock& operator=(const KvBlock&) = delete;

    // Appends n rows to every layer (capacity doubles when it runs out: amortised O(1) per decoded row).
    void grow(int64_t n);
    // Row r of K head g / V head g of attention layer l (hd floats); rows of one head follow each other.
    const float* k(int l, int64_t g, int64_t r) const { return layers_[size_t(l)].data() + (g * cap_ + r) * hd_; }
    const float* v(int l, int64_t g, int64_t r) const { return k(l, heads_ + g, r); }
    // Copies rows [t0, t0 + n) of a head-major [K | V][Hkv][T][hd] array (gather_kv) to rows [r0, r0 + n).
    void store(int l, int64_t r0, const float* kv, int64_t T, int64_t t0, int64_t n);
    // Row r of layer l as [K heads | V heads] (2·Hkv·hd floats), and back (exportState / importState).
    void read_row(int l, int64_t r, float* out) const;
    void write_row(int l, int64_t r, const float* in);

private:
    int64_t heads_, hd_, cap_;
    std::vector<std::vector<float>> layers_;  // per attention layer: [2·Hkv][cap_][hd_]
};

// A state's K/V rows: the first `length` rows of the chain ending at `tail` (tail's own rows may go further
// only while another chain shares it; then they are not this state's).
struct KvChain {
    std::shared_ptr<KvBlock> tail;
    int64_t length = 0;
};

// Rows [0, rows) of one block, one run of consecutive positions.
struct KvRun {
    const KvBlock* block;
    int64_t rows;
};

// The chain's rows as runs in position order (root first), skipping empty ones.
std::vector<KvRun> chain_runs(const KvChain& chain);

// One packed segment of an attention call: its rows [t0, t1) of the batch and the K/V rows before them.
// A row t's position (rotary angle, causal limit) is pos0 + (t − t0); pos0 = Σ rows of `past`.
struct AttnSegment {
    int64_t t0, t1, pos0;
    std::vector<KvRun> past;
};

// cos/sin of the rotary angles θ[p][i] = p · base^(−2i/rd), i < rd/2, computed in double and rounded to float
// (flash_attn's RotaryEmbedding, non-interleaved), for positions [0, positions()).
class RotaryTable {
public:
    RotaryTable(int64_t rd, double base) : rd_(rd), base_(base) {}
    // Makes positions [0, n) available.
    void ensure(int64_t n);
    int64_t positions() const { return n_; }
    const float* cos(int64_t p) const { return cos_.data() + p * (rd_ / 2); }
    const float* sin(int64_t p) const { return sin_.data() + p * (rd_ / 2); }

private:
    int64_t rd_;
    double base_;
    int64_t n_ = 0;
    std::vector<float> cos_, sin_;
};

// Causal depthwise conv + bias over the packed segments, no activation (MHA's conv1d on q, k, v):
//   out[t][c] = Σ_{j<K} wT[j][c] · in[t−K+1+j][c] + bias[c]
// where inputs before a segment's first token come from its conv_init state ([K−1][C], oldest first; null = 0),
// and the last K−1 inputs of a segment go to its conv_save. in: [T] rows at stride ldi, out: [T][C].
void conv_channels_no_act(const float* in, int64_t ldi, int64_t C, int K, const float* wT, const float* bias,
                          const std::vector<SegmentState>& segs, float* out, ThreadPool& pool);

// Copies the K and V heads of every row of qkv (q | k | v, after conv and rotary) into head-major
// kv [K | V][Hkv][T][hd], so that the attention reads each head's keys as one contiguous run.
void gather_kv(const float* qkv, int64_t ld, int64_t T, const AttentionDims& a, float* kv, ThreadPool& pool);

// Rotary embedding in place on the q heads and k heads of each row (first rd dims of every head):
//   x1 = x[i], x2 = x[i + rd/2]  (i < rd/2)  →  x1·cos θ[p][i] − x2·sin θ[p][i],  x2·cos θ[p][i] + x1·sin θ[p][i]
// qkv: [T] rows at stride ld (q | k | v); pos[t] = the row's position.
void apply_rotary(float* qkv, int64_t ld, int64_t T, const int64_t* pos, const AttentionDims& a, const RotaryTable& rot,
                  ThreadPool& pool);

// Causal multi-head attention with grouped K/V heads (query head h reads K/V head g = h / (H/Hkv)):
//   s_j = scale · q_t,h · k_j,g   for every key position j ≤ p = pos0 + (t − t0)
//   ctx[t][h·hd + d] = Σ_j exp(s_j − max s) · v_j,g[d] / Σ_j exp(s_j − max s)
// Queries are the q heads of qkv (after conv and rotary). Keys at positions < pos0 come from the segment's past
// runs (layer `layer` of their blocks), the others from the call's own rows in kv ([K | V][Hkv][T][hd],
// gather_kv). Every output is computed the same way whatever the packing, tiling, threads or block boundaries:
// scores in position order, their max, then exp and sum in 8 lanes by position (j mod 8) reduced by vec::hsum,
// and the weighted sum of V rows in position order.
void attention(const float* qkv, int64_t ld, const float* kv, int64_t T, const AttentionDims& a, float scale,
               int layer, const std::vector<AttnSegment>& segs, float* ctx, int64_t ldc, ThreadPool& pool);

}  // namespace mamba
