// gemm_avx512.cc — AVX-512F micro-kernels for gemm() (see gemm_avx512.h). Compiled with -mavx512f.
//
// X rows are packed in pairs: pair p, chunk c (8 floats of k) is one zmm = [row 2p k∈8c..8c+8 | row 2p+1 same],
// zero-padded in k to a multiple of 8 and in rows to an even count. Each weight row's 8-float chunk is
// broadcast to both halves of a zmm, so one FMA advances the lane partial sums of two outputs exactly as
// the AVX2 kernel advances one. A tile is MP pairs × NW weight rows: MP·NW accumulators (3 × 8 = 24 of 32 zmm);
// its NW rows are two panels of the packed weight layout (gemm.h), i.e. two sequential streams.
//
// Nothing from the standard library or vec.h is used here: every helper is internal to this file, so no
// AVX-512 code can leak into AVX2 callers through the linker merging inline functions.
#include "cpu/gemm_avx512.h"

#include <immintrin.h>

namespace mamba::avx512 {

namespace {

// Tile shape and block size can be overridden at compile time for experiments (docs/perf-notes.md).
#ifndef GEMM_MP
#define GEMM_MP 3
#define GEMM_NW 8
#endif
#ifndef GEMM_PREFETCH
#define GEMM_PREFETCH 1
#endif
#ifndef GEMM_PREFETCH_HINT
#define GEMM_PREFETCH_HINT _MM_HINT_T0
#endif
constexpr int MP = GEMM_MP;  // X row pairs per tile
constexpr int NW = GEMM_NW;  // weight rows per tile
#ifndef GEMM_BLOCK_KIB
#define GEMM_BLOCK_KIB 768
#endif
// Packed X per block: stays in L2 (1 MiB per core on Zen 4/5) while W tiles stream past; every block is one
// more pass over W from memory, so blocks are as large as L2 allows.
constexpr int64_t kBlockBytes = GEMM_BLOCK_KIB * 1024;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t chunks(int64_t K) { return (K + 7) / 8; }

// Rows of X per block: a multiple of 2·MP, at least 2·MP.
inline int64_t block_rows(int64_t K) {
    const int64_t r = kBlockBytes / (chunks(K) * 32) / (2 * MP) * (2 * MP);
    return r < 2 * MP ? 2 * MP : r;
}

// The same reduction order as vec::hsum: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline __m256i tail_mask8(int n) {
    alignas(32) static const int32_t ramp[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ramp + 8 - n));
}

// One whole 8-element chunk of a weight row (panel layout: tails are zero-padded), as floats, in both 256-bit
// halves of a zmm.
template <bool BF16>
inline __m512 load_w2(const uint8_t* p) {
    if constexpr (BF16) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m512i w32 = _mm512_cvtepu16_epi32(_mm256_broadcastsi128_si256(h));
        // lanes 0..7 = bf16 0..7 and 8..15 = bf16 0..7 again (the 128-bit load repeated)
        return _mm512_castsi512_ps(_mm512_slli_epi32(w32, 16));
    } else {
        return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd(reinterpret_cast<const double*>(p))));
    }
}

// Rows [0, rows) of X (rows ≤ 2·pairs) → pairs × chunks(K) zmm-sized slots of `P`.
void pack_pairs(const float* X, int64_t ldx, int64_t rows, int64_t K, float* P) {
    const int64_t C = chunks(K), pairs = (rows + 1) / 2;
    for (int64_t p = 0; p < pairs; p++)
        for (int half = 0; half < 2; half++) {
            const int64_t r = 2 * p + half;
            float* dst = P + p * C * 16 + half * 8;
            if (r >= rows) {
                for (int64_t c = 0; c < C; c++) _mm256_store_ps(dst + c * 16, _mm256_setzero_ps());
                continue;
            }
            const float* src = X + r * ldx;
            for (int64_t c = 0; c < C; c++) {
                const int64_t k = c * 8;
                const int n = int(min64(8, K - k));
                _mm256_store_ps(dst + c * 16, n == 8 ? _mm256_loadu_ps(src + k) : _mm256_maskload_ps(src + k, tail_mask8(n)));
            }
        }
}

// Y rows [0, rows) (rows ≤ 2·M), columns [0, N) of the tile from packed pairs P (C chunks each); `wr[j]` is
// chunk 0 of weight row j (chunk c lies c · kWeightPanel · 8 elements further on).
template <int M, int N, bool BF16, bool ADD>
void tile(const float* P, int64_t C, const uint8_t* const* wr, int rows, const float* bias, float* Y, int64_t ldy) {
    constexpr int64_t kChunk = kWeightPanel * 8 * (BF16 ? 2 : 4);
    const uint8_t* w[N];
    for (int j = 0; j < N; j++) w[j] = wr[j];
    __m512 acc[M][N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) acc[i][j] = _mm512_setzero_ps();
    for (int64_t c = 0, off = 0; c < C; c++, off += kChunk) {  // the last chunk's padding is zero in X and W
        __m512 x[M];
        for (int i = 0; i < M; i++) x[i] = _mm512_load_ps(P + (i * C + c) * 16);
        for (int j = 0; j < N; j++) {
            const __m512 wv = load_w2<BF16>(w[j] + off);
            for (int i = 0; i < M; i++) acc[i][j] = _mm512_fmadd_ps(x[i], wv, acc[i][j]);
        }
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            const __m256 lo = _mm512_castps512_ps256(acc[i][j]);
            const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[i][j]), 1));
            const float b = bias ? bias[j] : 0.0f;
            if (2 * i < rows) {
                float y = bias ? hsum8(lo) + b : hsum8(lo);
                if constexpr (ADD) y += Y[(2 * i) * ldy + j];
                Y[(2 * i) * ldy + j] = y;
            }
            if (2 * i + 1 < rows) {
                float y = bias ? hsum8(hi) + b : hsum8(hi);
                if constexpr (ADD) y += Y[(2 * i + 1) * ldy + j];
                Y[(2 * i + 1) * ldy + j] = y;
            }
        }
}

using TileFn = void (*)(const float*, int64_t, const uint8_t* const*, int, const float*, float*, int64_t);

// The micro-kernel for an m×n tile (1 ≤ m ≤ MP, 1 ≤ n ≤ NW), found by compile-time recursion.
template <bool BF16, bool ADD, int M, int N>
TileFn pick_n(int n) {
    if constexpr (N == 0) return nullptr;
    else return n == N ? tile<M, N, BF16, ADD> : pick_n<BF16, ADD, M, N - 1>(n);
}
template <bool BF16, bool ADD, int M>
TileFn pick(int m, int n) {
    if constexpr (M == 0) return nullptr;
    else return m == M ? pick_n<BF16, ADD, M, NW>(n) : pick<BF16, ADD, M - 1>(m, n);
}
template <bool BF16, bool ADD>
TileFn tile_fn(int m, int n) { return pick<BF16, ADD, MP>(m, n); }

template <bool BF16, bool ADD>
void range(const float* X, int64_t ldx, int64_t T, const uint8_t* W, int64_t panel_bytes, int64_t K,
           const float* bias, float* Y, int64_t ldy, int64_t n0, int64_t n1, float* P) {
    const int64_t C = chunks(K), cap = block_rows(K), es = BF16 ? 2 : 4;
    // Equal blocks (rounded up to whole tiles) instead of full blocks and a thin remainder.
    const int64_t nblocks = (T + cap - 1) / cap;
    const int64_t tb = ((T + nblocks - 1) / nblocks + 2 * MP - 1) / (2 * MP) * (2 * MP);
    for (int64_t t0 = 0; t0 < T; t0 += tb) {
        const int64_t rows = min64(tb, T - t0), pairs = (rows + 1) / 2;
        pack_pairs(X + t0 * ldx, ldx, rows, K, P);
        // Tiles end on panel boundaries (a range that starts inside a panel gets a shorter first tile).
        for (int64_t n = n0, w; n < n1; n += w) {
            w = min64(NW - n % kWeightPanel, n1 - n);
            const uint8_t* wr[NW];
            for (int j = 0; j < w; j++)
                wr[j] = W + (n + j) / kWeightPanel * panel_bytes + (n + j) % kWeightPanel * 8 * es;
            // The next tile's weights (two panels, or what is left of the range) are prefetched a slice per
            // tile call, so the block's first sweep past them does not wait on memory.
            const int64_t nn = n + w, nw = min64(NW - nn % kWeightPanel, n1 - nn);
            const uint8_t* next = nn < n1 ? W + nn / kWeightPanel * panel_bytes + nn % kWeightPanel * 8 * es : nullptr;
            const int64_t next_lines = next ? (nw * C * 8 * es + 63) / 64 : 0;
            const int64_t groups = (pairs + MP - 1) / MP, per_call = (next_lines + groups - 1) / groups;
            for (int64_t p = 0, line = 0; p < pairs; p += MP) {
#if GEMM_PREFETCH
                for (int64_t e = min64(line + per_call, next_lines); line < e; line++)
                    _mm_prefetch(reinterpret_cast<const char*>(next) + 64 * line, GEMM_PREFETCH_HINT);
#endif
                const int m = int(min64(MP, pairs - p));
                tile_fn<BF16, ADD>(m, int(w))(P + p * C * 16, C, wr, int(min64(2 * m, rows - 2 * p)),
                                              bias ? bias + n : nullptr, Y + (t0 + 2 * p) * ldy + n, ldy);
            }
        }
    }
}

}  // namespace

int64_t scratch_floats(int64_t K) { return block_rows(K) * chunks(K) * 8; }

void gemm_range(const float* X, int64_t ldx, int64_t T, const void* W, int64_t panel_bytes, bool bf16, int64_t K,
                const float* bias, float* Y, int64_t ldy, int64_t n0, int64_t n1, bool add_to, float* scratch) {
    const uint8_t* Wb = static_cast<const uint8_t*>(W);
    const int64_t pb = panel_bytes;
    if (bf16) {
        if (add_to) range<true, true>(X, ldx, T, Wb, pb, K, bias, Y, ldy, n0, n1, scratch);
        else range<true, false>(X, ldx, T, Wb, pb, K, bias, Y, ldy, n0, n1, scratch);
    } else {
        if (add_to) range<false, true>(X, ldx, T, Wb, pb, K, bias, Y, ldy, n0, n1, scratch);
        else range<false, false>(X, ldx, T, Wb, pb, K, bias, Y, ldy, n0, n1, scratch);
    }
}

}  // namespace mamba::avx512
