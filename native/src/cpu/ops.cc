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

// Channel groups of 8 that one Mamba-1 scan loop carries (compile-time, for experiments: 1–4 measured alike,
// docs/perf-notes.md).
#ifndef SCAN_GROUPS
#define SCAN_GROUPS 1
#endif

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

// The scan of G groups of 8 channels (channels e .. e + 8G, `w` lanes valid in the last group) over one
// segment. Each lane's arithmetic is exactly the one-group loop's, whatever G is.
template <int G>
void scan_groups(const float* x, const float* dt_raw, const float* B, const float* Cm, int64_t ldbc, const float* z,
                 int64_t ldz, const float* AT, const float* D, int64_t E, int64_t N, const SegmentState& s, int64_t e,
                 int w, float* h, float* a, float* y) {
    constexpr int L = 8 * G;  // floats per state row of the scratch: [N][L]
    auto width = [&](int g) { return g == G - 1 ? w : 8; };
    for (int64_t n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            _mm256_storeu_ps(h + L * n + 8 * g, s.ssm_init ? load_n(s.ssm_init + n * E + e + 8 * g, width(g)) : _mm256_setzero_ps());
            _mm256_storeu_ps(a + L * n + 8 * g, load_n(AT + n * E + e + 8 * g, width(g)));
        }
    __m256 d[G];
    for (int g = 0; g < G; g++) d[g] = load_n(D + e + 8 * g, width(g));
    // Tokens go in blocks of kTokBlock: softplus(dt) of a whole block is computed first (independent work
    // the core can overlap), so its latency is not on the path of every token's state update.
    constexpr int kTokBlock = 16;
    alignas(32) float dtb[kTokBlock][L];
    for (int64_t tb = s.t0; tb < s.t1; tb += kTokBlock) {
        const int nt = int(std::min<int64_t>(kTokBlock, s.t1 - tb));
        for (int i = 0; i < nt; i++)
            for (int g = 0; g < G; g++)
                _mm256_store_ps(&dtb[i][8 * g], vec::softplus8(load_n(dt_raw + (tb + i) * E + e + 8 * g, width(g))));
        for (int i = 0; i < nt; i++) {
            const int64_t t = tb + i;
            __m256 dtv[G], xv[G], dtx[G], acc[G];
            for (int g = 0; g < G; g++) {
                dtv[g] = _mm256_load_ps(&dtb[i][8 * g]);
                xv[g] = load_n(x + t * E + e + 8 * g, width(g));
                dtx[g] = _mm256_mul_ps(dtv[g], xv[g]);
                acc[g] = _mm256_setzero_ps();
            }
            const float* bt = B + t * ldbc;
            const float* ct = Cm + t * ldbc;
            for (int64_t n = 0; n < N; n++) {
                const __m256 bn = _mm256_set1_ps(bt[n]), cn = _mm256_set1_ps(ct[n]);
                for (int g = 0; g < G; g++) {
                    float* hp = h + L * n + 8 * g;
                    const __m256 decay = vec::exp8(_mm256_mul_ps(dtv[g], _mm256_loadu_ps(a + L * n + 8 * g)));
                    const __m256 hn = _mm256_fmadd_ps(decay, _mm256_loadu_ps(hp), _mm256_mul_ps(dtx[g], bn));
                    _mm256_storeu_ps(hp, hn);
                    acc[g] = _mm256_fmadd_ps(hn, cn, acc[g]);
                }
            }
            for (int g = 0; g < G; g++) {
                const __m256 yv = _mm256_fmadd_ps(d[g], xv[g], acc[g]);
                const __m256 gate = vec::silu8(load_n(z + t * ldz + e + 8 * g, width(g)));
                store_n(y + t * E + e + 8 * g, _mm256_mul_ps(yv, gate), width(g));
            }
        }
    }
    if (s.ssm_save)
        for (int64_t n = 0; n < N; n++)
            for (int g = 0; g < G; g++) store_n(s.ssm_save + n * E + e + 8 * g, _mm256_loadu_ps(h + L * n + 8 * g), width(g));
}

}  // namespace

void mamba1_scan_channels(const float* x, const float* dt_raw, const float* B, const float* Cm, int64_t ldbc,
                          const float* z, int64_t ldz, const float* AT, const float* D, int64_t E, int64_t N,
                          const std::vector<SegmentState>& segs, float* y, int64_t e0, int64_t e1) {
    constexpr int kGroups = SCAN_GROUPS;
    thread_local std::vector<float> hbuf, abuf;  // [N][8·kGroups]: states and A of the channels in flight
    if (hbuf.size() < size_t(N) * 8 * kGroups) {
        hbuf.resize(size_t(N) * 8 * kGroups);
        abuf.resize(size_t(N) * 8 * kGroups);
    }
    for (const SegmentState& s : segs) {
        int64_t e = e0;
        for (; e + 8 * kGroups <= e1; e += 8 * kGroups)
            scan_groups<kGroups>(x, dt_raw, B, Cm, ldbc, z, ldz, AT, D, E, N, s, e, 8, hbuf.data(), abuf.data(), y);
        for (; e < e1; e += 8)
            scan_groups<1>(x, dt_raw, B, Cm, ldbc, z, ldz, AT, D, E, N, s, e, int(std::min<int64_t>(8, e1 - e)),
                           hbuf.data(), abuf.data(), y);
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
