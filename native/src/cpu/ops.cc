// ops.cc — see ops.h. Channel-parallel kernels split channels (or heads) into contiguous ranges per thread;
// each thread walks all segments in order, so a segment that starts from a state an earlier segment saved
// reads it after it was written (same thread, same channels).
#include "cpu/ops.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "cpu/vec.h"

namespace mamba {

namespace {

// Loads/stores w (1..8) lanes; unused lanes read as 0.
inline __m256 load_n(const float* p, int w) {
    return w == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, vec::tail_mask(w));
}
inline void store_n(float* p, __m256 v, int w) {
    if (w == 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, vec::tail_mask(w), v);
}

// y ← y · SiLU(z), elementwise over n floats (z SiLU computed 8 at a time, tail masked).
void mul_silu(float* y, const float* z, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        const int w = int(std::min<int64_t>(8, n - i));
        store_n(y + i, _mm256_mul_ps(load_n(y + i, w), vec::silu8(load_n(z + i, w))), w);
    }
}

constexpr int kMaxConv = 8;

// Tokens per block of the Mamba-1 scan: softplus(dt) of a block is computed before its recurrence, and every
// channel group of a thread goes through a block before the next block starts.
constexpr int kScanBlock = 16;

}  // namespace

void rms_norm(const float* x, int64_t ldx, int64_t T, int64_t n, const float* w, float eps, float* out,
              int64_t ldo, ThreadPool& pool) {
    pool.parallel_for(T, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) {
            const float* xr = x + t * ldx;
            float* o = out + t * ldo;
            double ss = 0;
            for (int64_t i = 0; i < n; i++) ss += double(xr[i]) * double(xr[i]);
            const float r = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
            for (int64_t i = 0; i < n; i++) o[i] = (xr[i] * r) * w[i];
        }
    });
}

void conv_silu_channels(const float* in, int64_t ldi, int64_t C, int K, const float* wT, const float* bias,
                        const std::vector<SegmentState>& segs, float* out, int64_t c0, int64_t c1) {
    if (K < 1 || K > kMaxConv) throw std::runtime_error("d_conv must be in [1, 8]");
    for (const SegmentState& s : segs) {
        for (int64_t c = c0; c < c1; c += 8) {
            const int w = int(std::min<int64_t>(8, c1 - c));
            __m256 win[kMaxConv];  // win[0..K-2]: previous inputs (oldest first), win[K-1]: current
            for (int j = 0; j < K - 1; j++)
                win[j] = s.conv_init ? load_n(s.conv_init + j * C + c, w) : _mm256_setzero_ps();
            __m256 wk[kMaxConv];
            for (int j = 0; j < K; j++) wk[j] = load_n(wT + j * C + c, w);
            const __m256 b = bias ? load_n(bias + c, w) : _mm256_setzero_ps();
            for (int64_t t = s.t0; t < s.t1; t++) {
                win[K - 1] = load_n(in + t * ldi + c, w);
                __m256 acc = _mm256_setzero_ps();
                for (int j = 0; j < K; j++) acc = _mm256_fmadd_ps(wk[j], win[j], acc);
                store_n(out + t * C + c, vec::silu8(_mm256_add_ps(acc, b)), w);
                for (int j = 0; j + 1 < K; j++) win[j] = win[j + 1];
            }
            if (s.conv_save)
                for (int j = 0; j < K - 1; j++) store_n(s.conv_save + j * C + c, win[j], w);
        }
    }
}

void conv_silu(const float* in, int64_t ldi, int64_t C, int K, const float* wT, const float* bias,
               const std::vector<SegmentState>& segs, float* out, ThreadPool& pool) {
    if (K < 1 || K > kMaxConv) throw std::runtime_error("d_conv must be in [1, 8]");
    pool.parallel_for(C, 8, [&](int64_t c0, int64_t c1) { conv_silu_channels(in, ldi, C, K, wT, bias, segs, out, c0, c1); });
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
    const __m256 d = load_n(p.D + e, w);
    alignas(32) float dtb[kScanBlock][8];
    for (int i = 0; i < nt; i++) _mm256_store_ps(dtb[i], vec::softplus8(load_n(p.dt_raw + (t0 + i) * E + e, w)));
    for (int i = 0; i < nt; i++) {
        const int64_t t = t0 + i;
        const __m256 dtv = _mm256_load_ps(dtb[i]);
        const __m256 xv = load_n(p.x + t * E + e, w);
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
        const __m256 gate = vec::silu8(load_n(p.z + t * p.ldz + e, w));
        store_n(p.y + t * E + e, _mm256_mul_ps(yv, gate), w);
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
        for (int64_t n = 0; n < N; n++) {
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

void mamba1_scan_channels(const float* x, const float* dt_raw, const float* B, const float* Cm, int64_t ldbc,
                          const float* z, int64_t ldz, const float* AT, const float* D, int64_t E, int64_t N,
                          const std::vector<SegmentState>& segs, float* y, int64_t e0, int64_t e1, GemmIsa isa) {
    const ScanArgs p{x, dt_raw, B, Cm, ldbc, z, ldz, AT, D, E, N, y};
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
                    _mm256_storeu_ps(h + n * L + k, s.ssm_init ? load_n(s.ssm_init + n * E + e + k, wk) : _mm256_setzero_ps());
                    _mm256_storeu_ps(a + n * L + k, load_n(AT + n * E + e + k, wk));
                }
        }
        for (int64_t tb = s.t0; tb < s.t1; tb += kScanBlock) {
            const int nt = int(std::min<int64_t>(kScanBlock, s.t1 - tb));
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
                        store_n(s.ssm_save + n * E + e + k, _mm256_loadu_ps(hbuf.data() + (g * N + n) * L + k),
                                std::min(8, w - k));
            }
    }
}

void mamba2_scan(const float* xbc, int64_t ldx, const float* dt_raw, int64_t ldd, const float* dt_bias,
                 const float* A, const float* D, int64_t H, int64_t P, int64_t G, int64_t N,
                 const std::vector<SegmentState>& segs, float* y, ThreadPool& pool) {
    const int64_t E = H * P;
    const int64_t heads_per_group = H / G;
    const int64_t NC = (N + 7) / 8;  // 8-lane chunks of the state dimension
    pool.parallel_for(H, 1, [&](int64_t h0, int64_t h1) {
        std::vector<float> Sbuf(size_t(P * NC * 8));  // [P][NC·8] state of one head, N padded to 8
        std::vector<float> bbuf(size_t(NC * 8)), cbuf(size_t(NC * 8));
        float* S = Sbuf.data();
        float* b = bbuf.data();
        float* c = cbuf.data();
        for (const SegmentState& s : segs) {
            for (int64_t hd = h0; hd < h1; hd++) {
                const int64_t g = hd / heads_per_group;
                const int64_t so = hd * P * N;  // this head's offset in the layer state
                for (int64_t p = 0; p < P; p++)
                    for (int64_t k = 0; k < NC; k++) {
                        const int w = int(std::min<int64_t>(8, N - 8 * k));
                        _mm256_storeu_ps(S + (p * NC + k) * 8,
                                         s.ssm_init ? load_n(s.ssm_init + so + p * N + 8 * k, w) : _mm256_setzero_ps());
                    }
                for (int64_t t = s.t0; t < s.t1; t++) {
                    const float* row = xbc + t * ldx;
                    float dtv = dt_raw[t * ldd + hd] + dt_bias[hd];
                    dtv = dtv > 20.0f ? dtv : std::log1p(std::exp(dtv));
                    const __m256 decay = vec::exp8(_mm256_set1_ps(dtv * A[hd]));
                    for (int64_t k = 0; k < NC; k++) {
                        const int w = int(std::min<int64_t>(8, N - 8 * k));
                        _mm256_storeu_ps(b + 8 * k, load_n(row + E + g * N + 8 * k, w));
                        _mm256_storeu_ps(c + 8 * k, load_n(row + E + G * N + g * N + 8 * k, w));
                    }
                    for (int64_t p = 0; p < P; p++) {
                        const float xp = row[hd * P + p];
                        const __m256 dtx = _mm256_set1_ps(dtv * xp);
                        __m256 acc = _mm256_setzero_ps();
                        for (int64_t k = 0; k < NC; k++) {
                            float* sp = S + (p * NC + k) * 8;
                            const __m256 st = _mm256_fmadd_ps(decay, _mm256_loadu_ps(sp),
                                                              _mm256_mul_ps(dtx, _mm256_loadu_ps(b + 8 * k)));
                            _mm256_storeu_ps(sp, st);
                            acc = _mm256_fmadd_ps(st, _mm256_loadu_ps(c + 8 * k), acc);
                        }
                        y[t * E + hd * P + p] = std::fma(D[hd], xp, vec::hsum(acc));
                    }
                }
                if (s.ssm_save)
                    for (int64_t p = 0; p < P; p++)
                        for (int64_t k = 0; k < NC; k++)
                            store_n(s.ssm_save + so + p * N + 8 * k, _mm256_loadu_ps(S + (p * NC + k) * 8),
                                    int(std::min<int64_t>(8, N - 8 * k)));
            }
        }
    });
}

void gated_rms_norm(float* y, const float* z, int64_t ldz, int64_t T, int64_t E, int64_t G, const float* w,
                    float eps, ThreadPool& pool) {
    const int64_t gs = E / G;
    pool.parallel_for(T, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) {
            float* v = y + t * E;
            mul_silu(v, z + t * ldz, E);
            for (int64_t g = 0; g < G; g++) {
                float* vg = v + g * gs;
                double ss = 0;
                for (int64_t i = 0; i < gs; i++) ss += double(vg[i]) * double(vg[i]);
                const float r = float(1.0 / std::sqrt(ss / double(gs) + double(eps)));
                for (int64_t i = 0; i < gs; i++) vg[i] = (vg[i] * r) * w[g * gs + i];
            }
        }
    });
}

double log_sum_exp(const float* logits, int64_t n) {
    float m = logits[0];
    for (int64_t i = 1; i < n; i++) m = std::max(m, logits[i]);
    return log_sum_exp_given_max(logits, n, m);
}

double log_sum_exp_given_max(const float* logits, int64_t n, float m) {
    const __m256 mv = _mm256_set1_ps(m);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (int64_t i = 0; i < n; i += 8) {
        const int w = int(std::min<int64_t>(8, n - i));
        __m256 e = vec::exp8(_mm256_sub_ps(load_n(logits + i, w), mv));
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
