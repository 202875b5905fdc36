// ops.cc — the Mamba kernels other than the GEMM (ops.h gives each one's contract):
//   RMSNorm          out = x·w / sqrt(mean(x²) + eps)                      (Σ x² in double, element order)
//   conv + SiLU      out[t][c] = SiLU(Σ_{j<K} w[j][c]·in[t−K+1+j][c] + b[c])
//   Mamba-1 scan     h[n][e] ← exp(Δ·A[n][e])·h[n][e] + (Δ·x[e])·B[n]
//                    y[e] = (Σ_n h[n][e]·C[n] + D[e]·x[e])·SiLU(z[e])
//   Mamba-2 scan     S[h][p][n] ← exp(Δ_h·A_h)·S[h][p][n] + (Δ_h·x[p])·B_g[n]
//                    y[h·P+p] = Σ_n S[h][p][n]·C_g[n] + D_h·x[p]
//   gated RMSNorm    v = y ⊙ SiLU(z);  y = v·w / sqrt(mean_group(v²) + eps)
//   log-softmax      log p(target) = l[target] − (m + log Σ exp(l − m))
// Channel-parallel kernels split channels (or heads) into contiguous ranges per thread; each thread walks all
// segments in order, so a segment that starts from a state an earlier segment saved reads it after it was
// written (same thread, same channels). Every AVX-512 path does its AVX2 twin's operations lane for lane.
#include "cpu/ops.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "cpu/vec.h"

namespace mamba {

namespace {

// y ← y · SiLU(z), elementwise over n floats (z SiLU computed 8 at a time, tail masked).
void mul_silu(float* y, const float* z, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        const int w = int(std::min<int64_t>(8, n - i));
        vec::store_n(y + i, _mm256_mul_ps(vec::load_n(y + i, w), vec::silu8(vec::load_n(z + i, w))), w);
    }
}

constexpr int kMaxConv = 8;

// Tokens per block of the Mamba-1 scan: softplus(dt) of a block is computed before its recurrence, and every
// channel group of a thread goes through a block before the next block starts.
constexpr int kScanBlock = 16;

// Rows of dt_proj computed at a time inside mamba1_scan_channels (DtProj).
constexpr int64_t kDtRows = 64;

}  // namespace

namespace {

// Rows normalised together: their sums of squares run as kNormRows independent chains (each row's sum keeps its
// own order, element after element), so the 4-cycle latency of a double add is paid once per kNormRows elements.
constexpr int kNormRows = 8;

// ss[r] = Σ_i v_r[i]² in double, i in increasing order, for one row v_0 = x, elements [0, n).
inline double sum_squares1(const float* x, int64_t n) {
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += double(x[i]) * double(x[i]);
    return acc;
}

// The same for 8 rows v_r = x + r·ld at once: 8×8 blocks are transposed so that one vector holds element i of
// every row; rows 0–3 and 4–7 then each run as one 4-lane double chain, lane r adding v_r[i]² for i in
// increasing order (the product is exact, so a fused add rounds as the plain add does).
inline void sum_squares8(const float* x, int64_t ld, int64_t n, double* ss) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 r[8], t[8], u[8];
        for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(x + k * ld + i);
        for (int k = 0; k < 8; k += 2) {
            t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
            t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
        }
        for (int k = 0; k < 8; k += 4) {
            u[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
            u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);
            u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
            u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
        }
        __m256 c[8];  // c[j]: element i + j of rows 0..7
        for (int j = 0; j < 4; j++) {
            c[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
            c[j + 4] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
        }
        for (int j = 0; j < 8; j++) {
            const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(c[j]));
            const __m256d b = _mm256_cvtps_pd(_mm256_extractf128_ps(c[j], 1));
            lo = _mm256_fmadd_pd(a, a, lo);  // ss[r] += v_r[i]²
            hi = _mm256_fmadd_pd(b, b, hi);
        }
    }
    _mm256_storeu_pd(ss, lo);
    _mm256_storeu_pd(ss + 4, hi);
    for (; i < n; i++)
        for (int r = 0; r < 8; r++) ss[r] += double(x[r * ld + i]) * double(x[r * ld + i]);
}

// sum_squares8 for rows ≤ kNormRows.
inline void sum_squares_n(const float* x, int64_t ld, int64_t n, int rows, double* ss) {
    if (rows == kNormRows) sum_squares8(x, ld, n, ss);
    else
        for (int r = 0; r < rows; r++) ss[r] = sum_squares1(x + r * ld, n);
}

}  // namespace

void rms_norm(const float* x, int64_t ldx, int64_t T, int64_t n, const float* w, float eps, float* out,
              int64_t ldo, ThreadPool& pool) {
    pool.parallel_for(T, kNormRows, [&](int64_t t0, int64_t t1) {
        for (int64_t tb = t0; tb < t1; tb += kNormRows) {
            const int rows = int(std::min<int64_t>(kNormRows, t1 - tb));
            double ss[kNormRows];
            sum_squares_n(x + tb * ldx, ldx, n, rows, ss);
            for (int r = 0; r < rows; r++) {
                const float* xr = x + (tb + r) * ldx;
                float* o = out + (tb + r) * ldo;
                const float rs = float(1.0 / std::sqrt(ss[r] / double(n) + double(eps)));
                for (int64_t i = 0; i < n; i++) o[i] = (xr[i] * rs) * w[i];  // x · w / sqrt(mean(x²) + eps)
            }
        }
    });
}

namespace {

// The operands of one Mamba-1 scan call (see mamba1_scan_channels in ops.h).
struct ScanArgs {
    const float *x, *dt_raw, *B, *Cm;
    int64_t ldbc;
    const float* z;
    int64_t ldz;
    const float *AT, *D;
    int64_t E, N;
    float* y;
};

// Tokens [t0, t0 + nt) (nt ≤ kScanBlock) of one group of 8 channels (e .. e + 8, `w` lanes valid). h, a: the
// group's states and A, [N][8]. softplus(dt) of the whole block is computed first (independent work the core can
// overlap), so its latency is not on every token's path.
void scan8_block(const ScanArgs& p, int64_t t0, int nt, int64_t e, int w, float* h, const float* a) {
    const int64_t E = p.E, N = p.N;
    const __m256 d = vec::load_n(p.D + e, w);
    alignas(32) float dtb[kScanBlock][8];
    for (int i = 0; i < nt; i++) _mm256_store_ps(dtb[i], vec::softplus8(vec::load_n(p.dt_raw + (t0 + i) * E + e, w)));
    for (int i = 0; i < nt; i++) {
        const int64_t t = t0 + i;
        const __m256 dtv = _mm256_load_ps(dtb[i]);
        const __m256 xv = vec::load_n(p.x + t * E + e, w);
        const __m256 dtx = _mm256_mul_ps(dtv, xv);
        __m256 acc = _mm256_setzero_ps();
        const float* bt = p.B + t * p.ldbc;
        const float* ct = p.Cm + t * p.ldbc;
        for (int64_t n = 0; n < N; n++) {
            float* hp = h + 8 * n;
            const __m256 decay = vec::exp8_le88(_mm256_mul_ps(dtv, _mm256_loadu_ps(a + 8 * n)));
            const __m256 hn = _mm256_fmadd_ps(decay, _mm256_loadu_ps(hp), _mm256_mul_ps(dtx, _mm256_set1_ps(bt[n])));
            _mm256_storeu_ps(hp, hn);
            acc = _mm256_fmadd_ps(hn, _mm256_set1_ps(ct[n]), acc);
        }
        const __m256 yv = _mm256_fmadd_ps(d, xv, acc);
        const __m256 gate = vec::silu8(vec::load_n(p.z + t * p.ldz + e, w));
        vec::store_n(p.y + t * E + e, _mm256_mul_ps(yv, gate), w);
    }
}

// The AVX-512 scan (16 channels per vector), for CPUs that have AVX-512F (the caller checks). exp16, log16,
// softplus16 and silu16 are the vec:: 8-lane functions with the same operations lane for lane, and
// scan16_block_avx512 is scan8_block's loop, so every output has the same bits on both paths (the functions were
// compared with vec:: over all 2^32 float inputs; test/native/isaPaths.test.ts compares whole models).
#pragma GCC push_options
#pragma GCC target("avx512f")
#pragma GCC diagnostic push  // GCC 12's AVX-512 headers trip these on _mm512_undefined (as in gemm_avx512.cc)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// vec::exp8 (hi = 88.7f) or vec::exp8_le88 (hi = 88.0f) in 16 lanes, lane for lane the same bits: the same
// operations, with q·2^n as one vscalefps, which rounds the exact product once, as the multiplies by powers of
// two do (checked over every float input).
inline __m512 exp16(__m512 x, float hi) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(hi));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(vec::kLog2e)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(vec::kLn2Hi), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(vec::kLn2Lo), r);
    __m512 q = _mm512_set1_ps(vec::kExpPoly[0]);
    for (int i = 1; i < 6; i++) q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(vec::kExpPoly[i]));
    q = _mm512_fmadd_ps(q, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(q, n);
}

// exp16 of B vectors at once, each step applied to all B before the next, so that B independent chains are
// ready together (one exp is a chain of ≈ 14 dependent operations; run one after the other, too few of them fit
// the scheduler to keep both FMA ports busy).
constexpr int kExpBatch = 8;  // 4: −5%, 8: −10%, 16: +15% (spills) against one at a time, bench_scan
template <int B>
inline void exp16_batch(__m512 (&x)[B], float hi) {
    __m512 n[B], r[B], q[B];
    for (int b = 0; b < B; b++) x[b] = _mm512_min_ps(_mm512_max_ps(x[b], _mm512_set1_ps(-87.3f)), _mm512_set1_ps(hi));
    for (int b = 0; b < B; b++)
        n[b] = _mm512_roundscale_ps(_mm512_mul_ps(x[b], _mm512_set1_ps(vec::kLog2e)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    for (int b = 0; b < B; b++) r[b] = _mm512_fnmadd_ps(n[b], _mm512_set1_ps(vec::kLn2Hi), x[b]);
    for (int b = 0; b < B; b++) r[b] = _mm512_fnmadd_ps(n[b], _mm512_set1_ps(vec::kLn2Lo), r[b]);
    for (int b = 0; b < B; b++) q[b] = _mm512_set1_ps(vec::kExpPoly[0]);
    for (int i = 1; i < 6; i++)
        for (int b = 0; b < B; b++) q[b] = _mm512_fmadd_ps(q[b], r[b], _mm512_set1_ps(vec::kExpPoly[i]));
    for (int b = 0; b < B; b++)
        q[b] = _mm512_fmadd_ps(q[b], _mm512_mul_ps(r[b], r[b]), _mm512_add_ps(r[b], _mm512_set1_ps(1.0f)));
    for (int b = 0; b < B; b++) x[b] = _mm512_scalef_ps(q[b], n[b]);
}

// vec::log8 in 16 lanes (the same operations; the blend on m > √2 through a mask).
inline __m512 log16(__m512 x) {
    const __m512i bits = _mm512_castps_si512(x);
    __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127));
    __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)),
                                                   _mm512_set1_epi32(0x3f800000)));
    const __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356237f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_epi32(e, big, e, _mm512_set1_epi32(1));
    const __m512 ef = _mm512_cvtepi32_ps(e);
    const __m512 r = _mm512_sub_ps(m, _mm512_set1_ps(1.0f));
    const __m512 r2 = _mm512_mul_ps(r, r);
    __m512 q = _mm512_set1_ps(vec::kLogPoly[0]);
    for (int i = 1; i < 9; i++) q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(vec::kLogPoly[i]));
    q = _mm512_mul_ps(_mm512_mul_ps(q, r), r2);
    q = _mm512_fmadd_ps(ef, _mm512_set1_ps(vec::kLn2Lo), q);
    q = _mm512_fnmadd_ps(r2, _mm512_set1_ps(0.5f), q);
    return _mm512_add_ps(_mm512_add_ps(r, q), _mm512_mul_ps(ef, _mm512_set1_ps(vec::kLn2Hi)));
}

// vec::softplus8 in 16 lanes.
inline __m512 softplus16(__m512 x) {
    const __m512 u = exp16(x, 88.7f);
    const __m512 y = _mm512_add_ps(_mm512_set1_ps(1.0f), u);
    const __m512 corr = _mm512_div_ps(_mm512_sub_ps(_mm512_sub_ps(y, _mm512_set1_ps(1.0f)), u), y);
    const __m512 sp = _mm512_sub_ps(log16(y), corr);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(20.0f), _CMP_GT_OQ), sp, x);
}

// vec::silu8 in 16 lanes.
inline __m512 silu16(__m512 x) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x), 88.7f);
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// scan8_block for 16 channels (e .. e + 16, `w` lanes valid; all 16 when Full); h, a: [N][16]. Full groups use
// plain loads and stores: masked ones per token cost this loop a third of its time or more (AMD Zen 5).
template <bool Full>
inline __m512 load16(const float* p, __mmask16 m) {
    return Full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

template <bool Full>
void scan16_block_avx512(const ScanArgs& p, int64_t t0, int nt, int64_t e, int w, float* h, const float* a) {
    const int64_t E = p.E, N = p.N;
    const __mmask16 m = __mmask16(w >= 16 ? 0xffffu : (1u << w) - 1u);
    const __m512 d = load16<Full>(p.D + e, m);
    alignas(64) float dtb[kScanBlock][16];
    for (int i = 0; i < nt; i++) _mm512_store_ps(dtb[i], softplus16(load16<Full>(p.dt_raw + (t0 + i) * E + e, m)));
    for (int i = 0; i < nt; i++) {
        const int64_t t = t0 + i;
        const __m512 dtv = _mm512_load_ps(dtb[i]);
        const __m512 xv = load16<Full>(p.x + t * E + e, m);
        const __m512 dtx = _mm512_mul_ps(dtv, xv);
        __m512 acc = _mm512_setzero_ps();
        const float* bt = p.B + t * p.ldbc;
        const float* ct = p.Cm + t * p.ldbc;
        int64_t n = 0;
        for (; n + kExpBatch <= N; n += kExpBatch) {  // h ← exp(dt·A)·h + (dt·x)·B;  acc ← h·C + acc
            __m512 decay[kExpBatch];
            for (int j = 0; j < kExpBatch; j++) decay[j] = _mm512_mul_ps(dtv, _mm512_loadu_ps(a + 16 * (n + j)));
            exp16_batch<kExpBatch>(decay, 88.0f);
            for (int j = 0; j < kExpBatch; j++) {
                float* hp = h + 16 * (n + j);
                const __m512 hn =
                    _mm512_fmadd_ps(decay[j], _mm512_loadu_ps(hp), _mm512_mul_ps(dtx, _mm512_set1_ps(bt[n + j])));
                _mm512_storeu_ps(hp, hn);
                acc = _mm512_fmadd_ps(hn, _mm512_set1_ps(ct[n + j]), acc);
            }
        }
        for (; n < N; n++) {
            float* hp = h + 16 * n;
            const __m512 decay = exp16(_mm512_mul_ps(dtv, _mm512_loadu_ps(a + 16 * n)), 88.0f);
            const __m512 hn = _mm512_fmadd_ps(decay, _mm512_loadu_ps(hp), _mm512_mul_ps(dtx, _mm512_set1_ps(bt[n])));
            _mm512_storeu_ps(hp, hn);
            acc = _mm512_fmadd_ps(hn, _mm512_set1_ps(ct[n]), acc);
        }
        const __m512 gate = silu16(load16<Full>(p.z + t * p.ldz + e, m));
        const __m512 yv = _mm512_mul_ps(_mm512_fmadd_ps(d, xv, acc), gate);
        if (Full)
            _mm512_storeu_ps(p.y + t * E + e, yv);
        else
            _mm512_mask_storeu_ps(p.y + t * E + e, m, yv);
    }
}
#pragma GCC diagnostic pop
#pragma GCC pop_options

}  // namespace

namespace {

// Tokens per block of the conv: every channel group of a thread runs through a block before the next block, so
// a block's input and output rows are read and written as contiguous runs of the thread's channels (walking one
// channel group down all T rows touched one cache line per row at a stride of the whole row).
constexpr int kConvBlock = 16;

// The operands of one conv call (see conv_silu in ops.h).
struct ConvArgs {
    const float* in;
    int64_t ldi, C;
    int K;
    const float *wT, *bias;
    float* out;
};

// Channel c's input at row τ ∈ [s.t0 − (K−1), s.t1) of segment s: an input row, or for τ < s.t0 row
// K−1−(s.t0−τ) of the segment's conv_init (null: the zero state).
inline const float* conv_src(const ConvArgs& a, const SegmentState& s, int64_t tau, int64_t c) {
    if (tau >= s.t0) return a.in + tau * a.ldi + c;
    return s.conv_init ? s.conv_init + (a.K - 1 - (s.t0 - tau)) * a.C + c : nullptr;
}

// Rows [t0, t0 + nt) of segment s, channels c .. c + w (w ≤ 8 valid), a window of the last K inputs in registers:
//   out[t][c] = SiLU(Σ_{j<K} wT[j][c] · in[t−K+1+j][c] + bias[c])
// `last`: the segment's final block, whose last K−1 inputs are saved to conv_save.
// K is a template argument so that the window lives in registers (with a run-time K the shifts went through
// the stack: a store-to-load chain per token that cost this loop 3/4 of its time).
template <int K>
void conv8_block(const ConvArgs& a, const SegmentState& s, int64_t t0, int nt, int64_t c, int w, bool last) {
    __m256 win[K], wk[K];  // win[0..K-2]: the inputs before row t (oldest first), win[K-1]: row t
    for (int j = 0; j < K - 1; j++) {
        const float* p = conv_src(a, s, t0 - (K - 1) + j, c);
        win[j] = p ? vec::load_n(p, w) : _mm256_setzero_ps();
    }
    for (int j = 0; j < K; j++) wk[j] = vec::load_n(a.wT + j * a.C + c, w);
    const __m256 b = a.bias ? vec::load_n(a.bias + c, w) : _mm256_setzero_ps();
    for (int i = 0; i < nt; i++) {
        const int64_t t = t0 + i;
        win[K - 1] = vec::load_n(a.in + t * a.ldi + c, w);
        __m256 acc = _mm256_setzero_ps();
        for (int j = 0; j < K; j++) acc = _mm256_fmadd_ps(wk[j], win[j], acc);  // Σ_j wT[j]·in[t−K+1+j]
        vec::store_n(a.out + t * a.C + c, vec::silu8(_mm256_add_ps(acc, b)), w);
        for (int j = 0; j + 1 < K; j++) win[j] = win[j + 1];
    }
    if (last && s.conv_save)
        for (int j = 0; j < K - 1; j++) vec::store_n(s.conv_save + j * a.C + c, win[j], w);
}

#pragma GCC push_options
#pragma GCC target("avx512f")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// conv8_block for 16 channels (w ≤ 16 valid; all 16 when Full), lane for lane the same operations (silu16 is
// silu8's, see below), so every output has the same bits on both paths.
template <bool Full, int K>
void conv16_block(const ConvArgs& a, const SegmentState& s, int64_t t0, int nt, int64_t c, int w, bool last) {
    const __mmask16 m = __mmask16(w >= 16 ? 0xffffu : (1u << w) - 1u);
    auto load = [&](const float* p) { return Full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p); };
    auto store = [&](float* p, __m512 v) {
        if (Full) _mm512_storeu_ps(p, v);
        else _mm512_mask_storeu_ps(p, m, v);
    };
    __m512 win[K], wk[K];
    for (int j = 0; j < K - 1; j++) {
        const float* p = conv_src(a, s, t0 - (K - 1) + j, c);
        win[j] = p ? load(p) : _mm512_setzero_ps();
    }
    for (int j = 0; j < K; j++) wk[j] = load(a.wT + j * a.C + c);
    const __m512 b = a.bias ? load(a.bias + c) : _mm512_setzero_ps();
    for (int i = 0; i < nt; i++) {
        const int64_t t = t0 + i;
        win[K - 1] = load(a.in + t * a.ldi + c);
        __m512 acc = _mm512_setzero_ps();
        for (int j = 0; j < K; j++) acc = _mm512_fmadd_ps(wk[j], win[j], acc);
        store(a.out + t * a.C + c, silu16(_mm512_add_ps(acc, b)));
        for (int j = 0; j + 1 < K; j++) win[j] = win[j + 1];
    }
    if (last && s.conv_save)
        for (int j = 0; j < K - 1; j++) store(s.conv_save + j * a.C + c, win[j]);
}
#pragma GCC diagnostic pop
#pragma GCC pop_options

}  // namespace

namespace {

// conv_silu_channels for a compile-time K.
template <int K>
void conv_channels(const ConvArgs& a, const std::vector<SegmentState>& segs, int64_t c0, int64_t c1, GemmIsa isa) {
    const int L = isa == GemmIsa::Avx512 ? 16 : 8;  // channels per vector
    for (const SegmentState& s : segs) {
        const int64_t blocks = std::max<int64_t>(1, (s.t1 - s.t0 + kConvBlock - 1) / kConvBlock);
        for (int64_t bl = 0; bl < blocks; bl++) {
            const int64_t t0 = s.t0 + bl * kConvBlock;
            const int nt = int(std::min<int64_t>(kConvBlock, s.t1 - t0));
            const bool last = bl == blocks - 1;
            for (int64_t c = c0; c < c1; c += L) {
                const int w = int(std::min<int64_t>(L, c1 - c));
                if (L == 16 && w == 16) conv16_block<true, K>(a, s, t0, nt, c, w, last);
                else if (L == 16) conv16_block<false, K>(a, s, t0, nt, c, w, last);
                else conv8_block<K>(a, s, t0, nt, c, w, last);
            }
        }
    }
}

template <int K>
void conv_channels_k(int k, const ConvArgs& a, const std::vector<SegmentState>& segs, int64_t c0, int64_t c1,
                     GemmIsa isa) {
    if constexpr (K >= 1) {
        if (k == K) conv_channels<K>(a, segs, c0, c1, isa);
        else conv_channels_k<K - 1>(k, a, segs, c0, c1, isa);
    }
}

}  // namespace

void conv_silu_channels(const float* in, int64_t ldi, int64_t C, int K, const float* wT, const float* bias,
                        const std::vector<SegmentState>& segs, float* out, int64_t c0, int64_t c1, GemmIsa isa) {
    if (K < 1 || K > kMaxConv) throw std::runtime_error("d_conv must be in [1, 8]");
    conv_channels_k<kMaxConv>(K, ConvArgs{in, ldi, C, K, wT, bias, out}, segs, c0, c1, isa);
}

void conv_silu(const float* in, int64_t ldi, int64_t C, int K, const float* wT, const float* bias,
               const std::vector<SegmentState>& segs, float* out, ThreadPool& pool, GemmIsa isa) {
    if (K < 1 || K > kMaxConv) throw std::runtime_error("d_conv must be in [1, 8]");
    pool.parallel_for(C, 8, [&](int64_t c0, int64_t c1) {
        conv_silu_channels(in, ldi, C, K, wT, bias, segs, out, c0, c1, isa);
    });
}

void mamba1_scan_channels(const float* x, float* dt_raw, const float* B, const float* Cm, int64_t ldbc,
                          const float* z, int64_t ldz, const float* AT, const float* D, int64_t E, int64_t N,
                          const std::vector<SegmentState>& segs, float* y, int64_t e0, int64_t e1, GemmIsa isa,
                          const DtProj* dtp) {
    const ScanArgs p{x, dt_raw, B, Cm, ldbc, z, ldz, AT, D, E, N, y};
    // dt = dt_proj(dt_low) + bias for this thread's channels, kDtRows rows at a time just ahead of the scan, so the
    // rows the scan reads are still in cache (rows do not depend on segments: one product runs across them).
    int64_t dt_done = 0;
    const int64_t T = segs.empty() ? 0 : segs.back().t1;
    auto dt_until = [&](int64_t t_end) {
        if (!dtp || t_end <= dt_done) return;
        const int64_t t1 = std::min(T, std::max(t_end, dt_done + kDtRows));
        gemm_cols(dtp->X + dt_done * dtp->ldx, dtp->ldx, t1 - dt_done, *dtp->W, dtp->bias, dt_raw + dt_done * E, E,
                  e0, e1, isa);
        dt_done = t1;
    };
    const int L = isa == GemmIsa::Avx512 ? 16 : 8;  // channels per vector
    const int64_t groups = (e1 - e0 + L - 1) / L;
    // States and A of all this thread's channels, group after group ([groups][N][L]): a token block goes through
    // every group before the next block starts, so each block reads and writes rows of x, dt, z and y as
    // contiguous runs of the thread's channels instead of one cache line per row (a 6 KiB stride at E = 1536).
    thread_local std::vector<float> hbuf, abuf;
    const size_t need = size_t(groups * N * L);
    if (hbuf.size() < need) {
        hbuf.resize(need);
        abuf.resize(need);
    }
    for (const SegmentState& s : segs) {
        for (int64_t g = 0; g < groups; g++) {
            const int64_t e = e0 + g * L;
            const int w = int(std::min<int64_t>(L, e1 - e));
            float* h = hbuf.data() + g * N * L;
            float* a = abuf.data() + g * N * L;
            for (int64_t n = 0; n < N; n++)
                for (int k = 0; k < L; k += 8) {  // 8 lanes at a time, lanes past w zero
                    const int wk = std::max(0, std::min(8, w - k));
                    _mm256_storeu_ps(h + n * L + k, s.ssm_init ? vec::load_n(s.ssm_init + n * E + e + k, wk) : _mm256_setzero_ps());
                    _mm256_storeu_ps(a + n * L + k, vec::load_n(AT + n * E + e + k, wk));
                }
        }
        for (int64_t tb = s.t0; tb < s.t1; tb += kScanBlock) {
            const int nt = int(std::min<int64_t>(kScanBlock, s.t1 - tb));
            dt_until(tb + nt);
            for (int64_t g = 0; g < groups; g++) {
                const int64_t e = e0 + g * L;
                const int w = int(std::min<int64_t>(L, e1 - e));
                if (L == 16 && w == 16)
                    scan16_block_avx512<true>(p, tb, nt, e, w, hbuf.data() + g * N * L, abuf.data() + g * N * L);
                else if (L == 16)
                    scan16_block_avx512<false>(p, tb, nt, e, w, hbuf.data() + g * N * L, abuf.data() + g * N * L);
                else
                    scan8_block(p, tb, nt, e, w, hbuf.data() + g * N * L, abuf.data() + g * N * L);
            }
        }
        if (s.ssm_save)
            for (int64_t g = 0; g < groups; g++) {
                const int64_t e = e0 + g * L;
                const int w = int(std::min<int64_t>(L, e1 - e));
                for (int64_t n = 0; n < N; n++)
                    for (int k = 0; k < w; k += 8)
                        vec::store_n(s.ssm_save + n * E + e + k, _mm256_loadu_ps(hbuf.data() + (g * N + n) * L + k),
                                std::min(8, w - k));
            }
    }
}

namespace {

// Tokens per block of the Mamba-2 scan: a block's dt·x, decays and B/C rows are gathered once per head, then the
// head's state is updated tile by tile (a tile of channels × states in registers through every token of the block).
constexpr int kM2Block = 32;
// Channels per lane group: a head's channels are padded to a multiple of this in the block buffers and the state.
constexpr int64_t kM2Lanes = 16;

// One head's operands over a token block, channels padded to Pp (zeros past P).
struct M2Block {
    const float* x;      // [nt][Pp]
    const float* dtx;    // [nt][Pp]: dt·x[p]
    const float* B;      // [nt][ldbc]: B_g of the block's rows
    const float* C;      // [nt][ldbc]: C_g
    int64_t ldbc;
    const float* decay;  // [nt]: exp(dt·A)
    float* S;            // [N][Pp]: the head's state, state-major
    float* acc;          // [nt][Pp]: the sums over the states before this tile
    float* y;            // [nt][Pp]
    int64_t Pp;
    float D;
    int nt;
};

// Channels p0 … p0 + 8V − 1 (one per lane), states n0 … n0 + NT − 1, every token of the block in order:
//   S[n][p] ← decay·S[n][p] + (dt·x[p])·B[n];   acc[p] ← S[n][p]·C[n] + acc[p]     (n ascending)
// acc[p] starts at 0 with the first tile (`first`); after the last tile (`last`) y[p] = D·x[p] + acc[p]. Every lane
// is one channel's own sequential arithmetic, so any lane width gives the same bits (m2_tile16 below).
template <int V, int NT>
void m2_tile8(const M2Block& b, int64_t p0, int64_t n0, bool first, bool last) {
    __m256 st[NT][V];
    for (int j = 0; j < NT; j++)
        for (int v = 0; v < V; v++) st[j][v] = _mm256_loadu_ps(b.S + (n0 + j) * b.Pp + p0 + 8 * v);
    for (int t = 0; t < b.nt; t++) {
        const __m256 decay = _mm256_set1_ps(b.decay[t]);
        const float* dtx = b.dtx + t * b.Pp + p0;
        float* acc_t = b.acc + t * b.Pp + p0;
        __m256 acc[V];
        for (int v = 0; v < V; v++) acc[v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc_t + 8 * v);
        for (int j = 0; j < NT; j++) {
            const __m256 bn = _mm256_set1_ps(b.B[t * b.ldbc + n0 + j]), cn = _mm256_set1_ps(b.C[t * b.ldbc + n0 + j]);
            for (int v = 0; v < V; v++) {
                st[j][v] = _mm256_fmadd_ps(decay, st[j][v], _mm256_mul_ps(_mm256_loadu_ps(dtx + 8 * v), bn));
                acc[v] = _mm256_fmadd_ps(st[j][v], cn, acc[v]);
            }
        }
        for (int v = 0; v < V; v++)
            if (last)
                _mm256_storeu_ps(b.y + t * b.Pp + p0 + 8 * v,
                                 _mm256_fmadd_ps(_mm256_set1_ps(b.D), _mm256_loadu_ps(b.x + t * b.Pp + p0 + 8 * v), acc[v]));
            else
                _mm256_storeu_ps(acc_t + 8 * v, acc[v]);
    }
    for (int j = 0; j < NT; j++)
        for (int v = 0; v < V; v++) _mm256_storeu_ps(b.S + (n0 + j) * b.Pp + p0 + 8 * v, st[j][v]);
}

#pragma GCC push_options
#pragma GCC target("avx512f")
// m2_tile8 with 16 channels per vector.
template <int V, int NT>
void m2_tile16(const M2Block& b, int64_t p0, int64_t n0, bool first, bool last) {
    __m512 st[NT][V];
    for (int j = 0; j < NT; j++)
        for (int v = 0; v < V; v++) st[j][v] = _mm512_loadu_ps(b.S + (n0 + j) * b.Pp + p0 + 16 * v);
    for (int t = 0; t < b.nt; t++) {
        const __m512 decay = _mm512_set1_ps(b.decay[t]);
        const float* dtx = b.dtx + t * b.Pp + p0;
        float* acc_t = b.acc + t * b.Pp + p0;
        __m512 acc[V];
        for (int v = 0; v < V; v++) acc[v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc_t + 16 * v);
        for (int j = 0; j < NT; j++) {
            const __m512 bn = _mm512_set1_ps(b.B[t * b.ldbc + n0 + j]), cn = _mm512_set1_ps(b.C[t * b.ldbc + n0 + j]);
            for (int v = 0; v < V; v++) {
                st[j][v] = _mm512_fmadd_ps(decay, st[j][v], _mm512_mul_ps(_mm512_loadu_ps(dtx + 16 * v), bn));
                acc[v] = _mm512_fmadd_ps(st[j][v], cn, acc[v]);
            }
        }
        for (int v = 0; v < V; v++)
            if (last)
                _mm512_storeu_ps(b.y + t * b.Pp + p0 + 16 * v,
                                 _mm512_fmadd_ps(_mm512_set1_ps(b.D), _mm512_loadu_ps(b.x + t * b.Pp + p0 + 16 * v), acc[v]));
            else
                _mm512_storeu_ps(acc_t + 16 * v, acc[v]);
    }
    for (int j = 0; j < NT; j++)
        for (int v = 0; v < V; v++) _mm512_storeu_ps(b.S + (n0 + j) * b.Pp + p0 + 16 * v, st[j][v]);
}
#pragma GCC pop_options

// A tile of v ∈ [1, V] vectors of channels and nt ∈ [1, NT] states: the template that fits it.
template <bool kWide, int V, int NT>
void m2_tile(int v, int nt, const M2Block& b, int64_t p0, int64_t n0, bool first, bool last) {
    if constexpr (V > 0 && NT > 0) {
        if (v < V) return m2_tile<kWide, V - 1, NT>(v, nt, b, p0, n0, first, last);
        if (nt < NT) return m2_tile<kWide, V, NT - 1>(v, nt, b, p0, n0, first, last);
        if constexpr (kWide) m2_tile16<V, NT>(b, p0, n0, first, last);
        else m2_tile8<V, NT>(b, p0, n0, first, last);
    }
}

// Every tile of one head over one token block: channel groups of at most V vectors, states in order in runs of NT.
template <bool kWide, int V, int NT>
void m2_head(const M2Block& b, int64_t N) {
    constexpr int64_t lanes = kWide ? 16 : 8;
    for (int64_t p0 = 0; p0 < b.Pp; p0 += V * lanes) {
        const int v = int(std::min<int64_t>(V, (b.Pp - p0) / lanes));
        for (int64_t n0 = 0; n0 < N; n0 += NT)
            m2_tile<kWide, V, NT>(v, int(std::min<int64_t>(NT, N - n0)), b, p0, n0, n0 == 0, n0 + NT >= N);
    }
}

}  // namespace

void mamba2_scan(const float* xbc, int64_t ldx, const float* dt_raw, int64_t ldd, const float* dt_bias,
                 const float* A, const float* D, int64_t H, int64_t P, int64_t G, int64_t N,
                 const std::vector<SegmentState>& segs, float* y, ThreadPool& pool, GemmIsa isa) {
    const int64_t E = H * P;
    const int64_t heads_per_group = H / G;
    const int64_t NC = (N + 7) / 8, ldbc = NC * 8;  // B, C rows padded to 8-float chunks
    const int64_t Pp = (P + kM2Lanes - 1) / kM2Lanes * kM2Lanes;
    const bool wide = isa == GemmIsa::Avx512;
    pool.parallel_for(H, 1, [&](int64_t h0, int64_t h1) {
        // This thread's heads' states [h1 − h0][N][Pp] (channels padded with zeros), the block's B and C of one
        // group, and one head's x, dt·x, carried sums and y over the block.
        std::vector<float> Sbuf(size_t((h1 - h0) * N * Pp)), Bb(size_t(kM2Block * ldbc)), Cb(size_t(kM2Block * ldbc));
        std::vector<float> xb(size_t(kM2Block * Pp)), dtxb(size_t(kM2Block * Pp)), accb(size_t(kM2Block * Pp)),
            yb(size_t(kM2Block * Pp));
        alignas(32) float dtb[kM2Block], decb[kM2Block];
        for (const SegmentState& s : segs) {
            for (int64_t hd = h0; hd < h1; hd++) {
                float* S = Sbuf.data() + (hd - h0) * N * Pp;  // [N][Pp] from the state's [N][P]
                for (int64_t n = 0; n < N; n++)
                    for (int64_t p = 0; p < Pp; p++)
                        S[n * Pp + p] = (s.ssm_init && p < P) ? s.ssm_init[(hd * N + n) * P + p] : 0.0f;
            }
            for (int64_t t0 = s.t0; t0 < s.t1; t0 += kM2Block) {
                const int nt = int(std::min<int64_t>(kM2Block, s.t1 - t0));
                int64_t group = -1;  // the group whose B and C are in Bb, Cb
                for (int64_t hd = h0; hd < h1; hd++) {
                    const int64_t g = hd / heads_per_group;
                    if (g != group) {
                        for (int i = 0; i < nt; i++)
                            for (int64_t k = 0; k < NC; k++) {
                                const int w = int(std::min<int64_t>(8, N - 8 * k));
                                const float* row = xbc + (t0 + i) * ldx + E + g * N + 8 * k;
                                _mm256_storeu_ps(Bb.data() + i * ldbc + 8 * k, vec::load_n(row, w));
                                _mm256_storeu_ps(Cb.data() + i * ldbc + 8 * k, vec::load_n(row + G * N, w));
                            }
                        group = g;
                    }
                    // dt = softplus(dt_raw + dt_bias) (as torch: x itself above 20);  decay = exp(dt·A)
                    for (int i = 0; i < nt; i++) {
                        const float v = dt_raw[(t0 + i) * ldd + hd] + dt_bias[hd];
                        dtb[i] = v > 20.0f ? v : std::log1p(std::exp(v));
                    }
                    for (int i = 0; i < nt; i += 8) {
                        const int w = std::min(8, nt - i);
                        vec::store_n(decb + i, vec::exp8(_mm256_mul_ps(vec::load_n(dtb + i, w), _mm256_set1_ps(A[hd]))), w);
                    }
                    for (int i = 0; i < nt; i++)
                        for (int64_t p = 0; p < Pp; p++) {
                            const float xv = p < P ? xbc[(t0 + i) * ldx + hd * P + p] : 0.0f;
                            xb[size_t(i * Pp + p)] = xv;
                            dtxb[size_t(i * Pp + p)] = dtb[i] * xv;
                        }
                    const M2Block b{xb.data(), dtxb.data(), Bb.data(), Cb.data(), ldbc, decb,
                                    Sbuf.data() + (hd - h0) * N * Pp, accb.data(), yb.data(), Pp, D[hd], nt};
                    if (wide) m2_head<true, 4, 4>(b, N);
                    else m2_head<false, 2, 4>(b, N);
                    for (int i = 0; i < nt; i++)
                        for (int64_t p = 0; p < P; p++) y[(t0 + i) * E + hd * P + p] = yb[size_t(i * Pp + p)];
                }
            }
            if (s.ssm_save)
                for (int64_t hd = h0; hd < h1; hd++) {
                    const float* S = Sbuf.data() + (hd - h0) * N * Pp;
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t p = 0; p < P; p++) s.ssm_save[(hd * N + n) * P + p] = S[n * Pp + p];
                }
        }
    });
}

void gated_rms_norm(float* y, const float* z, int64_t ldz, int64_t T, int64_t E, int64_t G, const float* w,
                    float eps, ThreadPool& pool) {
    const int64_t gs = E / G;
    pool.parallel_for(T, kNormRows, [&](int64_t t0, int64_t t1) {
        for (int64_t tb = t0; tb < t1; tb += kNormRows) {
            const int rows = int(std::min<int64_t>(kNormRows, t1 - tb));
            for (int r = 0; r < rows; r++) mul_silu(y + (tb + r) * E, z + (tb + r) * ldz, E);  // v = y ⊙ SiLU(z)
            for (int64_t g = 0; g < G; g++) {
                double ss[kNormRows];
                sum_squares_n(y + tb * E + g * gs, E, gs, rows, ss);
                for (int r = 0; r < rows; r++) {
                    float* vg = y + (tb + r) * E + g * gs;
                    const float rs = float(1.0 / std::sqrt(ss[r] / double(gs) + double(eps)));
                    for (int64_t i = 0; i < gs; i++)
                        vg[i] = (vg[i] * rs) * w[g * gs + i];  // v · w / sqrt(mean_g(v²) + eps)
                }
            }
        }
    });
}

double log_sum_exp(const float* logits, int64_t n) {
    float m = logits[0];
    for (int64_t i = 1; i < n; i++) m = std::max(m, logits[i]);
    return log_sum_exp_given_max(logits, n, m);
}

namespace {

#pragma GCC push_options
#pragma GCC target("avx512f")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// log_sum_exp_given_max's sum 16 logits at a time: exp16 is exp8 lane for lane, and the 8 double lanes of `acc`
// are its lo | hi accumulators, which take the two 8-float chunks of a vector one after the other, as there.
// A chunk past n adds +0 (every lane of it is masked to 0), which leaves the non-negative sums as they are.
double sum_exp16(const float* logits, int64_t n, float m) {
    const __m512 mv = _mm512_set1_ps(m);
    __m512d acc = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
        const int w = int(std::min<int64_t>(16, n - i));
        const __mmask16 k = __mmask16(w == 16 ? 0xffffu : (1u << w) - 1u);
        const __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, logits + i), mv), 88.7f));
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    alignas(64) double l[8];
    _mm512_store_pd(l, acc);
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}
#pragma GCC diagnostic pop
#pragma GCC pop_options

}  // namespace

double log_sum_exp_given_max(const float* logits, int64_t n, float m, GemmIsa isa) {
    if (isa == GemmIsa::Avx512) return double(m) + std::log(sum_exp16(logits, n, m));
    const __m256 mv = _mm256_set1_ps(m);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (int64_t i = 0; i < n; i += 8) {
        const int w = int(std::min<int64_t>(8, n - i));
        __m256 e = vec::exp8(_mm256_sub_ps(vec::load_n(logits + i, w), mv));
        if (w < 8) e = _mm256_and_ps(e, _mm256_castsi256_ps(vec::tail_mask(w)));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    alignas(32) double l[4], h[4];
    _mm256_store_pd(l, lo);
    _mm256_store_pd(h, hi);
    const double sum = ((l[0] + l[1]) + (l[2] + l[3])) + ((h[0] + h[1]) + (h[2] + h[3]));
    return double(m) + std::log(sum);
}

int64_t arg_max(const float* logits, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

bool max_arg_max(const float* logits, int64_t n, float* max_out, int64_t* arg_out) {
    if (n < 8) return false;
    // Per lane: the largest value and the first index holding it (strict > keeps the first).
    __m256 best = _mm256_loadu_ps(logits);
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), best_idx = idx;
    __m256 nan = _mm256_cmp_ps(best, best, _CMP_UNORD_Q);
    const __m256i step = _mm256_set1_epi32(8);
    int64_t i = 8;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(logits + i);
        idx = _mm256_add_epi32(idx, step);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        const __m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
        best = _mm256_blendv_ps(best, v, gt);
        best_idx = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(best_idx), _mm256_castsi256_ps(idx), gt));
    }
    if (_mm256_movemask_ps(nan) != 0) return false;
    alignas(32) float bv[8];
    alignas(32) int32_t bi[8];
    _mm256_store_ps(bv, best);
    _mm256_store_si256(reinterpret_cast<__m256i*>(bi), best_idx);
    float m = bv[0];
    int64_t arg = bi[0];
    for (int l = 1; l < 8; l++)
        if (bv[l] > m || (bv[l] == m && bi[l] < arg)) {
            m = bv[l];
            arg = bi[l];
        }
    for (; i < n; i++) {  // the tail, in order after every vector element
        if (logits[i] != logits[i]) return false;
        if (logits[i] > m) {
            m = logits[i];
            arg = i;
        }
    }
    *max_out = m;
    *arg_out = arg;
    return true;
}

}  // namespace mamba
