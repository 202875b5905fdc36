// gemm.cuh — Y[T×N] = X[T×K] · W[N×K]ᵀ through cuBLASLt, with one fixed algorithm per weight shape.
//
// Batch invariance: cuBLAS normally picks a kernel per problem size, and different kernels may sum
// over K in different orders, so a row's result could depend on how many rows are packed with it.
// We pick ONE algorithm per (N, K, ldx, ldy, dtype) — without split-K and without a reduction
// scheme — and use it for every T, so each output element is always the same K-ordered sum.
#pragma once
#include <cublasLt.h>

#include <map>
#include <tuple>

#include "device_buffer.cuh"

namespace mamba::cuda {

/** Element type of weights and GEMM inputs: fp32 (exact, no TF32) or bf16 (tensor cores, fp32 accumulate). */
enum class GemmType { F32, BF16 };

class Gemm {
public:
    Gemm(GemmType type, cudaStream_t stream);
    Gemm(const Gemm&) = delete;
    Gemm& operator=(const Gemm&) = delete;
    ~Gemm();

    /**
     * y[t*ldy + n] = sum_k x[t*ldx + k] * w[n*K + k] for t < T, n < N (row-major everywhere).
     * `w` and `x` hold GemmType elements; `y` is fp32. T may be any positive count.
     */
    void run(const void* w /* [N×K] */, int N, int K, const void* x /* [T×ldx] */, int ldx, int T,
             float* y /* [T×ldy] */, int ldy);

    GemmType type() const { return type_; }

private:
    struct Plan {
        cublasLtMatmulDesc_t desc = nullptr;
        cublasLtMatrixLayout_t a = nullptr;  // weight as K×N column-major, op T
        cublasLtMatmulAlgo_t algo{};
    };
    using Key = std::tuple<int, int, int, int>;  // N, K, ldx, ldy
    Plan& plan_for(int N, int K, int ldx, int ldy);

    GemmType type_;
    cudaStream_t stream_;
    cublasLtHandle_t handle_ = nullptr;
    DeviceBuffer workspace_;
    std::map<Key, Plan> plans_;
};

}  // namespace mamba::cuda
