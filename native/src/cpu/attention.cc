// attention.cc — mamba_ssm's MHA (modules/mha.py 224-293) on packed segments, the parts other than the GEMMs:
//
//   [q | k | v | up | gate] = u · in_projᵀ + b                      (gemm, cpu_backend.cc)
//   [q | k | v] ← conv1d([q | k | v]) + b      causal, depthwise, K taps, NO activation   (only when d_conv > 0)
//   q, k ← rotary(q, k, p)                     first rd dims of each head, halves x1 | x2, p = the token's position
//   ctx_h = softmax(scale · q_h · K_gᵀ, causal) · V_g                g = h / (H/Hkv)   (GQA)
//   out = [ctx | up · SiLU(gate)] · out_projᵀ + b                   (mlp.h silu_gate, gemm)
//
// The keys of a segment are the K/V rows of the chain it starts from (KvBlock, one block per saved segment,
// shared between slots) followed by its own rows. Every query row's arithmetic depends only on its own position
// and data, never on which rows share its call, tile or thread, nor on where block boundaries fall.
#include "cpu/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "cpu/vec.h"

namespace mamba {

namespace {

// Largest of the 8 lanes (exact in any order).
inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

constexpr int kMaxConv = 8;

// Query rows of one work item: they share every key row they read, so a key is loaded once per tile.
constexpr int kTile = 16;

}  // namespace

// ---------------------------------------------------------------- K/V chains

KvBlock::KvBlock(std::shared_ptr<KvBlock> p, int64_t st, int64_t n, int n_layers, const AttentionDims& a)
    : parent(std::move(p)), start(st), rows(n), heads_(a.Hkv), hd_(a.hd), cap_(n), layers_(size_t(n_layers)) {
    for (auto& l : layers_) l.resize(size_t(2 * heads_ * cap_ * hd_));
}

KvBlock::~KvBlock() {
    // Destroy the parents this block alone keeps alive one after another instead of each from the next's
    // destructor (a chain of many blocks would otherwise recurse that deep).
    std::shared_ptr<KvBlock> p = std::move(parent);
    while (p && p.use_count() == 1) {
        std::shared_ptr<KvBlock> next = std::move(p->parent);
        p.reset();
        p = std::move(next);
    }
}

void KvBlock::grow(int64_t n) {
    if (rows + n > cap_) {
        const int64_t cap = std::max(rows + n, 2 * cap_);
        for (auto& l : layers_) {
            std::vector<float> wider(size_t(2 * heads_ * cap * hd_));
            for (int64_t h = 0; h < 2 * heads_; h++)  // each K / V head's rows move to their wider place
                std::memcpy(wider.data() + h * cap * hd_, l.data() + h * cap_ * hd_, size_t(rows * hd_) * sizeof(float));
            l.swap(wider);
        }
        cap_ = cap;
    }
    rows += n;
}

void KvBlock::store(int l, int64_t r0, const float* kv, int64_t T, int64_t t0, int64_t n) {
    for (int64_t h = 0; h < 2 * heads_; h++)
        std::memcpy(layers_[size_t(l)].data() + (h * cap_ + r0) * hd_, kv + (h * T + t0) * hd_, size_t(n * hd_) * sizeof(float));
}

void KvBlock::read_row(int l, int64_t r, float* out) const {
    for (int64_t h = 0; h < 2 * heads_; h++)
        std::memcpy(out + h * hd_, layers_[size_t(l)].data() + (h * cap_ + r) * hd_, size_t(hd_) * sizeof(float));
}

void KvBlock::write_row(int l, int64_t r, const float* in) {
    for (int64_t h = 0; h < 2 * heads_; h++)
        std::memcpy(layers_[size_t(l)].data() + (h * cap_ + r) * hd_, in + h * hd_, size_t(hd_) * sizeof(float));
}

std::vector<KvRun> chain_runs(const KvChain& chain) {
    std::vector<KvRun> runs;
    int64_t end = chain.length;  // rows of the chain from here down
    for (const KvBlock* b = chain.tail.get(); b != nullptr && end > 0; b = b->parent.get()) {
        const int64_t use = std::min(b->rows, end - b->start);
        if (use > 0) runs.push_back({b, use});
        end = b->start;
    }
    std::reverse(runs.begin(), runs.end());
    return runs;
}

// ---------------------------------------------------------------- rotary table

void RotaryTable::ensure(int64_t n) {
    if (n <= n_ || rd_ == 0) return;
    const int64_t half = rd_ / 2;
    const int64_t cap = std::max(n, 2 * n_);  // grow geometrically: a decode adds one position per step
    cos_.resize(size_t(cap * half));
    sin_.resize(size_t(cap * half));
    for (int64_t p = n_; p < cap; p++)
        for (int64_t i = 0; i < half; i++) {
            // θ = p · inv_freq[i],  inv_freq[i] = 1 / base^(2i / rd)   (in double, then rounded once)
            const double theta = double(p) * (1.0 / std::pow(base_, double(2 * i) / double(rd_)));
            cos_[size_t(p * half + i)] = float(std::cos(theta));
            sin_[size_t(p * half + i)] = float(std::sin(theta));
        }
    n_ = cap;
}

// ---------------------------------------------------------------- conv (no activation)

void conv_channels_no_act(const float* in, int64_t ldi, int64_t C, int K, const float* wT, const float* bias,
                          const std::vector<SegmentState>& segs, float* out, ThreadPool& pool) {
    if (K < 1 || K > kMaxConv) throw std::runtime_error("attention d_conv must be in [1, 8]");
    pool.parallel_for(C, 8, [&](int64_t c0, int64_t c1) {
        // Each thread walks every segment in order over its channels, so a segment starting from a state an
        // earlier segment of the call saved reads it after it was written.
        for (const SegmentState& s : segs) {
            for (int64_t c = c0; c < c1; c += 8) {
                const int w = int(std::min<int64_t>(8, c1 - c));
                __m256 win[kMaxConv];  // win[0..K-2]: previous inputs (oldest first), win[K-1]: current
                for (int j = 0; j < K - 1; j++)
                    win[j] = s.conv_init ? vec::load_n(s.conv_init + j * C + c, w) : _mm256_setzero_ps();
                __m256 wk[kMaxConv];
                for (int j = 0; j < K; j++) wk[j] = vec::load_n(wT + j * C + c, w);
                const __m256 b = bias ? vec::load_n(bias + c, w) : _mm256_setzero_ps();
                for (int64_t t = s.t0; t < s.t1; t++) {
                    win[K - 1] = vec::load_n(in + t * ldi + c, w);
                    __m256 acc = _mm256_setzero_ps();
                    for (int j = 0; j < K; j++) acc = _mm256_fmadd_ps(wk[j], win[j], acc);  // Σ_j w[j]·x[t−K+1+j]
                    vec::store_n(out + t * C + c, _mm256_add_ps(acc, b), w);                      // + bias
                    for (int j = 0; j + 1 < K; j++) win[j] = win[j + 1];
                }
                if (s.conv_save)
                    for (int j = 0; j < K - 1; j++) vec::store_n(s.conv_save + j * C + c, win[j], w);
            }
        }
    });
}

// ---------------------------------------------------------------- K, V head-major

void gather_kv(const float* qkv, int64_t ld, int64_t T, const AttentionDims& a, float* kv, ThreadPool& pool) {
    pool.parallel_for(T, 16, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++)
            for (int64_t h = 0; h < 2 * a.Hkv; h++)  // kv[h][t] = the row's k head h (h < Hkv) or v head h − Hkv
                std::memcpy(kv + (h * T + t) * a.hd, qkv + t * ld + a.H * a.hd + h * a.hd, size_t(a.hd) * sizeof(float));
    });
}

// ---------------------------------------------------------------- rotary

void apply_rotary(float* qkv, int64_t ld, int64_t T, const int64_t* pos, const AttentionDims& a, const RotaryTable& rot,
                  ThreadPool& pool) {
    const int64_t half = a.rd / 2, heads = a.H + a.Hkv;  // q heads, then k heads (contiguous in a row)
    if (half == 0) return;
    pool.parallel_for(T, 16, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) {
            const float* c = rot.cos(pos[t]);
            const float* s = rot.sin(pos[t]);
            for (int64_t h = 0; h < heads; h++) {
                float* x = qkv + t * ld + h * a.hd;
                for (int64_t i = 0; i < half; i++) {  // [x1, x2] → [x1·cos − x2·sin, x2·cos + x1·sin]
                    const float x1 = x[i], x2 = x[i + half];
                    x[i] = x1 * c[i] - x2 * s[i];
                    x[i + half] = x2 * c[i] + x1 * s[i];
                }
            }
        }
    });
}

// ---------------------------------------------------------------- attention

namespace {

struct Item {
    int32_t seg, head;
    int64_t r0, r1;  // query rows [r0, r1) of the segment
};

// Per-thread scratch of one work item.
struct Scratch {
    std::vector<float> q;       // [kTile][hd8] query rows, zero-padded to a multiple of 8
    std::vector<float> scores;  // [kTile][keys] scores, then exp(score − max)
    std::vector<float> acc;     // [kTile][hd8] Σ_j e_j · v_j
};

// q·k over hd dims: eight lane partial sums (lane l takes d ≡ l mod 8, increasing d, one FMA each), reduced by
// vec::hsum. q is zero-padded to a multiple of 8, the tail of k is read masked.
inline float dot(const float* q, const float* k, int64_t hd) {
    __m256 acc = _mm256_setzero_ps();
    int64_t d = 0;
    for (; d + 8 <= hd; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), acc);
    if (d < hd) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), vec::load_n(k + d, int(hd - d)), acc);
    return vec::hsum(acc);
}

void attend_tile(const float* qkv, int64_t ld, const float* kv, int64_t T, const AttentionDims& a, float scale, int layer,
                 const AttnSegment& sg, const Item& it, float* ctx, int64_t ldc, Scratch& sc) {
    const int64_t hd = a.hd, hd8 = (hd + 7) / 8 * 8, H = a.H, Hkv = a.Hkv;
    const int64_t g = it.head / (H / Hkv);
    const int nq = int(it.r1 - it.r0);
    const int64_t base = sg.pos0 + it.r0;  // position of the tile's first query
    const int64_t keys = base + nq;        // keys of the tile's last query: positions [0, keys)
    const float* call_k = kv + (g * T + sg.t0) * hd;          // the segment's own K rows of head g, then V rows
    const float* call_v = kv + ((Hkv + g) * T + sg.t0) * hd;

    sc.q.assign(size_t(kTile * hd8), 0.0f);
    sc.acc.assign(size_t(kTile * hd8), 0.0f);
    if (sc.scores.size() < size_t(kTile * keys)) sc.scores.resize(size_t(kTile * keys));
    for (int i = 0; i < nq; i++)
        std::memcpy(sc.q.data() + i * hd8, qkv + (sg.t0 + it.r0 + i) * ld + it.head * hd, size_t(hd) * sizeof(float));

    // Calls f(j, k_row, v_row) for key positions j = 0 .. keys−1 in order: the chain's rows, then the segment's.
    auto for_each_key = [&](auto&& f) {
        int64_t j = 0;
        for (const KvRun& run : sg.past) {
            const float* k = run.block->k(layer, g, 0);
            const float* v = run.block->v(layer, g, 0);
            for (int64_t r = 0; r < run.rows; r++, j++) f(j, k + r * hd, v + r * hd);
        }
        for (int64_t r = 0; j < keys; r++, j++) f(j, call_k + r * hd, call_v + r * hd);
    };
    // Query i (position base + i) sees keys j ≤ base + i: the first query seeing key j is max(0, j − base).
    auto first_query = [&](int64_t j) { return int(std::max<int64_t>(0, j - base)); };

    // s[i][j] = scale · q_i · k_j
    for_each_key([&](int64_t j, const float* k, const float*) {
        for (int i = first_query(j); i < nq; i++) sc.scores[size_t(i * keys + j)] = dot(sc.q.data() + i * hd8, k, hd) * scale;
    });

    // e[i][j] = exp(s[i][j] − max_j s[i][j]),  sum_i = Σ_j e[i][j]   (8 lanes by j mod 8, then vec::hsum)
    float sum_e[kTile];
    for (int i = 0; i < nq; i++) {
        float* s = sc.scores.data() + i * keys;
        const int64_t n = base + i + 1;
        __m256 mv = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
        if (j < n) {
            const __m256i mask = vec::tail_mask(int(n - j));
            mv = _mm256_max_ps(mv, _mm256_blendv_ps(mv, _mm256_maskload_ps(s + j, mask), _mm256_castsi256_ps(mask)));
        }
        const __m256 m = _mm256_set1_ps(hmax(mv));
        __m256 sum = _mm256_setzero_ps();
        for (j = 0; j + 8 <= n; j += 8) {
            const __m256 e = vec::exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
            _mm256_storeu_ps(s + j, e);
            sum = _mm256_add_ps(sum, e);
        }
        if (j < n) {
            const int w = int(n - j);
            const __m256 e = _mm256_and_ps(vec::exp8(_mm256_sub_ps(vec::load_n(s + j, w), m)),
                                           _mm256_castsi256_ps(vec::tail_mask(w)));
            vec::store_n(s + j, e, w);
            sum = _mm256_add_ps(sum, e);
        }
        sum_e[i] = vec::hsum(sum);
    }

    // acc[i] = Σ_j e[i][j] · v_j   (in position order, one FMA per element)
    const int64_t full = hd / 8 * 8;
    const int tail = int(hd - full);
    for_each_key([&](int64_t j, const float*, const float* v) {
        for (int i = first_query(j); i < nq; i++) {
            const __m256 e = _mm256_set1_ps(sc.scores[size_t(i * keys + j)]);
            float* acc = sc.acc.data() + i * hd8;
            for (int64_t d = 0; d < full; d += 8)
                _mm256_storeu_ps(acc + d, _mm256_fmadd_ps(e, _mm256_loadu_ps(v + d), _mm256_loadu_ps(acc + d)));
            if (tail) _mm256_storeu_ps(acc + full, _mm256_fmadd_ps(e, vec::load_n(v + full, tail), _mm256_loadu_ps(acc + full)));
        }
    });

    // ctx[t][h·hd + d] = acc[i][d] / sum_i
    for (int i = 0; i < nq; i++) {
        const __m256 sum = _mm256_set1_ps(sum_e[i]);
        float* out = ctx + (sg.t0 + it.r0 + i) * ldc + it.head * hd;
        const float* acc = sc.acc.data() + i * hd8;
        for (int64_t d = 0; d < hd; d += 8) {
            const int w = int(std::min<int64_t>(8, hd - d));
            vec::store_n(out + d, _mm256_div_ps(_mm256_loadu_ps(acc + d), sum), w);
        }
    }
}

}  // namespace

void attention(const float* qkv, int64_t ld, const float* kv, int64_t T, const AttentionDims& a, float scale,
               int layer, const std::vector<AttnSegment>& segs, float* ctx, int64_t ldc, ThreadPool& pool) {
    std::vector<Item> items;
    for (size_t s = 0; s < segs.size(); s++) {
        const int64_t n = segs[s].t1 - segs[s].t0;
        for (int64_t h = 0; h < a.H; h++)
            for (int64_t r0 = 0; r0 < n; r0 += kTile) items.push_back({int32_t(s), int32_t(h), r0, std::min(n, r0 + kTile)});
    }
    // Items go to whichever thread is free (later rows of a segment have more keys): the outputs do not depend
    // on which thread computes them.
    std::atomic<size_t> next{0};
    pool.run([&](int, int) {
        thread_local Scratch sc;
        for (size_t i = next.fetch_add(1); i < items.size(); i = next.fetch_add(1))
            attend_tile(qkv, ld, kv, T, a, scale, layer, segs[size_t(items[i].seg)], items[i], ctx, ldc, sc);
    });
}

}  // namespace mamba
