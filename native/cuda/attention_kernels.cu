// attention_kernels.cu — the attention layers of hybrid models (mamba_ssm's MHA): rotary embedding, the K/V rows
// kept in a state's blocks, and causal attention over packed segments, flash-attention style.
//
// Rotary (GPT-NeoX halves) on the first rd dims of every q and k head of a row at position p:
//   θ_i = p · base^(−2i/rd)   (i < rd/2, in double, cos and sin rounded to float once)
//   x_i ← x_i cos θ_i − x_{i+rd/2} sin θ_i,   x_{i+rd/2} ← x_{i+rd/2} cos θ_i + x_i sin θ_i
// Attention, query head h at position p, key/value head g = h / (H/Hkv), key positions j = 0 … p of its sequence:
//   s_j = scale · q · k_j,   ctx = Σ_j e^{s_j − m} v_j / Σ_j e^{s_j − m},   m = max_j s_j
// computed online over tiles of kAttnKeys key positions (flash attention): per tile the row's maximum m' =
// max(m, max s), the old sums rescaled by α = e^{m − m'}, then l ← α·l + Σ e^{s − m'}, o ← α·o + Σ e^{s − m'} v.
//
// Determinism: key tiles start at absolute positions 0, 64, 128, … and a query row at position p walks tiles
// 0 … ⌊p/64⌋ in order, masking keys past p; inside a tile its scores, maximum, exponentials and sums are computed in
// a fixed order that involves only its own row. Keys come from the segment's own rows (this call's q|k|v buffer) or,
// before the segment's first position, from the blocks of its state's chain (the same values, stored when they
// were computed). So a row's result depends on its position and on the keys' values only: not on how the call is
// packed, how the query rows are tiled, or how the context is split into blocks. Tiles past a row's position add
// exact zeros (α = 1, weights 0), so sharing a query tile with later rows changes nothing.
//
// Two paths, like the rest of the backend: fp32 weights compute in fp32 on the CUDA cores (q·k and p·v sums in
// ascending order; 16 query rows per block); bf16 weights use tensor cores (wmma, bf16 q, k, p, v with fp32
// accumulators; 64 query rows per block, 16 per warp, each key tile staged once for all of them) when the head
// dimension is a multiple of 16, else the fp32 kernel.
#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "device_math.cuh"
#include "wmma_tiles.cuh"

namespace mamba::cuda {

namespace {

using namespace nvcuda;

constexpr int kAttnThreads = 128;                     // 4 warps
constexpr int kAttnWarps = kAttnThreads / 32;
constexpr int kLanesPerRow = kAttnThreads / kAttnRows;  // 8 threads share a query row in the softmax step
constexpr int kKeysPerLane = kAttnKeys / kLanesPerRow;  // 8 key columns per thread: c = lane8 + 8·k
static_assert(kAttnRows == 16 && kAttnKeys == 16 * kAttnWarps, "one 16-row wmma tile of queries, a 16-key column tile per warp");
static_assert(kLanesPerRow == 8 && kKeysPerLane * kLanesPerRow == kAttnKeys, "8 lanes of a warp share a query row");

__global__ void rotary_kernel(float* qkv, int ld, const int32_t* pos, int heads, int hd, int rd, double base) {
    __shared__ float cos_i[kMaxAttnHeadDim / 2], sin_i[kMaxAttnHeadDim / 2];
    const size_t t = blockIdx.x;
    const int half = rd / 2;
    const double p = static_cast<double>(pos[t]);
    for (int i = threadIdx.x; i < half; i += blockDim.x) {  // one angle per (row, i), the same for every head
        const double theta = p * (1.0 / pow(base, static_cast<double>(2 * i) / static_cast<double>(rd)));  // p·inv_freq_i
        cos_i[i] = static_cast<float>(cos(theta));
        sin_i[i] = static_cast<float>(sin(theta));
    }
    __syncthreads();
    float* row = qkv + t * static_cast<size_t>(ld);
    for (int idx = threadIdx.x; idx < heads * half; idx += blockDim.x) {
        const int head = idx / half, i = idx % half;
        const float c = cos_i[i], s = sin_i[i];
        float* x = row + static_cast<size_t>(head) * hd;
        const float x1 = x[i], x2 = x[i + half];
        x[i] = x1 * c - x2 * s;         // x1 cos − x2 sin
        x[i + half] = x2 * c + x1 * s;  // x2 cos + x1 sin
    }
}

__global__ void kv_save_kernel(float* const* save, size_t layer_off, const float* qkv, int ld, int col, int kv_row) {
    const size_t t = blockIdx.x;
    float* dst = save[t];
    if (dst == nullptr) return;
    dst += layer_off;
    const float* src = qkv + t * static_cast<size_t>(ld) + col;
    for (int d = threadIdx.x; d < kv_row; d += blockDim.x) dst[d] = src[d];
}

/** Where one attention block finds everything: the call's tables plus this layer's buffers. */
struct AttnArgs {
    AttnCall c;
    size_t layer_off;  // this layer's K|V within a block row: attention layer index × kv_row
    const float* qkv;  // [T × ld]: q heads | k heads | v heads, after conv and rotary
    int ld, H, Hkv, hd;
    float scale;
    ActOut ctx;        // [T × ctx_ld], head h at columns h·hd …
    int ctx_ld;
};

/** The block's query tile and its segment. */
struct AttnTile {
    int seg, row0, rows;  // first call row of the tile, valid rows (≤ the kernel's rows per tile)
    int s0, pos0, last;   // the segment's first row, first position and last position
    int pos_max;          // position of the tile's last valid row
};

__device__ __forceinline__ AttnTile attn_tile(const AttnCall& c, int tile_rows) {
    AttnTile t;
    t.seg = c.items[2 * blockIdx.x];
    t.row0 = c.items[2 * blockIdx.x + 1];
    t.s0 = c.seg_start[t.seg];
    const int len = c.seg_len[t.seg];
    t.pos0 = c.seg_pos0[t.seg];
    t.rows = min(tile_rows, t.s0 + len - t.row0);
    t.last = t.pos0 + len - 1;
    t.pos_max = t.pos0 + (t.row0 - t.s0) + t.rows - 1;
    return t;
}

/** The K|V row (this layer) of key position j ≤ tile.last of the tile's sequence. */
__device__ __forceinline__ const float* key_row(const AttnArgs& a, const AttnTile& t, int j) {
    if (j < t.pos0) return a.c.past[a.c.past_off[t.seg] + j] + a.layer_off;
    return a.qkv + static_cast<size_t>(t.s0 + j - t.pos0) * a.ld + static_cast<size_t>(a.H) * a.hd;
}

/**
 * Stages rows [0, n) of a tile into shared memory, one warp per row: row r's hd floats from src(r) (null: zeros),
 * converted by `put(r, d, value)`.
 */
template <typename Src, typename Put>
__device__ __forceinline__ void stage_rows(int n, int hd, Src src, Put put) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int r = warp; r < n; r += kAttnWarps) {
        const float* row = src(r);
        for (int d = lane; d < hd; d += 32) put(r, d, row != nullptr ? row[d] : 0.0f);
    }
}

/**
 * The online-softmax step of one tile for the thread's query row r = tid / 8: its scores s (kKeysPerLane columns
 * c = lane8 + 8k, already scaled), masked past the row's position; updates m, l and writes the weights through
 * `put(k, p)` and α to alpha[r]. The row's maximum and sum are reduced over its 8 threads by a fixed butterfly.
 */
template <typename Put>
__device__ __forceinline__ void softmax_tile(float (&s)[kKeysPerLane], int key0, int row_pos, float* m, float* l,
                                             float* alpha, Put put) {
    const int r = threadIdx.x / kLanesPerRow, g = threadIdx.x % kLanesPerRow;
    float tile_max = -INFINITY;
#pragma unroll
    for (int k = 0; k < kKeysPerLane; ++k) {
        if (key0 + g + kLanesPerRow * k > row_pos) s[k] = -INFINITY;  // causal: keys after the row's position
        tile_max = fmaxf(tile_max, s[k]);
    }
#pragma unroll
    for (int off = kLanesPerRow / 2; off > 0; off /= 2) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, off));
    const float m_old = m[r];
    const float m_new = fmaxf(m_old, tile_max);  // finite: key 0 of tile 0 is every row's
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < kKeysPerLane; ++k) {
        const float p = s[k] == -INFINITY ? 0.0f : expf(s[k] - m_new);  // e^{s − m'}
        sum += p;
        put(k, p);
    }
#pragma unroll
    for (int off = kLanesPerRow / 2; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    __syncwarp();
    if (g == 0) {
        const float al = expf(m_old - m_new);  // α = e^{m − m'} (0 on the first tile: l = 0, o = 0)
        alpha[r] = al;
        l[r] = al * l[r] + sum;  // l ← α·l + Σ e^{s − m'}
        m[r] = m_new;
    }
}

/** ctx[t][h·hd + d] = o[r][d] / l[r] for the tile's valid rows. */
__device__ __forceinline__ void store_ctx(const AttnArgs& a, const AttnTile& t, int head, const float* O, int ldo,
                                          const float* l) {
    for (int i = threadIdx.x; i < t.rows * a.hd; i += kAttnThreads) {
        const int r = i / a.hd, d = i % a.hd;
        store_act(a.ctx, static_cast<size_t>(t.row0 + r) * a.ctx_ld + static_cast<size_t>(head) * a.hd + d, O[r * ldo + d] / l[r]);
    }
}

/** Shared memory of the fp32 kernel, in floats. */
__host__ __device__ constexpr size_t attn_f32_floats(int hd) {
    return size_t(kAttnRows) * hd            // Q
           + size_t(kAttnKeys) * (hd + 1)    // K (rows padded: the 8 threads of a row read 8 different keys)
           + size_t(kAttnKeys) * hd          // V
           + size_t(kAttnRows) * kAttnKeys   // P
           + size_t(kAttnRows) * hd          // O
           + 3 * kAttnRows;                  // m, l, α
}

/** fp32 attention: one block per (query tile, head); scores and weighted sums on the CUDA cores. */
__global__ void __launch_bounds__(kAttnThreads) attention_f32_kernel(AttnArgs a) {
    extern __shared__ float sm[];
    const int hd = a.hd, head = blockIdx.y, kvh = head / (a.H / a.Hkv);
    float* Q = sm;
    float* K = Q + kAttnRows * hd;
    float* V = K + kAttnKeys * (hd + 1);
    float* P = V + kAttnKeys * hd;
    float* O = P + kAttnRows * kAttnKeys;
    float* m = O + kAttnRows * hd;
    float* l = m + kAttnRows;
    float* alpha = l + kAttnRows;
    const AttnTile t = attn_tile(a.c, kAttnRows);
    const int r = threadIdx.x / kLanesPerRow, g = threadIdx.x % kLanesPerRow;
    // A padding row (past the segment) repeats the tile's first row, so every row's softmax stays finite.
    const int row_pos = a.c.pos[t.row0 + (r < t.rows ? r : 0)];

    stage_rows(kAttnRows, hd, [&](int i) {
        return a.qkv + static_cast<size_t>(t.row0 + (i < t.rows ? i : 0)) * a.ld + static_cast<size_t>(head) * hd;
    }, [&](int i, int d, float v) { Q[i * hd + d] = v; });
    for (int i = threadIdx.x; i < kAttnRows * hd; i += kAttnThreads) O[i] = 0.0f;
    if (threadIdx.x < kAttnRows) {
        m[threadIdx.x] = -INFINITY;
        l[threadIdx.x] = 0.0f;
    }

    for (int key0 = 0; key0 <= t.pos_max; key0 += kAttnKeys) {
        __syncthreads();  // the previous tile's K, V, P are consumed
        stage_rows(kAttnKeys, hd, [&](int i) {
            const int j = key0 + i;
            return j <= t.last ? key_row(a, t, j) + static_cast<size_t>(kvh) * hd : nullptr;
        }, [&](int i, int d, float v) { K[i * (hd + 1) + d] = v; });
        stage_rows(kAttnKeys, hd, [&](int i) {
            const int j = key0 + i;
            return j <= t.last ? key_row(a, t, j) + static_cast<size_t>(a.Hkv + kvh) * hd : nullptr;
        }, [&](int i, int d, float v) { V[i * hd + d] = v; });
        __syncthreads();
        float s[kKeysPerLane];
#pragma unroll
        for (int k = 0; k < kKeysPerLane; ++k) {
            const float* q = Q + r * hd;
            const float* kr = K + (g + kLanesPerRow * k) * (hd + 1);
            float dot = 0.0f;
            for (int d = 0; d < hd; ++d) dot = fmaf(q[d], kr[d], dot);  // q·k_j, d ascending
            s[k] = dot * a.scale;
        }
        softmax_tile(s, key0, row_pos, m, l, alpha, [&](int k, float p) { P[r * kAttnKeys + g + kLanesPerRow * k] = p; });
        __syncthreads();
        // o ← α·o + Σ_c p_c v_c, c ascending (thread: row r, dims d ≡ g mod 8)
        for (int d = g; d < hd; d += kLanesPerRow) {
            float pv = 0.0f;
            for (int c = 0; c < kAttnKeys; ++c) pv = fmaf(P[r * kAttnKeys + c], V[c * hd + d], pv);
            O[r * hd + d] = alpha[r] * O[r * hd + d] + pv;
        }
    }
    __syncthreads();
    store_ctx(a, t, head, O, hd, l);
}

/**
 * Stages rows [0, n) of a K|V tile into shared memory as bf16 (row r at dst + r·ld_dst), src(r) giving its hd floats
 * (null: zeros). One warp per row, four floats per lane and load, eight rows' loads in flight per warp.
 */
template <typename Src>
__device__ __forceinline__ void stage_bf16(int n, int hd, __nv_bfloat16* dst, int ld_dst, Src src) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    constexpr int kBatch = 8;
    for (int r0 = warp; r0 < n; r0 += kAttnWarps * kBatch) {
        for (int d = lane * 4; d < hd; d += 128) {
            float4 v[kBatch];
#pragma unroll
            for (int u = 0; u < kBatch; ++u) {
                const int r = r0 + u * kAttnWarps;
                const float* row = r < n ? src(r) : nullptr;
                if (row == nullptr) {
                    v[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                } else if ((reinterpret_cast<uintptr_t>(row) & 15) == 0) {
                    v[u] = *reinterpret_cast<const float4*>(row + d);
                } else {
                    v[u] = make_float4(row[d], row[d + 1], row[d + 2], row[d + 3]);
                }
            }
#pragma unroll
            for (int u = 0; u < kBatch; ++u) {
                const int r = r0 + u * kAttnWarps;
                if (r >= n) break;
                __nv_bfloat162* out = reinterpret_cast<__nv_bfloat162*>(dst + static_cast<size_t>(r) * ld_dst + d);
                out[0] = __floats2bfloat162_rn(v[u].x, v[u].y);
                out[1] = __floats2bfloat162_rn(v[u].z, v[u].w);
            }
        }
    }
}

constexpr int kTcRows = 16 * kAttnWarps;                   // query rows per block of the tensor-core kernel: 16 per warp
constexpr int kTcLanesPerRow = 2;                          // its softmax step: 2 lanes of the warp per query row
constexpr int kTcKeysPerLane = kAttnKeys / kTcLanesPerRow;  // 32 key columns per lane: c = half + 2k
constexpr int kAccElems = WmmaAccum::num_elements;          // elements of an accumulator tile per thread

/** Shared memory layout of the tensor-core kernel (byte offsets; every region 128-byte aligned). */
struct AttnTcLayout {
    int ldq, lds, ldp;  // element strides: bf16 Q/K/V rows, float S rows, bf16 P rows
    size_t q, k, v, s, p, stats, bytes;
    __host__ __device__ explicit AttnTcLayout(int hd) {
        ldq = hd + 8;
        lds = kAttnKeys + 4;
        ldp = kAttnKeys + 8;
        auto up = [](size_t x) { return (x + 127) / 128 * 128; };
        q = 0;
        k = up(q + size_t(kTcRows) * ldq * 2);
        v = up(k + size_t(kAttnKeys) * ldq * 2);
        s = up(v + size_t(kAttnKeys) * ldq * 2);
        p = up(s + size_t(kTcRows) * lds * 4);
        stats = up(p + size_t(kTcRows) * ldp * 2);
        bytes = up(stats + (256 + 2 * kTcRows) * 4);  // a 16×16 table of row indices; α and l per row
    }
};

/**
 * bf16 attention on tensor cores, hd = 16·HT. A block holds kTcRows query rows; warp w owns rows 16w … 16w+15 and
 * keeps their o = Σ e^{s − m} v in HT accumulator tiles. Per key tile: S = Q·Kᵀ by wmma (4 column tiles of 16 keys,
 * the HT products in ascending order), the online-softmax step on the warp's rows (2 lanes per row, each summing its
 * 32 keys in ascending order, then one exchange), PV = P·V by wmma (the 4 key products in ascending order) and
 * o ← fma(α, o, PV) element-wise, α of the element's row (its row found through a table of row indices loaded as
 * an accumulator tile). Every step involves only the row's own values, so a row's result does
 * not depend on the other rows of its block. A warp skips the key tiles past its last row (they would add exact zeros).
 */
template <int HT>
__global__ void __launch_bounds__(kAttnThreads) attention_tc_kernel(AttnArgs a) {
    extern __shared__ __align__(128) unsigned char smem[];
    constexpr int hd = 16 * HT;
    const int head = blockIdx.y, kvh = head / (a.H / a.Hkv);
    const AttnTcLayout lay(hd);
    __nv_bfloat16* Q = reinterpret_cast<__nv_bfloat16*>(smem + lay.q);
    __nv_bfloat16* K = reinterpret_cast<__nv_bfloat16*>(smem + lay.k);
    __nv_bfloat16* V = reinterpret_cast<__nv_bfloat16*>(smem + lay.v);
    float* row_index = reinterpret_cast<float*>(smem + lay.stats);  // [16×16]: element (r, c) = r
    const AttnTile t = attn_tile(a.c, kTcRows);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int w0 = 16 * warp;  // the warp's first row in the tile
    float* S = reinterpret_cast<float*>(smem + lay.s) + static_cast<size_t>(w0) * lay.lds;
    __nv_bfloat16* P = reinterpret_cast<__nv_bfloat16*>(smem + lay.p) + static_cast<size_t>(w0) * lay.ldp;
    float* alpha = row_index + 256 + w0;
    float* l_rows = row_index + 256 + kTcRows + w0;
    const bool active = w0 < t.rows;
    const int tile_pos0 = t.pos_max - (t.rows - 1);                  // position of the tile's first row
    const int warp_pos_max = tile_pos0 + min(w0 + 15, t.rows - 1);  // position of the warp's last valid row
    // The softmax step's row (2 lanes each); a padding row (past the segment) repeats the tile's first row.
    const int rr = lane / kTcLanesPerRow, half = lane % kTcLanesPerRow;
    const int row_pos = a.c.pos[t.row0 + (w0 + rr < t.rows ? w0 + rr : 0)];

    stage_bf16(kTcRows, hd, Q, lay.ldq, [&](int i) {
        return a.qkv + static_cast<size_t>(t.row0 + (i < t.rows ? i : 0)) * a.ld + static_cast<size_t>(head) * hd;
    });
    for (int i = threadIdx.x; i < 256; i += kAttnThreads) row_index[i] = static_cast<float>(i / 16);
    __syncthreads();
    int row_of[kAccElems];  // the row of element i of this thread's accumulator tiles
    {
        WmmaAccum rows;
        wmma::load_matrix_sync(rows, row_index, 16, wmma::mem_row_major);
#pragma unroll
        for (int i = 0; i < kAccElems; ++i) row_of[i] = static_cast<int>(rows.x[i]);
    }
    WmmaAccum o[HT];
#pragma unroll
    for (int j = 0; j < HT; ++j) wmma::fill_fragment(o[j], 0.0f);
    float m = -INFINITY, l = 0.0f;

    for (int key0 = 0; key0 <= t.pos_max; key0 += kAttnKeys) {
        __syncthreads();  // the previous tile's K and V are consumed
        const auto kv_row = [&](int i) { return key0 + i <= t.last ? key_row(a, t, key0 + i) : nullptr; };
        stage_bf16(kAttnKeys, hd, K, lay.ldq, [&](int i) {
            const float* row = kv_row(i);
            return row != nullptr ? row + static_cast<size_t>(kvh) * hd : nullptr;
        });
        stage_bf16(kAttnKeys, hd, V, lay.ldq, [&](int i) {
            const float* row = kv_row(i);
            return row != nullptr ? row + static_cast<size_t>(a.Hkv + kvh) * hd : nullptr;
        });
        __syncthreads();
        if (!active || key0 > warp_pos_max) continue;
#pragma unroll
        for (int c = 0; c < kAttnKeys / 16; ++c) {  // S[:, 16c …] = Σ_d Q[:, d]·K[16c …, d]
            WmmaAccum acc;
            wmma::fill_fragment(acc, 0.0f);
            mma_tiles<__nv_bfloat16, wmma::row_major, wmma::col_major>(acc, Q + static_cast<size_t>(w0) * lay.ldq, lay.ldq,
                                                                       16, K + static_cast<size_t>(c) * 16 * lay.ldq,
                                                                       lay.ldq, 16, HT);
            wmma::store_matrix_sync(S + c * 16, acc, lay.lds, wmma::mem_row_major);
        }
        __syncwarp();
        {  // the online-softmax step of row rr: m' = max(m, max s), p = e^{s − m'}, l ← α·l + Σ p, α = e^{m − m'}
            float s[kTcKeysPerLane];
            float tile_max = -INFINITY;
#pragma unroll
            for (int k = 0; k < kTcKeysPerLane; ++k) {
                const int c = half + kTcLanesPerRow * k;
                s[k] = key0 + c > row_pos ? -INFINITY : S[rr * lay.lds + c] * a.scale;  // causal mask
                tile_max = fmaxf(tile_max, s[k]);
            }
            tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
            const float m_new = fmaxf(m, tile_max);  // finite: key 0 of tile 0 is every row's
            float sum = 0.0f;
#pragma unroll
            for (int k = 0; k < kTcKeysPerLane; ++k) {
                const float p = s[k] == -INFINITY ? 0.0f : expf(s[k] - m_new);
                sum += p;
                P[rr * lay.ldp + half + kTcLanesPerRow * k] = __float2bfloat16_rn(p);
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);  // a + b on one lane, b + a on the other: the same bits
            const float al = expf(m - m_new);             // 0 on the first tile (m = −∞, l = 0, o = 0)
            l = al * l + sum;
            m = m_new;
            if (half == 0) alpha[rr] = al;
        }
        __syncwarp();
#pragma unroll
        for (int j = 0; j < HT; ++j) {  // o[:, 16j …] ← α·o + PV,  PV = Σ_c P[:, c]·V[c, 16j …]
            WmmaAccum pv;
            wmma::fill_fragment(pv, 0.0f);
            mma_tiles<__nv_bfloat16, wmma::row_major, wmma::row_major>(pv, P, lay.ldp, 16, V + j * 16, lay.ldq,
                                                                       16 * lay.ldq, kAttnKeys / 16);
#pragma unroll
            for (int i = 0; i < kAccElems; ++i) o[j].x[i] = fmaf(alpha[row_of[i]], o[j].x[i], pv.x[i]);
        }
        __syncwarp();
    }
    if (!active) return;
    if (half == 0) l_rows[rr] = l;
    __syncwarp();
#pragma unroll
    for (int j = 0; j < HT; ++j) {  // ctx[t][h·hd + 16j + c] = o[r][16j + c] / l[r] for the warp's valid rows
#pragma unroll
        for (int i = 0; i < kAccElems; ++i) o[j].x[i] = o[j].x[i] / l_rows[row_of[i]];
        wmma::store_matrix_sync(S, o[j], lay.lds, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
            const int r = e / 16, c = e % 16;
            if (w0 + r < t.rows) {
                store_act(a.ctx, static_cast<size_t>(t.row0 + w0 + r) * a.ctx_ld + static_cast<size_t>(head) * hd + 16 * j + c,
                          S[r * lay.lds + c]);
            }
        }
        __syncwarp();
    }
}

/** Launches with `bytes` of dynamic shared memory, raising the kernel's limit first when it is not yet that high. */
template <typename Kernel>
void launch_with_smem(Kernel kernel, size_t& allowed, size_t bytes, dim3 grid, cudaStream_t stream, const AttnArgs& a,
                      const char* name) {
    if (bytes > 48 * 1024 && bytes > allowed) {
        check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)), name);
        allowed = bytes;
    }
    kernel<<<grid, kAttnThreads, bytes, stream>>>(a);
    check_launch(name);
}

/** The tensor-core kernel for hd = 16·ht (1 ≤ ht ≤ kMaxAttnHeadDim / 16). */
template <int HT = 1>
void launch_tc_dispatch(int ht, size_t (&allowed)[kMaxAttnHeadDim / 16 + 1], dim3 grid, cudaStream_t stream,
                        const AttnArgs& a) {
    if constexpr (HT <= kMaxAttnHeadDim / 16) {
        if (ht != HT) return launch_tc_dispatch<HT + 1>(ht, allowed, grid, stream, a);
        launch_with_smem(attention_tc_kernel<HT>, allowed[HT], AttnTcLayout(16 * HT).bytes, grid, stream, a,
                         "attention_tc_kernel");
    } else {
        throw std::runtime_error("cuda backend: no tensor-core attention kernel for head dimension " + std::to_string(16 * ht));
    }
}

}  // namespace

bool attention_uses_tensor_cores(bool bf16, int hd) { return bf16 && hd % 16 == 0; }

int attention_query_rows(bool bf16, int hd) { return attention_uses_tensor_cores(bf16, hd) ? kTcRows : kAttnRows; }

void check_attention_shape(int hd) {
    if (hd > kMaxAttnHeadDim) {
        throw std::runtime_error("cuda backend: attnHeadDim " + std::to_string(hd) + " is not supported (at most " +
                                 std::to_string(kMaxAttnHeadDim) + ")");
    }
}

void launch_rotary(int T, float* qkv, int ld, const int32_t* pos, int heads, int hd, int rd, double base,
                   cudaStream_t stream) {
    if (T == 0 || rd == 0) return;
    rotary_kernel<<<T, 128, 0, stream>>>(qkv, ld, pos, heads, hd, rd, base);
    check_launch("rotary_kernel");
}

void launch_kv_save(int T, float* const* save, size_t layer_off, const float* qkv, int ld, int col, int kv_row,
                    cudaStream_t stream) {
    if (T == 0) return;
    kv_save_kernel<<<T, 128, 0, stream>>>(save, layer_off, qkv, ld, col, kv_row);
    check_launch("kv_save_kernel");
}

void launch_attention(int n_items, const AttnCall& c, size_t layer_off, const float* qkv, int ld, int H, int Hkv, int hd,
                      float scale, bool bf16, ActOut ctx, int ctx_ld, cudaStream_t stream) {
    if (n_items == 0) return;
    const AttnArgs a{c, layer_off, qkv, ld, H, Hkv, hd, scale, ctx, ctx_ld};
    const dim3 grid(n_items, H);
    static size_t tc_allowed[kMaxAttnHeadDim / 16 + 1] = {}, f32_allowed = 0;  // the attribute is per kernel, for the process
    if (attention_uses_tensor_cores(bf16, hd)) {
        launch_tc_dispatch(hd / 16, tc_allowed, grid, stream, a);
    } else {
        launch_with_smem(attention_f32_kernel, f32_allowed, attn_f32_floats(hd) * sizeof(float), grid, stream, a,
                         "attention_f32_kernel");
    }
}

}  // namespace mamba::cuda
