// mlp.cc — the gate of a gated MLP:
//
//   [y | gate] = x · fc1ᵀ            (gemm, cpu_backend.cc)
//   h = y · SiLU(gate)               (here; SiLU(g) = g / (1 + e^−g), vec::silu8)
//   out = h · fc2ᵀ                   (gemm, added to the residual stream)
#include "cpu/mlp.h"

#include <immintrin.h>

#include <algorithm>

#include "cpu/vec.h"

namespace mamba {

void silu_gate(const float* x, int64_t ldx, int64_t T, int64_t n, float* y, int64_t ldy, ThreadPool& pool) {
    pool.parallel_for(T, 4, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) {
            const float* v = x + t * ldx;  // value half
            const float* g = v + n;        // gate half
            float* o = y + t * ldy;
            for (int64_t i = 0; i < n; i += 8) {  // o = v · SiLU(g), 8 at a time, the tail masked
                const int w = int(std::min<int64_t>(8, n - i));
                const __m256i m = vec::tail_mask(w);
                const __m256 r = _mm256_mul_ps(_mm256_maskload_ps(v + i, m), vec::silu8(_mm256_maskload_ps(g + i, m)));
                _mm256_maskstore_ps(o + i, m, r);
            }
        }
    });
}

}  // namespace mamba
