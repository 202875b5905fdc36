// bench_scan2.cc — the Mamba-2 scan alone (mamba2_scan: softplus(dt), exp(dt·A), the SSD recurrence and the D
// skip) on one thread for one layer of mamba2-130m's shape (24 heads × 64 channels, d_state 128, 1 group), in
// TSC cycles per state element, plus a hash of y and the saved states; runs the AVX2 path and, on a CPU with
// AVX-512F, the AVX-512 path, and checks that both give the same bits.
//   cmake --build native/build --target bench_scan2;  native/build/bench_scan2 [T] [H] [P] [N] [reps] [segments]
// The minimum over repetitions is the figure to compare on a loaded machine (a repetition that ran without
// being descheduled); compare builds in one run.
#include <x86intrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cpu/ops.h"

int main(int argc, char** argv) {
    const int64_t T = argc > 1 ? atoll(argv[1]) : 512, H = argc > 2 ? atoll(argv[2]) : 24,
                  P = argc > 3 ? atoll(argv[3]) : 64, N = argc > 4 ? atoll(argv[4]) : 128;
    const int reps = argc > 5 ? atoi(argv[5]) : 9;
    const int nseg = argc > 6 ? atoi(argv[6]) : 1;
    const int64_t G = 1, E = H * P, ldx = E + 2 * G * N, ldd = H + 5;
    uint32_t s = 1;
    auto rnd = [&] { s = s * 1664525u + 1013904223u; return float(s >> 8) / 16777216.0f; };  // [0, 1)
    std::vector<float> xbc(static_cast<size_t>(T * ldx)), dt(static_cast<size_t>(T * ldd)), dt_bias(static_cast<size_t>(H)),
        A(static_cast<size_t>(H)), D(static_cast<size_t>(H)), y(static_cast<size_t>(T * E));
    for (auto& v : xbc) v = 2 * rnd() - 1;
    for (auto& v : dt) v = 4 * rnd() - 2;
    for (auto& v : dt_bias) v = -4 + 3 * rnd();
    for (auto& v : A) v = -(1 + 15 * rnd());
    for (auto& v : D) v = rnd();
    std::vector<std::vector<float>> init(static_cast<size_t>(nseg)), save(static_cast<size_t>(nseg));
    std::vector<mamba::SegmentState> segs;
    for (int i = 0; i < nseg; i++) {
        init[size_t(i)].resize(size_t(H * P * N));
        save[size_t(i)].resize(size_t(H * P * N));
        for (auto& v : init[size_t(i)]) v = rnd();
        segs.push_back({T * i / nseg, T * (i + 1) / nseg, nullptr, nullptr, i ? init[size_t(i)].data() : nullptr,
                        save[size_t(i)].data()});
    }
    mamba::ThreadPool pool(1);
    auto measure = [&](mamba::GemmIsa isa) {
        auto run = [&] {
            mamba::mamba2_scan(xbc.data(), ldx, dt.data(), ldd, dt_bias.data(), A.data(), D.data(), H, P, G, N, segs,
                               y.data(), pool, isa);
        };
        run();  // warm-up
        std::vector<double> cpe;
        for (int r = 0; r < reps; r++) {
            const uint64_t c0 = __rdtsc();
            run();
            cpe.push_back(double(__rdtsc() - c0) / double(T * H * P * N));
        }
        std::sort(cpe.begin(), cpe.end());
        uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes of y and every saved state
        auto mix = [&](const std::vector<float>& v) {
            const auto* b = reinterpret_cast<const unsigned char*>(v.data());
            for (size_t i = 0; i < v.size() * 4; i++) h = (h ^ b[i]) * 1099511628211ull;
        };
        mix(y);
        for (auto& v : save) mix(v);
        std::printf("T=%lld H=%lld P=%lld N=%lld segments=%d %s: TSC cycles per state element min %.3f median %.3f, "
                    "hash %016llx\n",
                    (long long)T, (long long)H, (long long)P, (long long)N, nseg,
                    isa == mamba::GemmIsa::Avx512 ? "avx512" : "avx2", cpe.front(), cpe[cpe.size() / 2],
                    (unsigned long long)h);
        return h;
    };
    const uint64_t h2 = measure(mamba::GemmIsa::Avx2);
    if (!__builtin_cpu_supports("avx512f")) return 0;
    const uint64_t h5 = measure(mamba::GemmIsa::Avx512);
    std::printf("avx512 path bit-identical to avx2: %s\n", h5 == h2 ? "yes" : "NO");
    return h5 == h2 ? 0 : 1;
}
