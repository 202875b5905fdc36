// gemm_avx512.h — the AVX-512F GEMM kernel (gemm_avx512.cc, the only file compiled with -mavx512f).
//
// Called by gemm.cc only after CPUID says the CPU has AVX-512F. The interface is raw pointers so that
// no inline or template code (std::, vec.h) is instantiated in the AVX-512 translation unit and then
// picked by the linker for AVX2-only callers.
#pragma once
#include <cstdint>

namespace mamba {

// Weight rows per panel of the packed GEMM weight layout (GemmWeight in gemm.h describes it).
constexpr int kWeightPanel = 4;

// Blocking sizes from this core's caches (sysconf; defined in gemm.cc, read once), for both kernels:
// bytes of X per row block, 3/4 of L2 (each block is one more pass over W, so blocks are as large as L2
// allows: 768 KiB on a 1 MiB L2, 1.5 MiB on a 2 MiB one); 768 KiB where the size is unknown.
int64_t gemm_x_block_bytes();
// Chunks of K per slice of a weight tile in the AVX-512 kernel: 8 rows × KC chunks of f32 fill half of L1d
// (96 on a 48 KiB L1d); 64 where the size is unknown.
int64_t gemm_k_slice_chunks();

}  // namespace mamba

namespace mamba::avx512 {

// Floats of scratch (packed X, lane sums between K slices) the kernel needs for one call with inner dimension K
// (64-byte aligned).
int64_t scratch_floats(int64_t K);

// Y[t][n] = Σ_k X[t][k]·W[n][k] (+ bias[n]) for all T rows and columns n ∈ [n0, n1); W is [N × K] f32 or
// bf16 (`bf16`) in the panel layout of gemm.h's GemmWeight, `panel_bytes` bytes per panel of kWeightPanel
// rows. Bit-identical to the AVX2 kernel: each output keeps the same eight lane
// partial sums (lane j takes k ≡ j mod 8, increasing k, one FMA each, zero-padded tail), reduced in
// vec::hsum's order. A zmm register holds two X rows' eight lanes against one weight row.
// `add_to`: Y[t][n] = result + Y[t][n] (one rounding, as a separate residual pass) instead of Y[t][n] = result.
void gemm_range(const float* X, int64_t ldx, int64_t T, const void* W, int64_t panel_bytes, bool bf16, int64_t K,
                const float* bias, float* Y, int64_t ldy, int64_t n0, int64_t n1, bool add_to, float* scratch);

}  // namespace mamba::avx512
