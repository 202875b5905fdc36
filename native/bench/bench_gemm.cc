// bench_gemm.cc — GFLOP/s of the CPU GEMM (Y[T×N] = X[T×K]·W[N×K]ᵀ) at one shape, plus determinism checks
// (the same row computed at T and at 1, and the whole product on the AVX2 path, must be bit-identical).
// The ISA follows MAMBA_EVAL_ISA (auto | avx2 | avx512).
//   cmake-js compile -d native --out native/build --target bench_gemm   (or see CMakeLists.txt)
//   native/build/Release/bench_gemm T N K threads [bf16]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "cpu/gemm.h"

int main(int argc, char** argv) {
    const int64_t T = argc > 1 ? atoll(argv[1]) : 512, N = argc > 2 ? atoll(argv[2]) : 3072,
                  K = argc > 3 ? atoll(argv[3]) : 768;
    const int threads = argc > 4 ? atoi(argv[4]) : 2;
    const bool bf16 = argc > 5 && std::strcmp(argv[5], "bf16") == 0;
    std::vector<float> X(size_t(T * K)), Wf(size_t(N * K)), Y(size_t(T * N)), Y1(static_cast<size_t>(N));
    uint32_t s = 1;
    auto rnd = [&] { s = s * 1664525u + 1013904223u; return float(s >> 8) / 16777216.0f - 0.5f; };
    for (auto& v : X) v = rnd();
    for (auto& v : Wf) v = rnd();
    mamba::Tensor W;
    W.rows = N;
    W.cols = K;
    if (bf16) {
        W.dtype = mamba::DType::BF16;
        W.owned.resize(size_t(N * K) * 2);
        auto* p = reinterpret_cast<uint16_t*>(W.owned.data());
        for (size_t i = 0; i < Wf.size(); i++) p[i] = mamba::f32_to_bf16(Wf[i]);
        W.data = W.owned.data();
    } else {
        W.data = Wf.data();
    }
    std::vector<uint8_t> packed(mamba::packed_bytes(N, K, W.dtype) + 64);
    uint8_t* pk = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(packed.data()) + 63) & ~uintptr_t(63));
    const mamba::GemmWeight PW = mamba::pack_rows(W, pk, 0, N);
    mamba::ThreadPool pool(threads);
    const mamba::GemmIsa isa = mamba::choose_gemm_isa();
    mamba::gemm(X.data(), K, T, PW, nullptr, Y.data(), N, pool, isa);  // warm-up
    const int reps = 10;
    auto cpu_now = [] {
        timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
    };
    const double c0 = cpu_now();
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; r++) mamba::gemm(X.data(), K, T, PW, nullptr, Y.data(), N, pool, isa);
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    const double cpu = (cpu_now() - c0) / reps;  // all threads' CPU seconds (spin-waits included)
    mamba::ThreadPool single(1);
    mamba::gemm(X.data() + (T - 1) * K, K, 1, PW, nullptr, Y1.data(), N, single);
    std::vector<float> Y2(Y.size());
    mamba::gemm(X.data(), K, T, PW, nullptr, Y2.data(), N, pool, mamba::GemmIsa::Avx2);
    bool same = std::memcmp(Y1.data(), Y.data() + (T - 1) * N, size_t(N) * 4) == 0;
    bool same_isa = std::memcmp(Y2.data(), Y.data(), Y.size() * 4) == 0;
    std::printf("T=%lld N=%lld K=%lld threads=%d %s %s: %.2f ms, %.1f GFLOP/s, %.1f GFLOP per CPU-second per thread, "
                "last row alone bit-identical: %s, avx2 path bit-identical: %s\n",
                (long long)T, (long long)N, (long long)K, threads, bf16 ? "bf16" : "f32", mamba::gemm_isa_name(isa),
                sec * 1e3, 2.0 * T * N * K / sec / 1e9, 2.0 * T * N * K / cpu / 1e9, same ? "yes" : "NO",
                same_isa ? "yes" : "NO");
    return same && same_isa ? 0 : 1;
}
