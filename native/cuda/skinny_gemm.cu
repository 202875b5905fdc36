// skinny_gemm.cu — the decode projections: Y[T×N] = X[T×K]·W[N×K]ᵀ for T ≤ 64 rows, bf16 weights and inputs, fp32
// results, on tensor cores at the memory bandwidth (step() runs every projection with T = the number of sequences).
//
//   y[t][n] = Σ_k x[t][k] · w[n][k]
//
// A block owns 64 outputs n (4 warps × 16) and one of S fixed slices of K; it walks its slice in chunks of 64 k
// (the weight and input tiles of the next chunk are loaded into registers while the current chunk is multiplied)
// and, per chunk, runs the 4 wmma products 16×16×16 (k ascending) for each 16-row tile of X. With S > 1 each slice's
// sums go to a workspace and a second kernel adds the S slices in order s = 0 … S−1.
//
// Batch invariance: S and the slices depend only on (N, K), the chunks are walked in the same order for every T, and a
// wmma product gives each output from its own row of X and column of Wᵀ only (rows past T are zeros that no other
// row sees). So y[t][n] is the same bits at any T ≤ 64 and wherever row t sits. (The prefill GEMM, cuBLASLt, sums in
// another order: step() and score() agree to rounding, not bit for bit.)
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "kernels.cuh"
#include "wmma_tiles.cuh"

namespace mamba::cuda {

namespace {

using namespace nvcuda;

constexpr int kSkThreads = 128;  // 4 warps
constexpr int kSkCols = 64;      // outputs per block: 16 per warp
constexpr int kSkChunk = 64;     // k per chunk
constexpr int kSkLd = kSkChunk + 8;  // bf16 row stride of the tiles (16 bytes of padding: no bank conflicts)
constexpr int kSkVec = 8;        // bf16 per 16-byte load
constexpr int kSkWLoads = kSkCols * kSkChunk / kSkVec / kSkThreads;       // 4 per thread
constexpr int kSkXLoads = kMaxSkinnyRows * kSkChunk / kSkVec / kSkThreads;  // 4 per thread (T ≤ 64)

struct SkinnyArgs {
    const __nv_bfloat16* w;
    int N, K;
    const __nv_bfloat16* x;
    int ldx, T;
    float* y;  // S = 1: the result [T × ldy]; S > 1: the slices' sums [S][T][N]
    int ldy;
    int k_slice;  // k per slice (a multiple of kSkChunk)
};

/** 8 bf16 of row `row` from column k, zeros past the matrix (K a multiple of 8, rows 16-byte aligned). */
__device__ __forceinline__ uint4 load8(const __nv_bfloat16* base, int row, int rows, int ld, int k, int K) {
    if (row >= rows || k >= K) return make_uint4(0, 0, 0, 0);
    return __ldg(reinterpret_cast<const uint4*>(base + static_cast<size_t>(row) * ld + k));
}

constexpr int kSkLdF = 16 + 4;  // float row stride of a warp's staged 64 × 16 results
constexpr size_t kSkTileBytes = size_t(kSkCols + kMaxSkinnyRows) * kSkLd * 2;
constexpr size_t kSkStageBytes = size_t(kSkThreads / 32) * kMaxSkinnyRows * kSkLdF * 4;
constexpr size_t kSkSmemBytes = kSkTileBytes > kSkStageBytes ? kSkTileBytes : kSkStageBytes;

__global__ void __launch_bounds__(kSkThreads) skinny_gemm_kernel(SkinnyArgs a) {
    __shared__ __align__(128) unsigned char smem[kSkSmemBytes];
    __nv_bfloat16* Ws = reinterpret_cast<__nv_bfloat16*>(smem);             // [64 outputs][kSkLd]
    __nv_bfloat16* Xs = Ws + kSkCols * kSkLd;                                // [64 rows][kSkLd]
    const int warp = threadIdx.x / 32;
    const int n0 = blockIdx.x * kSkCols;
    const int k_begin = blockIdx.y * a.k_slice, k_end = min(a.K, k_begin + a.k_slice);
    const int m_tiles = (a.T + 15) / 16;

    WmmaAccum acc[kMaxSkinnyRows / 16];
#pragma unroll
    for (int m = 0; m < kMaxSkinnyRows / 16; ++m) wmma::fill_fragment(acc[m], 0.0f);

    // Element i of a tile load: row i / 8, 8 bf16 at column (i % 8)·8.
    uint4 wv[kSkWLoads], xv[kSkXLoads];
    auto fetch = [&](int k0) {
#pragma unroll
        for (int u = 0; u < kSkWLoads; ++u) {
            const int i = threadIdx.x + u * kSkThreads, r = i / (kSkChunk / kSkVec), c = (i % (kSkChunk / kSkVec)) * kSkVec;
            wv[u] = load8(a.w, n0 + r, a.N, a.K, k0 + c, k_end);
        }
#pragma unroll
        for (int u = 0; u < kSkXLoads; ++u) {
            const int i = threadIdx.x + u * kSkThreads, r = i / (kSkChunk / kSkVec), c = (i % (kSkChunk / kSkVec)) * kSkVec;
            xv[u] = load8(a.x, r, a.T, a.ldx, k0 + c, k_end);
        }
    };
    fetch(k_begin);
    for (int k0 = k_begin; k0 < k_end; k0 += kSkChunk) {
        __syncthreads();  // the previous chunk's tiles are consumed
#pragma unroll
        for (int u = 0; u < kSkWLoads; ++u) {
            const int i = threadIdx.x + u * kSkThreads, r = i / (kSkChunk / kSkVec), c = (i % (kSkChunk / kSkVec)) * kSkVec;
            *reinterpret_cast<uint4*>(Ws + r * kSkLd + c) = wv[u];
        }
#pragma unroll
        for (int u = 0; u < kSkXLoads; ++u) {
            const int i = threadIdx.x + u * kSkThreads, r = i / (kSkChunk / kSkVec), c = (i % (kSkChunk / kSkVec)) * kSkVec;
            *reinterpret_cast<uint4*>(Xs + r * kSkLd + c) = xv[u];
        }
        __syncthreads();
        if (k0 + kSkChunk < k_end) fetch(k0 + kSkChunk);  // next chunk in flight during the products
        // acc[m] += X[16m …, chunk] · W[16·warp …, chunk]ᵀ, the chunk's 4 k-steps in order
#pragma unroll
        for (int m = 0; m < kMaxSkinnyRows / 16; ++m) {  // (unrolled: the accumulators stay in registers)
            if (m < m_tiles) {
                mma_tiles<__nv_bfloat16, wmma::row_major, wmma::col_major>(acc[m], Xs + m * 16 * kSkLd, kSkLd, 16,
                                                                           Ws + warp * 16 * kSkLd, kSkLd, 16, kSkChunk / 16);
            }
        }
    }
    __syncthreads();  // the tiles are consumed: their memory stages the results
    // Each warp's 64 × 16 results through shared memory (the fragment layout is opaque), then the valid ones out.
    float* mine = reinterpret_cast<float*>(smem) + warp * kMaxSkinnyRows * kSkLdF;
#pragma unroll
    for (int m = 0; m < kMaxSkinnyRows / 16; ++m) {
        if (m < m_tiles) wmma::store_matrix_sync(mine + m * 16 * kSkLdF, acc[m], kSkLdF, wmma::mem_row_major);
    }
    __syncwarp();
    float* out = gridDim.y == 1 ? a.y : a.y + static_cast<size_t>(blockIdx.y) * a.T * a.N;
    const int ld = gridDim.y == 1 ? a.ldy : a.N;
    for (int i = threadIdx.x % 32; i < a.T * 16; i += 32) {
        const int t = i / 16, c = i % 16, n = n0 + warp * 16 + c;
        if (n < a.N) out[static_cast<size_t>(t) * ld + n] = mine[t * kSkLdF + c];
    }
}

/** y[t][n] = Σ_s part[s][t][n], s ascending. */
__global__ void skinny_reduce_kernel(const float* part, int S, int T, int N, float* y, int ldy) {
    const size_t total = static_cast<size_t>(T) * N;
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        float v = part[i];
        for (int s = 1; s < S; ++s) v += part[static_cast<size_t>(s) * total + i];
        y[(i / N) * ldy + i % N] = v;
    }
}

}  // namespace

SkinnyPlan skinny_gemm_plan(int N, int K) {
    const int tiles = (N + kSkCols - 1) / kSkCols;
    int splits = 1;
    // Enough blocks for four per SM of an H100/H200 (132 SMs; a block keeps one 8 KB weight chunk in flight, and
    // one per SM leaves the memory system mostly idle: in_proj read at half the bandwidth), each slice at least 256 k
    // (4 chunks); the LM head is wide enough without slices, hence without the second kernel.
    while (tiles * splits < 4 * 132 && K / (2 * splits) >= 256) splits *= 2;
    const int chunks = (K + kSkChunk - 1) / kSkChunk;
    const int slice = (chunks + splits - 1) / splits * kSkChunk;
    return SkinnyPlan{(K + slice - 1) / slice, slice};
}

bool skinny_gemm_fits(int K, int ldx, const void* w, const void* x) {
    auto aligned = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; };
    return K % kSkVec == 0 && ldx % kSkVec == 0 && aligned(w) && aligned(x);
}

void launch_skinny_gemm(const void* w, int N, int K, const void* x, int ldx, int T, float* y, int ldy, float* workspace,
                        cudaStream_t stream) {
    if (T <= 0 || N <= 0) return;
    if (T > kMaxSkinnyRows) throw std::logic_error("skinny GEMM: more than 64 rows");
    const SkinnyPlan plan = skinny_gemm_plan(N, K);
    const dim3 grid((N + kSkCols - 1) / kSkCols, plan.splits);
    const SkinnyArgs a{static_cast<const __nv_bfloat16*>(w), N, K, static_cast<const __nv_bfloat16*>(x), ldx, T,
                       plan.splits == 1 ? y : workspace, ldy, plan.k_slice};
    skinny_gemm_kernel<<<grid, kSkThreads, 0, stream>>>(a);
    check_launch("skinny_gemm_kernel");
    if (plan.splits > 1) {
        const size_t total = static_cast<size_t>(T) * N;
        const unsigned blocks = static_cast<unsigned>(std::min<size_t>((total + 255) / 256, 4096));
        skinny_reduce_kernel<<<blocks, 256, 0, stream>>>(workspace, plan.splits, T, N, y, ldy);
        check_launch("skinny_reduce_kernel");
    }
}

}  // namespace mamba::cuda
