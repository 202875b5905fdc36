// gemm_avx512.cc — AVX-512F micro-kernels for gemm() (see gemm_avx512.h). Compiled with -mavx512f.
//
//   Y[t][n] = Σ_k X[t][k]·W[n][k] (+ bias[n]) (+ Y[t][n] for the residual), each sum as 8 lane partial sums
//   (lane l: k ≡ l mod 8, increasing k) reduced in vec::hsum's order.
//
// X rows are packed in pairs: pair p, chunk c (8 floats of k) is one zmm = [row 2p k∈8c..8c+8 | row 2p+1 same],
// zero-padded in k to a multiple of 8 and in rows to an even count. Each weight row's 8-float chunk is
// broadcast to both halves of a zmm, so one FMA advances the lane partial sums of two outputs exactly as
// the AVX2 kernel advances one. A tile is MP pairs × NW weight rows: MP·NW accumulators (3 × 8 = 24 of 32 zmm);
// its NW rows are two panels of the packed weight layout (gemm.h), i.e. two sequential streams. For K above
// gemm_k_slice_chunks() chunks a tile runs in K slices, its lane sums kept in scratch between slices (the same
// additions in the same order), so that a slice of its weights stays in L1. A whole tile's 48 sums are reduced
// together with shuffles (hsum8x8) and stored as rows of 8 columns.
//
// Nothing from the standard library or vec.h is used here: every helper is internal to this file, so no
// AVX-512 code can leak into AVX2 callers through the linker merging inline functions.
#include "cpu/gemm_avx512.h"

#include <immintrin.h>

namespace mamba::avx512 {

namespace {

// Tile shape and block size can be overridden at compile time for experiments.
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

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t chunks(int64_t K) { return (K + 7) / 8; }

// Rows of X per block: a multiple of 2·MP, at least 2·MP. Packed X stays in L2 while W tiles stream past
// (gemm_x_block_bytes).
inline int64_t block_rows(int64_t K) {
    const int64_t r = gemm_x_block_bytes() / (chunks(K) * 32) / (2 * MP) * (2 * MP);
    return r < 2 * MP ? 2 * MP : r;
}

// The same reduction order as vec::hsum: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// hsum8 of both 256-bit halves of 8 accumulators a[0..7] at once, each sum in hsum8's order (the same additions,
// operands at most swapped): returns [hsum8(lo a[0]), …, hsum8(lo a[7]) | hsum8(hi a[0]), …, hsum8(hi a[7])].
inline __m512 hsum8x8(const __m512* a) {
    __m512 s[4];
    for (int q = 0; q < 4; q++) {  // l_k + l_{k+4}: quarters [a.q0 + a.q1, a.q2 + a.q3] of a[2q], then of a[2q + 1]
        const __m512 lo = _mm512_shuffle_f32x4(a[2 * q], a[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 hi = _mm512_shuffle_f32x4(a[2 * q], a[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1));
        s[q] = _mm512_add_ps(lo, hi);
    }
    __m512 t[2];
    for (int q = 0; q < 2; q++)  // (l0+l4) + (l2+l6), (l1+l5) + (l3+l7) in every quarter, two sums per source quarter
        t[q] = _mm512_add_ps(_mm512_shuffle_ps(s[2 * q], s[2 * q + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(s[2 * q], s[2 * q + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // the final pair sums: quarter 0 holds columns 0 2 4 6 of row 0, quarter 1 of row 1, quarters 2, 3 columns 1 3 5 7
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15), r);
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
void tile(const float* P, int64_t C, const uint8_t* const* wr, int rows, const float* bias, float* Y, int64_t ldy,
          int64_t c0, int64_t c1, float* accs) {
    constexpr int64_t kChunk = kWeightPanel * 8 * (BF16 ? 2 : 4);
    const uint8_t* w[N];
    for (int j = 0; j < N; j++) w[j] = wr[j];
    __m512 acc[M][N];
    for (int i = 0; i < M; i++)  // chunk 0 starts from 0; a later K slice from the sums the previous one saved
        for (int j = 0; j < N; j++) acc[i][j] = c0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(accs + (i * N + j) * 16);
    for (int64_t c = c0, off = c0 * kChunk; c < c1; c++, off += kChunk) {  // the last chunk's padding is zero in X and W
        __m512 x[M];
        for (int i = 0; i < M; i++) x[i] = _mm512_load_ps(P + (i * C + c) * 16);
        for (int j = 0; j < N; j++) {
            const __m512 wv = load_w2<BF16>(w[j] + off);
            for (int i = 0; i < M; i++) acc[i][j] = _mm512_fmadd_ps(x[i], wv, acc[i][j]);
        }
    }
    if (c1 < C) {  // not the last K slice: keep the lane sums for the next one
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) _mm512_store_ps(accs + (i * N + j) * 16, acc[i][j]);
        return;
    }
    if constexpr (N == 8) {
        if (rows == 2 * M) {  // a whole tile: 8 columns of each row in one store
            for (int i = 0; i < M; i++) {
                const __m512 v = hsum8x8(acc[i]);
                __m256 y0 = _mm512_castps512_ps256(v);
                __m256 y1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
                if (bias) {
                    y0 = _mm256_add_ps(y0, _mm256_loadu_ps(bias));
                    y1 = _mm256_add_ps(y1, _mm256_loadu_ps(bias));
                }
                float* r0 = Y + (2 * i) * ldy;
                float* r1 = r0 + ldy;
                if constexpr (ADD) {
                    y0 = _mm256_add_ps(y0, _mm256_loadu_ps(r0));
                    y1 = _mm256_add_ps(y1, _mm256_loadu_ps(r1));
                }
                _mm256_storeu_ps(r0, y0);
                _mm256_storeu_ps(r1, y1);
            }
            return;
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

using TileFn = void (*)(const float*, int64_t, const uint8_t* const*, int, const float*, float*, int64_t, int64_t,
                        int64_t, float*);

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

// Up to two address ranges (one per panel) of a weight tile's K slice, for prefetching.
struct Span {
    const char* p[2];
    int64_t bytes[2];
};

template <bool BF16, bool ADD>
void range(const float* X, int64_t ldx, int64_t T, const uint8_t* W, int64_t panel_bytes, int64_t K,
           const float* bias, float* Y, int64_t ldy, int64_t n0, int64_t n1, float* P) {
    const int64_t C = chunks(K), cap = block_rows(K), es = BF16 ? 2 : 4;
    constexpr int64_t kChunk = kWeightPanel * 8 * (BF16 ? 2 : 4);  // bytes of one chunk of a panel
    // K slices of at most KC chunks, as even as whole chunks allow: a tile's slice of weights stays in L1 while the
    // block's X pairs stream past it (8 rows × 96 chunks of f32 = 24 KiB on a 48 KiB L1d; a whole 8-row tile at
    // K = 1536 would fill L1 and be fetched again from L2 for every pair group).
    const int64_t KC = gemm_k_slice_chunks();
    const int64_t slices = (C + KC - 1) / KC;
    // Equal blocks (rounded up to whole tiles) instead of full blocks and a thin remainder.
    const int64_t nblocks = (T + cap - 1) / cap;
    const int64_t tb = ((T + nblocks - 1) / nblocks + 2 * MP - 1) / (2 * MP) * (2 * MP);
    float* accs = P + cap * C * 8;  // the lane sums of every pair group of the block between K slices
    auto tile_at = [&](int64_t n) {  // address of chunk 0 of weight row n
        return W + n / kWeightPanel * panel_bytes + n % kWeightPanel * 8 * es;
    };
    auto span = [&](int64_t n, int64_t w, int64_t c0, int64_t c1) {  // tile rows [n, n + w), chunks [c0, c1)
        Span sp{{nullptr, nullptr}, {0, 0}};
        const int64_t first = n / kWeightPanel, last = (n + w - 1) / kWeightPanel;
        for (int64_t q = first; q <= last; q++) {
            sp.p[q - first] = reinterpret_cast<const char*>(W + q * panel_bytes + c0 * kChunk);
            sp.bytes[q - first] = (c1 - c0) * kChunk;
        }
        return sp;
    };
    for (int64_t t0 = 0; t0 < T; t0 += tb) {
        const int64_t rows = min64(tb, T - t0), pairs = (rows + 1) / 2;
        const int64_t groups = (pairs + MP - 1) / MP;
        pack_pairs(X + t0 * ldx, ldx, rows, K, P);
        // Tiles end on panel boundaries (a range that starts inside a panel gets a shorter first tile).
        for (int64_t n = n0, w; n < n1; n += w) {
            w = min64(NW - n % kWeightPanel, n1 - n);
            const uint8_t* wr[NW];
            for (int j = 0; j < w; j++) wr[j] = tile_at(n + j);
            const int64_t nn = n + w, nw = min64(NW - nn % kWeightPanel, n1 - nn);
            for (int64_t sl = 0; sl < slices; sl++) {
                const int64_t c0 = C * sl / slices, c1 = C * (sl + 1) / slices;
                // The next K slice of this tile, or the next tile's first, is prefetched a part per tile call, so
                // the block's first sweep past it does not wait on memory.
                Span next{{nullptr, nullptr}, {0, 0}};
                if (sl + 1 < slices) next = span(n, w, c1, C * (sl + 2) / slices);
                else if (nn < n1) next = span(nn, nw, 0, C / slices);
                const int64_t lines0 = (next.bytes[0] + 63) / 64, lines = lines0 + (next.bytes[1] + 63) / 64;
                const int64_t per_call = (lines + groups - 1) / groups;
                for (int64_t p = 0, g = 0, line = 0; p < pairs; p += MP, g++) {
#if GEMM_PREFETCH
                    for (int64_t e = min64(line + per_call, lines); line < e; line++)
                        _mm_prefetch(line < lines0 ? next.p[0] + 64 * line : next.p[1] + 64 * (line - lines0),
                                     GEMM_PREFETCH_HINT);
#endif
                    const int m = int(min64(MP, pairs - p));
                    tile_fn<BF16, ADD>(m, int(w))(P + p * C * 16, C, wr, int(min64(2 * m, rows - 2 * p)),
                                                  bias ? bias + n : nullptr, Y + (t0 + 2 * p) * ldy + n, ldy, c0, c1,
                                                  accs + g * MP * NW * 16);
                }
            }
        }
    }
}

}  // namespace

// The packed pairs of a block (64-byte multiple: block_rows is a multiple of 6), then MP·NW lane sums per pair group.
int64_t scratch_floats(int64_t K) {
    return block_rows(K) * chunks(K) * 8 + (block_rows(K) / (2 * MP)) * MP * NW * 16;
}

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
