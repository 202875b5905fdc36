// gemm.h — Y = X·Wᵀ (+ bias), the only matrix product the CPU backend uses.
#pragma once
#include <cstdint>

#include "cpu/gemm_avx512.h"
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

// A GEMM weight W[N×K] (f32 or bf16) in the panel layout every kernel reads. Rows go in panels of kPanel
// rows; a panel holds, chunk after chunk (8 elements of k, K zero-padded to `chunks`·8), that chunk of each of
// its rows in turn: element (r, k) sits at panel r / kPanel, chunk k / 8, row r % kPanel, lane k % 8. Rows past
// N in the last panel are zero. So a tile of kPanel rows reads one sequential stream (128 bytes per chunk for
// f32), where row-major rows are kPanel short streams K apart that the hardware prefetcher must pick up anew
// for every tile (measured: a T = 1 GEMV streams at 65–75% of a plain read from row-major
// rows and at 87–98% from panels).
struct GemmWeight {
    static constexpr int kPanel = kWeightPanel;
    DType dtype = DType::F32;  // F32 or BF16
    int64_t rows = 0, cols = 0, chunks = 0;
    const uint8_t* data = nullptr;  // 64-byte aligned, packed_bytes(rows, cols, dtype) bytes

    int64_t elem_bytes() const { return dtype == DType::F32 ? 4 : 2; }
    int64_t panel_bytes() const { return chunks * kPanel * 8 * elem_bytes(); }
    // Address of chunk 0 of row r (chunk c is c · kPanel · 8 elements further on).
    const uint8_t* row(int64_t r) const {
        return data + (r / kPanel) * panel_bytes() + (r % kPanel) * 8 * elem_bytes();
    }
};

// Bytes of W[rows × cols] of `dtype` in the panel layout (a multiple of 64).
size_t packed_bytes(int64_t rows, int64_t cols, DType dtype);

// Writes rows [r0, r1) of the row-major `src` into the panel layout at `dst` (packed_bytes(src.rows, src.cols,
// src.dtype) bytes, 64-byte aligned, shared by all calls for the same tensor) and returns the packed view. A
// tensor can be packed in row slices so that its source pages can be released slice by slice.
GemmWeight pack_rows(const Tensor& src, uint8_t* dst, int64_t r0, int64_t r1);

// Row r of a packed weight as K floats (bf16 widened exactly): the embedding lookup of a tied table.
void packed_row_f32(const GemmWeight& W, int64_t r, float* out);

// Y[T×N] = X[T×K] · W[N×K]ᵀ + bias[N]   (bias may be null; W is f32 or bf16, N = W.rows, K = W.cols)
// X rows are `ldx` floats apart, Y rows `ldy` floats apart.
//
// Determinism: every Y[t][n] is Σ_k X[t][k]·W[n][k] computed the same way on every path — eight lane
// partial sums (lane j takes k ≡ j mod 8, in increasing k, one FMA each, zero-padded tail), reduced by
// vec::hsum, then + bias. So a row's output never depends on T, its position, tile edges, threads or `isa`.
void gemm(const float* X, int64_t ldx, int64_t T, const GemmWeight& W, const float* bias, float* Y, int64_t ldy,
          ThreadPool& pool, GemmIsa isa = GemmIsa::Avx2, GemmOut out = GemmOut::Store);

// The same product for output columns [n0, n1) only (0 ≤ n0 ≤ n1 ≤ W.rows), on the calling thread. For fused
// per-thread regions (a thread computes its channels' projection and then runs its own channel-wise op on
// them without a barrier); every output is bit-identical to gemm()'s.
void gemm_cols(const float* X, int64_t ldx, int64_t T, const GemmWeight& W, const float* bias, float* Y, int64_t ldy,
               int64_t n0, int64_t n1, GemmIsa isa, GemmOut out = GemmOut::Store);

}  // namespace mamba
