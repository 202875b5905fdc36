// wmma_tiles.cuh — a chain of 16×16×16 tensor-core products into one accumulator tile (ssd and attention kernels).
#pragma once
#include <mma.h>

namespace mamba::cuda {

using WmmaAccum = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;

/**
 * acc += Σ_k A_k·B_k for k = 0 … k_tiles−1 in increasing order, on tensor cores: A_k is the 16×16 tile at
 * a + k·a_step (leading dimension lda, stored as LayoutA), B_k the one at b + k·b_step (ldb, LayoutB). Each
 * element of acc depends only on its row of A and its column of B, never on the other rows.
 */
template <typename T, typename LayoutA, typename LayoutB>
__device__ __forceinline__ void mma_tiles(WmmaAccum& acc, const T* a, int lda, int a_step, const T* b, int ldb, int b_step,
                                          int k_tiles) {
#pragma unroll
    for (int k = 0; k < k_tiles; ++k) {
        nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, T, LayoutA> fa;
        nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, T, LayoutB> fb;
        nvcuda::wmma::load_matrix_sync(fa, a + k * a_step, lda);
        nvcuda::wmma::load_matrix_sync(fb, b + k * b_step, ldb);
        nvcuda::wmma::mma_sync(acc, fa, fb, acc);
    }
}

}  // namespace mamba::cuda
