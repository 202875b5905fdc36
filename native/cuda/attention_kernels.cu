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
// ascending order); bf16 weights use tensor cores (wmma, bf16 q, k, p, v with fp32 accumulators) when the head
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
    const size_t t = blockIdx.x;
    const int half = rd / 2;
    const double p = static_cast<double>(pos[t]);
    float* row = qkv + t * static_cast<size_t>(ld);
    for (int idx = threadIdx.x; idx < heads * half; idx += blockDim.x) {
        const int head = idx / half, i = idx % half;
        const double theta = p * (1.0 / pow(base, static_cast<double>(2 * i) / static_cast<double>(rd)));  // p·inv_freq_i
        const float c = static_cast<float>(cos(theta)), s = static_cast<float>(sin(theta));
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
    int seg, row0, rows;  // first call row of the tile, valid rows (≤ kAttnRows)
    int s0, pos0, last;   // the segment's first row, first position and last position
    int pos_max;          // position of the tile's last valid row
};

__device__ __forceinline__ AttnTile attn_tile(const AttnCall& c) {
    AttnTile t;
    t.seg = c.items[2 * blockIdx.x];
    t.row0 = c.items[2 * blockIdx.x + 1];
    t.s0 = c.seg_start[t.seg];
    const int len = c.seg_len[t.seg];
    t.pos0 = c.seg_pos0[t.seg];
    t.rows = min(kAttnRows, t.s0 + len - t.row0);
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
    const AttnTile t = attn_tile(a.c);
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

/** Shared memory layout of the tensor-core kernel (byte offsets; every region 128-byte aligned). */
struct AttnTcLayout {
    int ldq, lds, ldp, ldo;  // element strides: bf16 Q/K/V rows, float S rows, bf16 P rows, float PV/O rows
    size_t q, k, v, s, p, pv, o, stats, bytes;
    __host__ __device__ explicit AttnTcLayout(int hd) {
        ldq = hd + 8;
        lds = kAttnKeys + 4;
        ldp = kAttnKeys + 8;
        ldo = hd + 4;
        auto up = [](size_t x) { return (x + 127) / 128 * 128; };
        q = 0;
        k = up(q + size_t(kAttnRows) * ldq * 2);
        v = up(k + size_t(kAttnKeys) * ldq * 2);
        s = up(v + size_t(kAttnKeys) * ldq * 2);
        p = up(s + size_t(kAttnRows) * lds * 4);
        pv = up(p + size_t(kAttnRows) * ldp * 2);
        o = up(pv + size_t(kAttnRows) * ldo * 4);
        stats = up(o + size_t(kAttnRows) * ldo * 4);
        bytes = up(stats + 3 * kAttnRows * 4);
    }
};

/**
 * bf16 attention on tensor cores (hd a multiple of 16): S = Q·Kᵀ by wmma (warp w: key columns 16w … 16w+15, the
 * hd/16 products in ascending order), the softmax step as in the fp32 kernel, then PV = P·V by wmma (warps over
 * the hd/16 column tiles, 4 products over the keys in ascending order) and o ← α·o + PV.
 */
__global__ void __launch_bounds__(kAttnThreads) attention_tc_kernel(AttnArgs a) {
    extern __shared__ __align__(128) unsigned char smem[];
    const int hd = a.hd, head = blockIdx.y, kvh = head / (a.H / a.Hkv);
    const AttnTcLayout lay(hd);
    __nv_bfloat16* Q = reinterpret_cast<__nv_bfloat16*>(smem + lay.q);
    __nv_bfloat16* K = reinterpret_cast<__nv_bfloat16*>(smem + lay.k);
    __nv_bfloat16* V = reinterpret_cast<__nv_bfloat16*>(smem + lay.v);
    float* S = reinterpret_cast<float*>(smem + lay.s);
    __nv_bfloat16* P = reinterpret_cast<__nv_bfloat16*>(smem + lay.p);
    float* PV = reinterpret_cast<float*>(smem + lay.pv);
    float* O = reinterpret_cast<float*>(smem + lay.o);
    float* m = reinterpret_cast<float*>(smem + lay.stats);
    float* l = m + kAttnRows;
    float* alpha = l + kAttnRows;
    const AttnTile t = attn_tile(a.c);
    const int warp = threadIdx.x / 32;
    const int r = threadIdx.x / kLanesPerRow, g = threadIdx.x % kLanesPerRow;
    const int row_pos = a.c.pos[t.row0 + (r < t.rows ? r : 0)];

    stage_rows(kAttnRows, hd, [&](int i) {
        return a.qkv + static_cast<size_t>(t.row0 + (i < t.rows ? i : 0)) * a.ld + static_cast<size_t>(head) * hd;
    }, [&](int i, int d, float v) { Q[i * lay.ldq + d] = __float2bfloat16_rn(v); });
    for (int i = threadIdx.x; i < kAttnRows * lay.ldo; i += kAttnThreads) O[i] = 0.0f;
    if (threadIdx.x < kAttnRows) {
        m[threadIdx.x] = -INFINITY;
        l[threadIdx.x] = 0.0f;
    }

    for (int key0 = 0; key0 <= t.pos_max; key0 += kAttnKeys) {
        __syncthreads();
        stage_rows(kAttnKeys, hd, [&](int i) {
            const int j = key0 + i;
            return j <= t.last ? key_row(a, t, j) + static_cast<size_t>(kvh) * hd : nullptr;
        }, [&](int i, int d, float v) { K[i * lay.ldq + d] = __float2bfloat16_rn(v); });
        stage_rows(kAttnKeys, hd, [&](int i) {
            const int j = key0 + i;
            return j <= t.last ? key_row(a, t, j) + static_cast<size_t>(a.Hkv + kvh) * hd : nullptr;
        }, [&](int i, int d, float v) { V[i * lay.ldq + d] = __float2bfloat16_rn(v); });
        __syncthreads();
        {  // S[:, 16w …] = Σ_d Q[:, d]·K[16w …, d]
            WmmaAccum acc;
            wmma::fill_fragment(acc, 0.0f);
            mma_tiles<__nv_bfloat16, wmma::row_major, wmma::col_major>(acc, Q, lay.ldq, 16, K + warp * 16 * lay.ldq, lay.ldq,
                                                                       16, hd / 16);
            wmma::store_matrix_sync(S + warp * 16, acc, lay.lds, wmma::mem_row_major);
        }
        __syncthreads();
        float s[kKeysPerLane];
#pragma unroll
        for (int k = 0; k < kKeysPerLane; ++k) s[k] = S[r * lay.lds + g + kLanesPerRow * k] * a.scale;
        softmax_tile(s, key0, row_pos, m, l, alpha,
                     [&](int k, float p) { P[r * lay.ldp + g + kLanesPerRow * k] = __float2bfloat16_rn(p); });
        __syncthreads();
        for (int tile = warp; tile < hd / 16; tile += kAttnWarps) {  // PV[:, 16·tile …] = Σ_c P[:, c]·V[c, 16·tile …]
            WmmaAccum acc;
            wmma::fill_fragment(acc, 0.0f);
            mma_tiles<__nv_bfloat16, wmma::row_major, wmma::row_major>(acc, P, lay.ldp, 16, V + tile * 16, lay.ldq,
                                                                       16 * lay.ldq, kAttnKeys / 16);
            wmma::store_matrix_sync(PV + tile * 16, acc, lay.ldo, wmma::mem_row_major);
        }
        __syncthreads();
        for (int d = g; d < hd; d += kLanesPerRow) O[r * lay.ldo + d] = alpha[r] * O[r * lay.ldo + d] + PV[r * lay.ldo + d];
    }
    __syncthreads();
    store_ctx(a, t, head, O, lay.ldo, l);
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

}  // namespace

bool attention_uses_tensor_cores(bool bf16, int hd) { return bf16 && hd % 16 == 0; }

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
    static size_t tc_allowed = 0, f32_allowed = 0;  // the attribute is per kernel, for the process
    if (attention_uses_tensor_cores(bf16, hd)) {
        launch_with_smem(attention_tc_kernel, tc_allowed, AttnTcLayout(hd).bytes, grid, stream, a, "attention_tc_kernel");
    } else {
        launch_with_smem(attention_f32_kernel, f32_allowed, attn_f32_floats(hd) * sizeof(float), grid, stream, a,
                         "attention_f32_kernel");
    }
}

}  // namespace mamba::cuda
