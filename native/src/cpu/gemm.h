// gemm.h — Y = X·Wᵀ (+ bias), the only matrix product the CPU backend uses.
#pragma once
#include <cstdint>

#include "cpu/thread_pool.h"
#include "weights.h"

namespace mamba {

// Y[T×N] = X[T×K] · W[N×K]ᵀ + bias[N]   (bias may be null; W is f32 or bf16, row-major, N = W.rows, K = W.cols)
// X rows are `ldx` floats apart, Y rows `ldy` floats apart.
//
// Determinism: every Y[t][n] is Σ_k X[t][k]·W[n][k] computed the same way on every path — eight lane
// partial sums (lane j takes k ≡ j mod 8, in increasing k, one FMA each, zero-padded tail), reduced by
// vec::hsum, then + bias. So a row's output never depends on T, its position, tile edges or threads.
void gemm(const float* X, int64_t ldx, int64_t T, const Tensor& W, const float* bias, float* Y, int64_t ldy,
          ThreadPool& pool);

}  // namespace mamba
