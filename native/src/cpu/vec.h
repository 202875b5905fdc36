// vec.h — AVX2/FMA helpers used by the CPU kernels. Nothing here knows about Mamba.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace mamba::vec {

// Sum of the 8 lanes in one fixed order: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
// Every reduction in the kernels goes through this one function, so results never depend on the path.
inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // (l0+l4, l1+l5, ...)
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                          // (.. + l2+l6, .. + l3+l7)
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Lane mask with the first n (0..8) lanes enabled, for masked loads/stores of a tail.
inline __m256i tail_mask(int n) {
    alignas(32) static const int32_t ramp[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ramp + 8 - n));
}

// Loads/stores the first w (1..8) lanes; unused lanes read as 0.
inline __m256 load_n(const float* p, int w) {
    return w == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(w));
}
inline void store_n(float* p, __m256 v, int w) {
    if (w == 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, tail_mask(w), v);
}

// 8 bf16 values → 8 floats (exact).
inline __m256 load_bf16(const uint16_t* p) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// The first n (< 8) bf16 values → floats, remaining lanes 0.
inline __m256 load_bf16_tail(const uint16_t* p, int n) {
    alignas(16) uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < n; i++) tmp[i] = p[i];
    return load_bf16(tmp);
}

// The constants of exp and log, shared by these 8-lane versions and ops.cc's 16-lane ones (Cephes expf / logf).
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f;      // ln2 = kLn2Hi + kLn2Lo, kLn2Hi exact in a few bits
inline constexpr float kLn2Lo = -2.12194440e-4f;
// e^r ≈ 1 + r + r²·P(r), P's coefficients highest power first.
inline constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                      4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
// log(1 + r) ≈ r − r²/2 + r³·Q(r), Q's coefficients highest power first.
inline constexpr float kLogPoly[9] = {7.0376836292e-2f, -1.1514610310e-1f, 1.1676998740e-1f,
                                      -1.2420140846e-1f, 1.4249322787e-1f, -1.6668057665e-1f,
                                      2.0000714765e-1f, -2.4999993993e-1f, 3.3333331174e-1f};

// The common part of exp8 and exp8_le88, for x already clamped: n = round(x·log₂e), r = x − n·ln2 (two-part ln2,
// |r| ≤ ln2/2), and returns e^r by a degree-6 polynomial; the caller scales by 2^n.
inline __m256 exp8_reduced(__m256 x, __m256& n) {
    n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
    __m256 p = _mm256_set1_ps(kExpPoly[0]);
    for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[i]));
    return _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
}

// e^x for 8 lanes: range reduction x = n·ln2 + r (|r| ≤ ln2/2), degree-6 polynomial for e^r, scale by 2^n.
// Relative error ≈ 2 ulp over the clamped range [-87.3, 88.7]; below it returns ≈ 1e-38, not 0.
inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    __m256 n;
    const __m256 p = exp8_reduced(x, n);
    // 2^n: put n + 127 into the exponent field (n ∈ [-126, 128] after the clamp; split to stay in range)
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i half = _mm256_srai_epi32(ni, 1);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
    const __m256 s2 = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// exp8 for arguments up to 88.0 (the scan's decays exp(Δ·A), Δ ≥ 0, A < 0): bit for bit exp8's result for every
// x ≤ 88.0 (NaN and −∞ included), with 2^n applied as one multiply instead of two. The split in exp8 exists only
// for n = 128; here n ≤ 127, so 2^n is a normal float, and p·2^n (one rounding) equals (p·2^⌊n/2⌋)·2^(n−⌊n/2⌋)
// (an exact product, then the same one rounding, subnormal results included). Arguments above 88.0 are clamped.
inline __m256 exp8_le88(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.0f));
    __m256 n;
    const __m256 p = exp8_reduced(x, n);
    const __m256i ni = _mm256_cvtps_epi32(n);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23)));
}

// ln(x) for 8 lanes of finite x > 0 (Cephes logf scheme): x = m·2^e with m ∈ [√½, √2), a degree-8
// polynomial in m − 1, plus e·ln2 split in two parts. Relative error ≈ 1–2 ulp.
inline __m256 log8(__m256 x) {
    const __m256i bits = _mm256_castps_si256(x);
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                   _mm256_set1_epi32(0x3f800000)));  // m ∈ [1, 2)
    const __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356237f), _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);  // m ∈ [√½, √2)
    e = _mm256_add_epi32(e, _mm256_and_si256(_mm256_castps_si256(big), _mm256_set1_epi32(1)));
    const __m256 ef = _mm256_cvtepi32_ps(e);
    const __m256 r = _mm256_sub_ps(m, _mm256_set1_ps(1.0f));
    const __m256 r2 = _mm256_mul_ps(r, r);
    __m256 p = _mm256_set1_ps(kLogPoly[0]);
    for (int i = 1; i < 9; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kLogPoly[i]));
    p = _mm256_mul_ps(_mm256_mul_ps(p, r), r2);                         // r³·Q(r)
    p = _mm256_fmadd_ps(ef, _mm256_set1_ps(kLn2Lo), p);                 // + e·ln2 (low part)
    p = _mm256_fnmadd_ps(r2, _mm256_set1_ps(0.5f), p);                  // − r²/2
    return _mm256_add_ps(_mm256_add_ps(r, p), _mm256_mul_ps(ef, _mm256_set1_ps(kLn2Hi)));  // + r + e·ln2 (high)
}

// softplus(x) = log(1 + eˣ) for 8 lanes, as torch.nn.functional.softplus (x itself above 20). log1p(u) for
// u = eˣ is computed as log(1 + u) − ((1 + u) − 1 − u)/(1 + u), which keeps full relative accuracy for tiny u.
inline __m256 softplus8(__m256 x) {
    const __m256 u = exp8(x);
    const __m256 y = _mm256_add_ps(_mm256_set1_ps(1.0f), u);
    const __m256 corr = _mm256_div_ps(_mm256_sub_ps(_mm256_sub_ps(y, _mm256_set1_ps(1.0f)), u), y);
    const __m256 sp = _mm256_sub_ps(log8(y), corr);
    return _mm256_blendv_ps(sp, x, _mm256_cmp_ps(x, _mm256_set1_ps(20.0f), _CMP_GT_OQ));
}

// SiLU(x) = x · σ(x) = x / (1 + e^{−x}) for 8 lanes.
inline __m256 silu8(__m256 x) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

}  // namespace mamba::vec
