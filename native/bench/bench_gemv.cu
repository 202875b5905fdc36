// bench_gemv.cu — the decode projection y[r, j] = Σ_k x[r, k]·w[j, k] at the decode shapes of mamba-2.8b (and
// mamba2-2.7b's in_proj) for 1, 8 and 64 rows: a bandwidth-bound GEMV kept for comparison (step()'s opt-in projection
// earlier: faster at 1 sequence, slower at 64) against the product's decode GEMM (native/cuda/skinny_gemm.cu,
// bf16). Reports the weight-read bandwidth, whether a row's result is bit-identical at every row count, and how far the
// two kernels' results are apart.
//   cmake --build native/build --target bench_gemv   (a CUDA build: MAMBA_EVAL_CUDA=ON)
//   native/build/bench_gemv [bf16|f32]
//
// The kernel streams the weights with 16-byte loads: a warp takes 4 output columns j (1 when N is small) and a
// block 8 input rows, so each x load feeds 4 columns and each weight load 8 rows; groups of 8 rows are separate
// blocks. Reduction order of every output (fixed, independent of the row count, of the row's position and of the
// grid): the K elements are cut into vectors of V = 16 / sizeof(W) (8 bf16 or 4 fp32); lane l takes vectors
// l, l+32, l+64, … in increasing order and accumulates their elements one by one with fma, in increasing k; then
// the 32 lane sums are combined by the butterfly xor 16, 8, 4, 2, 1. The scalar path (unaligned rows or K not a
// multiple of V) walks the same elements in the same order.
#include <cuda_bf16.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.cuh"

namespace {

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        std::fprintf(stderr, "bench_gemv: %s: %s\n", what, cudaGetErrorString(status));
        std::exit(1);
    }
}

constexpr int kGemvThreads = 256;   // 8 warps
constexpr int kRowsPerPass = 8;     // input rows per block (blockIdx.y picks the group of rows)

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T, int V>
__device__ __forceinline__ void load_vec(const T* p, bool vec, int k, int K, float (&out)[V]) {
    if (vec) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p + k));
        const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int i = 0; i < V; ++i) out[i] = to_float(e[i]);
    } else {
#pragma unroll
        for (int i = 0; i < V; ++i) out[i] = k + i < K ? to_float(p[k + i]) : 0.0f;
    }
}

// OUTS = weight rows a warp streams together (each x load feeds all of them): 4 for wide outputs, 1 for narrow
// ones so that they still spread over many warps. Either way each output's sum is the same.
template <typename T, int OUTS>
__global__ void __launch_bounds__(kGemvThreads)
    gemv_kernel(const T* __restrict__ w, int N, int K, const T* __restrict__ x, int ldx, int rows, float* __restrict__ y,
                int ldy, bool vec) {
    constexpr int V = 16 / sizeof(T);
    const int lane = threadIdx.x % 32;
    constexpr int kOutsPerWarp = OUTS;
    const int j0 = (blockIdx.x * (kGemvThreads / 32) + threadIdx.x / 32) * kOutsPerWarp;
    if (j0 >= N) return;  // whole warps only: j0 is uniform across a warp
    const T* wj[kOutsPerWarp];
#pragma unroll
    for (int o = 0; o < kOutsPerWarp; ++o) wj[o] = w + static_cast<size_t>(min(j0 + o, N - 1)) * K;  // clamp: rows past N are computed, never stored
    const int n_vec = (K + V - 1) / V;
    {
        const int r0 = blockIdx.y * kRowsPerPass;
        const int nr = min(kRowsPerPass, rows - r0);
        float acc[kOutsPerWarp][kRowsPerPass] = {};
#pragma unroll 2
        for (int v = lane; v < n_vec; v += 32) {
            float wv[kOutsPerWarp][V];
#pragma unroll
            for (int o = 0; o < kOutsPerWarp; ++o) load_vec<T, V>(wj[o], vec, v * V, K, wv[o]);
#pragma unroll
            for (int r = 0; r < kRowsPerPass; ++r) {
                if (r >= nr) break;
                float xv[V];
                load_vec<T, V>(x + static_cast<size_t>(r0 + r) * ldx, vec, v * V, K, xv);
#pragma unroll
                for (int o = 0; o < kOutsPerWarp; ++o) {
#pragma unroll
                    for (int i = 0; i < V; ++i) acc[o][r] = fmaf(wv[o][i], xv[i], acc[o][r]);
                }
            }
        }
#pragma unroll
        for (int o = 0; o < kOutsPerWarp; ++o) {
#pragma unroll
            for (int r = 0; r < kRowsPerPass; ++r) {
                float s = acc[o][r];
                for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
                if (lane == 0 && r < nr && j0 + o < N) y[static_cast<size_t>(r0 + r) * ldy + j0 + o] = s;
            }
        }
    }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

void launch_gemv(bool bf16, const void* w, int N, int K, const void* x, int ldx, int rows, float* y, int ldy,
                 cudaStream_t stream) {
    if (rows <= 0 || N <= 0) return;
    const int V = bf16 ? 8 : 4;
    const bool vec = K % V == 0 && ldx % V == 0 && aligned16(w) && aligned16(x);
    // 4 columns per warp only when there are enough rows to reuse each x load and enough columns to keep the GPU
    // busy; at 1..7 rows a warp per column gives more loads in flight. The sums are the same either way.
    const int outs = (rows >= 8 && N >= 8192) ? 4 : 1;
    const int per_block = kGemvThreads / 32 * outs;
    const dim3 grid((N + per_block - 1) / per_block, (rows + kRowsPerPass - 1) / kRowsPerPass);
    auto run = [&](auto kernel, auto w_typed, auto x_typed) {
        kernel<<<grid, kGemvThreads, 0, stream>>>(w_typed, N, K, x_typed, ldx, rows, y, ldy, vec);
    };
    if (bf16) {
        const auto* wb = static_cast<const __nv_bfloat16*>(w);
        const auto* xb = static_cast<const __nv_bfloat16*>(x);
        if (outs == 4) run(gemv_kernel<__nv_bfloat16, 4>, wb, xb); else run(gemv_kernel<__nv_bfloat16, 1>, wb, xb);
    } else {
        const auto* wf = static_cast<const float*>(w);
        const auto* xf = static_cast<const float*>(x);
        if (outs == 4) run(gemv_kernel<float, 4>, wf, xf); else run(gemv_kernel<float, 1>, wf, xf);
    }
    check(cudaGetLastError(), "gemv_kernel");
}

/** One projection shape of a decode step: y [rows×N] = x [rows×K] · w [N×K]ᵀ. */
struct Shape {
    const char* name;
    int N, K;
};

}  // namespace

int main(int argc, char** argv) {
    const bool bf16 = argc < 2 || std::strcmp(argv[1], "f32") != 0;
    const size_t elem = bf16 ? 2 : 4;
    // mamba-2.8b: d_model 2560, d_inner 5120, dt_rank 160, d_state 16, vocab 50280; mamba2-2.7b's in_proj.
    const Shape shapes[] = {{"in_proj", 10240, 2560}, {"x_proj", 192, 5120}, {"dt_proj", 5120, 160},
                            {"out_proj", 2560, 5120}, {"lm_head", 50280, 2560}, {"m2in_proj", 10576, 2560}};
    const int row_counts[] = {1, 8, 64};
    constexpr int kMaxRows = 64, kReps = 50;
    cudaStream_t stream = nullptr;
    check(cudaStreamCreate(&stream), "cudaStreamCreate");
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    check(cudaEventCreate(&e0), "cudaEventCreate");
    check(cudaEventCreate(&e1), "cudaEventCreate");
    std::printf("bench_gemv (%s): kernel shape N K | rows: us per call, GB/s of weights | row 0 bit-identical at every row "
                "count | max rel difference from the GEMV at 64 rows\n", bf16 ? "bf16" : "f32");
    for (const Shape& sh : shapes) {
        const size_t w_bytes = size_t(sh.N) * sh.K * elem, x_bytes = size_t(kMaxRows) * sh.K * elem;
        std::vector<unsigned char> host_w(w_bytes), host_x(x_bytes);
        uint32_t r = 12345;
        auto fill = [&](std::vector<unsigned char>& v) {  // small random values, exact in either type
            for (size_t i = 0; i < v.size(); i += elem) {
                r = r * 1664525u + 1013904223u;
                const float f = float(int(r >> 20) - 2048) / 4096.0f;
                if (bf16) {
                    uint32_t bits;
                    std::memcpy(&bits, &f, 4);
                    const uint16_t h = uint16_t(bits >> 16);
                    std::memcpy(&v[i], &h, 2);
                } else {
                    std::memcpy(&v[i], &f, 4);
                }
            }
        };
        fill(host_w);
        fill(host_x);
        void *w = nullptr, *x = nullptr;
        float *y = nullptr, *ws = nullptr;
        const mamba::cuda::SkinnyPlan plan = mamba::cuda::skinny_gemm_plan(sh.N, sh.K);
        check(cudaMalloc(&w, w_bytes), "cudaMalloc");
        check(cudaMalloc(&x, x_bytes), "cudaMalloc");
        check(cudaMalloc(&y, size_t(kMaxRows) * sh.N * 4), "cudaMalloc");
        check(cudaMalloc(&ws, size_t(plan.splits) * kMaxRows * sh.N * 4), "cudaMalloc");
        check(cudaMemcpy(w, host_w.data(), w_bytes, cudaMemcpyHostToDevice), "upload");
        check(cudaMemcpy(x, host_x.data(), x_bytes, cudaMemcpyHostToDevice), "upload");
        std::vector<float> gemv64(size_t(kMaxRows) * sh.N);
        // The GEMV, then (bf16) the product's decode GEMM, skinny_gemm.cu.
        for (int kernel = 0; kernel < (bf16 ? 2 : 1); ++kernel) {
            auto launch = [&](int rows) {
                if (kernel == 0) {
                    launch_gemv(bf16, w, sh.N, sh.K, x, sh.K, rows, y, sh.N, stream);
                } else {
                    mamba::cuda::launch_skinny_gemm(w, sh.N, sh.K, x, sh.K, rows, y, sh.N, ws, stream);
                }
            };
            std::printf("%-6s %-9s %6d %5d |", kernel == 0 ? "gemv" : "skinny", sh.name, sh.N, sh.K);
            std::vector<float> row0(sh.N), first(sh.N);
            bool identical = true;
            for (int rows : row_counts) {
                launch(rows);  // warm-up
                check(cudaEventRecord(e0, stream), "event");
                for (int i = 0; i < kReps; ++i) launch(rows);
                check(cudaEventRecord(e1, stream), "event");
                check(cudaEventSynchronize(e1), "sync");
                float ms = 0.0f;
                check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
                const double us = 1e3 * ms / kReps;
                std::printf(" %d: %.1f us, %.0f GB/s |", rows, us, double(w_bytes) / (us * 1e3));
                check(cudaMemcpy(row0.data(), y, size_t(sh.N) * 4, cudaMemcpyDeviceToHost), "download");
                if (rows == row_counts[0]) first = row0;
                identical = identical && std::memcmp(first.data(), row0.data(), size_t(sh.N) * 4) == 0;
            }
            std::vector<float> all(size_t(kMaxRows) * sh.N);
            check(cudaMemcpy(all.data(), y, all.size() * 4, cudaMemcpyDeviceToHost), "download");
            if (kernel == 0) gemv64 = all;
            double worst = 0.0;
            for (size_t i = 0; i < all.size(); ++i) {
                worst = std::max(worst, std::fabs(double(all[i]) - gemv64[i]) / std::max(1e-3, std::fabs(double(gemv64[i]))));
            }
            std::printf(" %s | %.2e\n", identical ? "yes" : "NO", worst);
        }
        cudaFree(w);
        cudaFree(x);
        cudaFree(y);
        cudaFree(ws);
    }
    return 0;
}
