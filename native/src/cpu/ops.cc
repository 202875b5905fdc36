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

void conv_silu(const float* in, int64_t ldi, int64_t C, int K, const float* wT, const float* bias,
               const std::vector<SegmentState>& segs, float* out, ThreadPool& pool) {
    if (K < 1 || K > kMaxConv) throw std::runtime_error("d_conv must be in [1, 8]");
    pool.parallel_for(C, 8, [&](int64_t c0, int64_t c1) {
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
    });
}

void softplus_rows(float* x, int64_t ldx, int64_t T, int64_t n, ThreadPool& pool) {
    pool.parallel_for(T, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++)
            for (int64_t i = 0; i < n; i += 8) {
                const int w = int(std::min<int64_t>(8, n - i));
                float* p = x + t * ldx + i;
                store_n(p, vec::softplus8(load_n(p, w)), w);
            }
    });
}

void mamba1_scan(const float* x, const float* dt, const float* B, const float* Cm, int64_t ldbc, const float* z,
                 int64_t ldz, const float* AT, const float* D, int64_t E, int64_t N,
                 const std::vector<SegmentState>& segs, float* y, ThreadPool& pool) {
    pool.parallel_for(E, 8, [&](int64_t e0, int64_t e1) {
        std::vector<float> hbuf(size_t(N) * 8), abuf(size_t(N) * 8);  // [N][8]: states and A of 8 channels
        float* h = hbuf.data();
        float* a = abuf.data();
        for (const SegmentState& s : segs) {
            for (int64_t e = e0; e < e1; e += 8) {
                const int w = int(std::min<int64_t>(8, e1 - e));
                for (int64_t n = 0; n < N; n++) {
                    _mm256_storeu_ps(h + 8 * n, s.ssm_init ? load_n(s.ssm_init + n * E + e, w) : _mm256_setzero_ps());
                    _mm256_storeu_ps(a + 8 * n, load_n(AT + n * E + e, w));
                }
                const __m256 d = load_n(D + e, w);
                for (int64_t t = s.t0; t < s.t1; t++) {
                    const __m256 dtv = load_n(dt + t * E + e, w);
                    const __m256 xv = load_n(x + t * E + e, w);
                    const __m256 dtx = _mm256_mul_ps(dtv, xv);
                    const float* bt = B + t * ldbc;
                    const float* ct = Cm + t * ldbc;
                    __m256 acc = _mm256_setzero_ps();
                    for (int64_t n = 0; n < N; n++) {
                        const __m256 decay = vec::exp8(_mm256_mul_ps(dtv, _mm256_loadu_ps(a + 8 * n)));
                        const __m256 hn = _mm256_fmadd_ps(decay, _mm256_loadu_ps(h + 8 * n),
                                                          _mm256_mul_ps(dtx, _mm256_set1_ps(bt[n])));
                        _mm256_storeu_ps(h + 8 * n, hn);
                        acc = _mm256_fmadd_ps(hn, _mm256_set1_ps(ct[n]), acc);
                    }
                    const __m256 yv = _mm256_fmadd_ps(d, xv, acc);
                    const __m256 gate = vec::silu8(load_n(z + t * ldz + e, w));
                    store_n(y + t * E + e, _mm256_mul_ps(yv, gate), w);
                }
                if (s.ssm_save)
                    for (int64_t n = 0; n < N; n++) store_n(s.ssm_save + n * E + e, _mm256_loadu_ps(h + 8 * n), w);
            }
        }
    });
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

}  // namespace mamba
