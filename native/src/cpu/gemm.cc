// gemm.cc — cache-blocked, register-tiled AVX2/FMA GEMM over panel-packed weights (see gemm.h).
//
//   Y[t][n] = Σ_k X[t][k]·W[n][k] (+ bias[n]) (+ Y[t][n]), each sum as 8 lane partial sums (lane l: k ≡ l mod 8,
//   increasing k) reduced by vec::hsum, on every path and ISA.
//
// Tiling: threads split the N output columns (weight rows) into contiguous ranges. Each thread walks X in
// blocks of rows that fit in L2; for each block it takes its weight rows one panel (NR rows) at a time (a
// tile that stays in L1) and sweeps the block's X rows MR at a time past it. A micro-kernel computes an
// MR×NR tile with MR·NR 8-lane accumulators, streaming K in steps of 8 (the panel's chunks in order).
#include "cpu/gemm.h"

#include <immintrin.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/gemm_avx512.h"
#include "cpu/vec.h"

namespace mamba {

namespace {

constexpr int MR = 3;  // X rows per micro-tile
constexpr int NR = GemmWeight::kPanel;  // W rows per micro-tile: one panel (MR·NR = 12 accumulators + 3 X + 1 W = 16 ymm)

// 8 weights of one row's chunk as floats (a panel chunk is always whole: the tail is zero-padded).
template <bool BF16>
inline __m256 load_w(const uint8_t* p) {
    if constexpr (BF16) return vec::load_bf16(reinterpret_cast<const uint16_t*>(p));
    else return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
}

inline __m256 load_x(const float* p, int n) {
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, vec::tail_mask(n));
}

// Y[0..M)[0..N) = X[0..M)·W[0..N)ᵀ + bias for an M×N tile (M ≤ MR, N ≤ NR); `wr[j]` is chunk 0 of weight row j
// in the panel layout (chunk c lies c · kChunk bytes further on):
// acc[i][j] lane l = Σ_{k ≡ l (mod 8)} X[i][k]·W[j][k]; Y[i][j] = hsum(acc[i][j]) + bias[j].
template <int M, int N, bool BF16, bool ADD>
void micro_tile(const float* X, int64_t ldx, const uint8_t* const* wr, int64_t K, const float* bias, float* Y,
                int64_t ldy) {
    constexpr int64_t kChunk = GemmWeight::kPanel * 8 * (BF16 ? 2 : 4);
    const uint8_t* w[N];
    for (int j = 0; j < N; j++) w[j] = wr[j];
    __m256 acc[M][N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) acc[i][j] = _mm256_setzero_ps();
    int64_t k = 0, off = 0;
    for (; k + 8 <= K; k += 8, off += kChunk) {
        __m256 x[M];
        for (int i = 0; i < M; i++) x[i] = _mm256_loadu_ps(X + i * ldx + k);
        for (int j = 0; j < N; j++) {
            const __m256 wv = load_w<BF16>(w[j] + off);
            for (int i = 0; i < M; i++) acc[i][j] = _mm256_fmadd_ps(x[i], wv, acc[i][j]);
        }
    }
    if (k < K) {  // X masked to its K − k valid lanes; the weights' padding lanes are zero
        const int rest = int(K - k);
        __m256 x[M];
        for (int i = 0; i < M; i++) x[i] = load_x(X + i * ldx + k, rest);
        for (int j = 0; j < N; j++) {
            const __m256 wv = load_w<BF16>(w[j] + off);
            for (int i = 0; i < M; i++) acc[i][j] = _mm256_fmadd_ps(x[i], wv, acc[i][j]);
        }
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float y = vec::hsum(acc[i][j]);
            if (bias) y += bias[j];
            if constexpr (ADD) y += Y[i * ldy + j];
            Y[i * ldy + j] = y;
        }
}

using TileFn = void (*)(const float*, int64_t, const uint8_t* const*, int64_t, const float*, float*, int64_t);

// The micro-kernel for an m×n tile (1 ≤ m ≤ MR, 1 ≤ n ≤ NR).
template <bool BF16, bool ADD>
TileFn tile_fn(int m, int n) {
    static const TileFn table[MR][NR] = {
        {micro_tile<1, 1, BF16, ADD>, micro_tile<1, 2, BF16, ADD>, micro_tile<1, 3, BF16, ADD>, micro_tile<1, 4, BF16, ADD>},
        {micro_tile<2, 1, BF16, ADD>, micro_tile<2, 2, BF16, ADD>, micro_tile<2, 3, BF16, ADD>, micro_tile<2, 4, BF16, ADD>},
        {micro_tile<3, 1, BF16, ADD>, micro_tile<3, 2, BF16, ADD>, micro_tile<3, 3, BF16, ADD>, micro_tile<3, 4, BF16, ADD>},
    };
    return table[m - 1][n - 1];
}

// Columns [n0, n1) of Y for all T rows.
template <bool BF16, bool ADD>
void gemm_range(const float* X, int64_t ldx, int64_t T, const GemmWeight& W, const float* bias, float* Y, int64_t ldy,
                int64_t n0, int64_t n1) {
    const int64_t K = W.cols;
    // X rows per block: gemm_x_block_bytes() of X, so a block stays in L2; a weight tile (NR rows) stays in L1
    // while the block's X tiles stream past it. A block of one X tile (decode) reads each weight tile once,
    // as one sequential stream per panel, which the hardware prefetcher follows without help.
    const int64_t tb = std::max<int64_t>(MR, (gemm_x_block_bytes() / (K * 4)) / MR * MR);
    for (int64_t t0 = 0; t0 < T; t0 += tb) {
        const int64_t t1 = std::min(T, t0 + tb);
        // Tiles follow the panels (a range that starts inside a panel gets a short first tile).
        for (int64_t n = n0, w; n < n1; n += w) {
            w = std::min<int64_t>(NR - n % NR, n1 - n);
            const uint8_t* wr[NR];
            for (int j = 0; j < w; j++) wr[j] = W.row(n + j);
            for (int64_t t = t0; t < t1; t += MR) {
                const int m = int(std::min<int64_t>(MR, t1 - t));
                tile_fn<BF16, ADD>(m, int(w))(X + t * ldx, ldx, wr, K, bias ? bias + n : nullptr, Y + t * ldy + n, ldy);
            }
        }
    }
}

// 64-byte aligned packed-X scratch of at least n floats, one per thread, reused across calls.
float* avx512_scratch(int64_t n) {
    thread_local std::vector<float> buf;
    if (buf.size() < size_t(n) + 16) buf.resize(size_t(n) + 16);
    const uintptr_t p = reinterpret_cast<uintptr_t>(buf.data());
    return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
}

}  // namespace

namespace {
// sysconf's figure for a cache, or `fallback` where the system does not say.
int64_t cache_size(int name, int64_t fallback) {
    const long v = sysconf(name);
    return v > 0 ? int64_t(v) : fallback;
}
}  // namespace

int64_t gemm_x_block_bytes() {
#ifdef GEMM_BLOCK_KIB
    static const int64_t bytes = int64_t(GEMM_BLOCK_KIB) * 1024;  // an override for experiments
#else
    static const int64_t bytes =
        std::clamp<int64_t>(cache_size(_SC_LEVEL2_CACHE_SIZE, 1 << 20) * 3 / 4, 256 << 10, 8 << 20);
#endif
    return bytes;
}

int64_t gemm_k_slice_chunks() {
#ifdef GEMM_KC
    static const int64_t kc = GEMM_KC;
#else
    static const int64_t kc = std::clamp<int64_t>(cache_size(_SC_LEVEL1_DCACHE_SIZE, 32 << 10) / 2 / (8 * 32), 16, 512);
#endif
    return kc;
}

GemmIsa choose_gemm_isa() {
    __builtin_cpu_init();
    const bool has512 = __builtin_cpu_supports("avx512f");
    const char* env = std::getenv("MAMBA_EVAL_ISA");
    const std::string want = env ? env : "auto";
    if (want == "auto" || want.empty()) return has512 ? GemmIsa::Avx512 : GemmIsa::Avx2;
    if (want == "avx2") return GemmIsa::Avx2;
    if (want == "avx512") {
        if (!has512) throw std::runtime_error("MAMBA_EVAL_ISA=avx512, but this CPU lacks AVX-512F (use auto or avx2)");
        return GemmIsa::Avx512;
    }
    throw std::runtime_error("MAMBA_EVAL_ISA must be auto, avx2 or avx512, got \"" + want + "\"");
}

const char* gemm_isa_name(GemmIsa isa) { return isa == GemmIsa::Avx512 ? "avx512f+avx2+fma" : "avx2+fma"; }

size_t packed_bytes(int64_t rows, int64_t cols, DType dtype) {
    const int64_t panels = (rows + GemmWeight::kPanel - 1) / GemmWeight::kPanel, chunks = (cols + 7) / 8;
    return size_t(panels * chunks * GemmWeight::kPanel * 8 * (dtype == DType::F32 ? 4 : 2));
}

GemmWeight pack_rows(const Tensor& src, uint8_t* dst, int64_t r0, int64_t r1) {
    GemmWeight W;
    W.dtype = src.dtype;
    W.rows = src.rows;
    W.cols = src.cols;
    W.chunks = (src.cols + 7) / 8;
    W.data = dst;
    const int64_t es = W.elem_bytes(), K = src.cols;
    const uint8_t* s = static_cast<const uint8_t*>(src.data);
    auto put = [&](int64_t r, const uint8_t* row) {  // row == null: a zero padding row
        uint8_t* d = const_cast<uint8_t*>(W.row(r));
        for (int64_t c = 0; c < W.chunks; c++, d += GemmWeight::kPanel * 8 * es) {
            const int64_t n = row ? std::min<int64_t>(8, K - 8 * c) : 0;
            if (n == 8 && es == 4) {
                std::memcpy(d, row + 32 * c, 32);  // fixed sizes: inlined moves, not a call per chunk
            } else if (n == 8) {
                std::memcpy(d, row + 16 * c, 16);
            } else {
                if (n > 0) std::memcpy(d, row + 8 * c * es, size_t(n * es));
                std::memset(d + n * es, 0, size_t((8 - n) * es));
            }
        }
    };
    for (int64_t r = r0; r < r1; r++) put(r, s + r * K * es);
    if (r1 == src.rows)
        for (int64_t r = src.rows; r % GemmWeight::kPanel != 0; r++) put(r, nullptr);
    return W;
}

void packed_row_f32(const GemmWeight& W, int64_t r, float* out) {
    const uint8_t* p = W.row(r);
    for (int64_t c = 0; c < W.chunks; c++, p += GemmWeight::kPanel * 8 * W.elem_bytes()) {
        const int64_t n = std::min<int64_t>(8, W.cols - 8 * c);
        if (W.dtype == DType::F32) {
            std::memcpy(out + 8 * c, p, size_t(n) * 4);
        } else {
            const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
            for (int64_t i = 0; i < n; i++) out[8 * c + i] = bf16_to_f32(h[i]);
        }
    }
}

void gemm_cols(const float* X, int64_t ldx, int64_t T, const GemmWeight& W, const float* bias, float* Y, int64_t ldy,
               int64_t n0, int64_t n1, GemmIsa isa, GemmOut out) {
    if (T <= 0 || n1 <= n0) return;
    const bool bf16 = W.dtype == DType::BF16, add = out == GemmOut::AddTo;
    // One row (decode) stays on the AVX2 kernel: a variant loading two weight rows per zmm measured the same
    // for f32 and a third slower for bf16.
    if (isa == GemmIsa::Avx512 && T >= 2) {
        avx512::gemm_range(X, ldx, T, W.data, W.panel_bytes(), bf16, W.cols, bias, Y, ldy, n0, n1, add,
                           avx512_scratch(avx512::scratch_floats(W.cols)));
        return;
    }
    if (bf16)
        add ? gemm_range<true, true>(X, ldx, T, W, bias, Y, ldy, n0, n1) : gemm_range<true, false>(X, ldx, T, W, bias, Y, ldy, n0, n1);
    else
        add ? gemm_range<false, true>(X, ldx, T, W, bias, Y, ldy, n0, n1) : gemm_range<false, false>(X, ldx, T, W, bias, Y, ldy, n0, n1);
}

void gemm(const float* X, int64_t ldx, int64_t T, const GemmWeight& W, const float* bias, float* Y, int64_t ldy,
          ThreadPool& pool, GemmIsa isa, GemmOut out) {
    if (T <= 0 || W.rows <= 0) return;
    const bool wide = isa == GemmIsa::Avx512 && T >= 2;
    // A few columns (x_proj: 80) and many rows: threads split the rows instead, so that each packs only its own
    // X rows (with columns split, every thread packs all of X, which at N = 80 costs as much as its share of the
    // product). A row's outputs are the same whichever rows it is computed with.
    const int64_t tile_rows = wide ? 6 : MR;
    if (pool.size() > 1 && W.rows < int64_t(16) * 8 * pool.size() && T >= 4 * tile_rows * pool.size()) {
        pool.parallel_for(T, tile_rows, [&](int64_t t0, int64_t t1) {
            gemm_cols(X + t0 * ldx, ldx, t1 - t0, W, bias, Y + t0 * ldy, ldy, 0, W.rows, isa, out);
        });
        return;
    }
    // Column ranges of whole AVX-512 tiles (8 rows; 24 split x_proj's 80 columns 48/32) or of 4 AVX2 tiles.
    const int64_t grain = wide ? 8 : NR * 4;
    pool.parallel_for(W.rows, grain, [&](int64_t n0, int64_t n1) { gemm_cols(X, ldx, T, W, bias, Y, ldy, n0, n1, isa, out); });
}

}  // namespace mamba
