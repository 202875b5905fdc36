// gemm.h — Y = X·Wᵀ (+ bias), the only matrix product the CPU backend uses.
#pragma once
#include <cstdint>

#include "cpu/thread_pool.h"
#include "weights.h"

namespace mamba {

// Which kernel family runs the GEMM. Both give bit-identical results (see gemm()); they differ in speed only.
enum class GemmIsa { Avx2, Avx512 };

// The ISA for a new model: the environment variable MAMBA_EVAL_ISA ("auto" or unset, "avx2", "avx512"),
// where auto takes AVX-512F when CPUID reports it. Throws std::runtime_error (one line naming the variable)
// for an unknown value or for "avx512" on a CPU without AVX-512F.
GemmIsa choose_gemm_isa();

// "avx512f+avx2+fma" or "avx2+fma".
const char* gemm_isa_name(GemmIsa isa);

// How gemm() stores an output: Y = result (Store), or Y = result + Y (AddTo: the residual stream, added
// in the same single rounding step as a separate `h = out + h` pass would, so the bits are the same).
enum class GemmOut { Store, AddTo };

// Y[T×N] = X[T×K] · W[N×K]ᵀ + bias[N]   (bias may be null; W is f32 or bf16, row-major, N = W.rows, K = W.cols)
// X rows are `ldx` floats apart, Y rows `ldy` floats apart.
//
// Determinism: every Y[t][n] is Σ_k X[t][k]·W[n][k] computed the same way on every path — eight lane
// partial sums (lane j takes k ≡ j mod 8, in increasing k, one FMA each, zero-padded tail), reduced by
// vec::hsum, then + bias. So a row's output never depends on T, its position, tile edges, threads or `isa`.
void gemm(const float* X, int64_t ldx, int64_t T, const Tensor& W, const float* bias, float* Y, int64_t ldy,
          ThreadPool& pool, GemmIsa isa = GemmIsa::Avx2, GemmOut out = GemmOut::Store);

// The same product for output columns [n0, n1) only (0 ≤ n0 ≤ n1 ≤ W.rows), on the calling thread. For fused
// per-thread regions (a thread computes its channels' projection and then runs its own channel-wise op on
// them without a barrier); every output is bit-identical to gemm()'s.
void gemm_cols(const float* X, int64_t ldx, int64_t T, const Tensor& W, const float* bias, float* Y, int64_t ldy,
               int64_t n0, int64_t n1, GemmIsa isa, GemmOut out = GemmOut::Store);

}  // namespace mamba
