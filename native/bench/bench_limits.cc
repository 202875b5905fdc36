// bench_limits.cc — this machine's limits, measured: fp32 FMA peak for each ISA the addon can use
// (AVX2/FMA and, where the CPU has it, AVX-512F) and memory read bandwidth, on 1 thread and on `threads`.
//
//   cmake --build native/build --target bench_limits && native/build/bench_limits [threads] [MiB]
//
// Prints one JSON object (bench/bench.ts reads it):
//   {"fma":{"avx2":{"1":GF,"2":GF},"avx512":{...}|null},"bandwidth":{"1":GB/s,"2":GB/s}}
// Peak: each thread runs 12 independent FMA chains (enough to cover 4-cycle latency × 2 pipes with room),
// best of 5 repetitions. Bandwidth: each thread sums its own contiguous share of a buffer much larger than
// the caches with 4 independent vector accumulators, best of 5 passes.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Runs fn(part) on `threads` threads started together; returns the wall seconds of the slowest.
double run_parallel(int threads, const std::function<void(int)>& fn) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int p = 0; p < threads; p++)
        ts.emplace_back([&, p] {
            ready++;
            while (!go.load()) {
            }
            fn(p);
        });
    while (ready.load() < threads) {
    }
    const auto t0 = Clock::now();
    go = true;
    for (auto& t : ts) t.join();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr long kIters = 20'000'000;  // FMA loop trips per thread (12 FMAs each)

__attribute__((target("avx2,fma"))) float fma_avx2(long iters) {
    __m256 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(float(i) * 1e-3f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);  // 12 chains, all in registers
    }
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"))) float fma_avx512(long iters) {
    __m512 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps(float(i) * 1e-3f);
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

// GFLOP/s of `kernel` (lanes fp32 lanes per FMA) on `threads` threads, best of 5.
double fma_peak(float (*kernel)(long), int lanes, int threads) {
    std::vector<float> sink(size_t(threads), 0.0f);
    kernel(kIters / 20);  // warm-up (clocks, page-in)
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        const double sec = run_parallel(threads, [&](int p) { sink[size_t(p)] += kernel(kIters); });
        best = std::max(best, double(threads) * kIters * 12 * lanes * 2 / sec / 1e9);
    }
    if (sink[0] == 12345.0f) std::printf(" ");  // keep the results alive
    return best;
}

__attribute__((target("avx2"))) float sum_range(const float* p, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
    }
    return _mm256_cvtss_f32(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// GB/s reading `buf` (n floats) split into `threads` contiguous shares, best of 5 passes.
double read_bandwidth(const float* buf, size_t n, int threads) {
    std::vector<float> sink(size_t(threads), 0.0f);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        const double sec = run_parallel(threads, [&](int p) {
            const size_t b = n * size_t(p) / size_t(threads) / 32 * 32, e = n * size_t(p + 1) / size_t(threads) / 32 * 32;
            sink[size_t(p)] += sum_range(buf + b, e - b);
        });
        best = std::max(best, double(n) * 4 / sec / 1e9);
    }
    if (sink[0] == 12345.0f) std::printf(" ");
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::max(1, atoi(argv[1])) : 2;
    const size_t mib = argc > 2 ? size_t(std::max(64, atoi(argv[2]))) : 512;
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = __builtin_cpu_supports("avx512f");
    std::printf("{\"fma\":{");
    auto peak_json = [&](const char* name, float (*k)(long), int lanes, bool have, bool last) {
        std::printf("\"%s\":", name);
        if (have && threads == 1) std::printf("{\"1\":%.1f}", fma_peak(k, lanes, 1));
        else if (have) std::printf("{\"1\":%.1f,\"%d\":%.1f}", fma_peak(k, lanes, 1), threads, fma_peak(k, lanes, threads));
        else std::printf("null");
        std::printf(last ? "}" : ",");
    };
    peak_json("avx2", fma_avx2, 8, avx2, false);
    peak_json("avx512", fma_avx512, 16, avx512, true);
    const size_t n = mib * 1024 * 1024 / 4;
    float* buf = static_cast<float*>(std::aligned_alloc(64, n * 4));
    for (size_t i = 0; i < n; i++) buf[i] = float(i & 1023);  // touch every page
    if (threads == 1) std::printf(",\"bandwidth\":{\"1\":%.2f}}\n", read_bandwidth(buf, n, 1));
    else std::printf(",\"bandwidth\":{\"1\":%.2f,\"%d\":%.2f}}\n", read_bandwidth(buf, n, 1), threads,
                     read_bandwidth(buf, n, threads));
    std::free(buf);
    return 0;
}
