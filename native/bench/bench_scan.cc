// bench_scan.cc — cycles per state element of the Mamba-1 scan alone (mamba1_scan_channels: softplus(dt),
// the recurrence, the D skip and the SiLU(z) gate) on one thread, for one layer of mamba-130m's shape, plus a
// hash of the output so that two builds can be checked for bit-identical results. Runs the AVX2 path and, on a CPU
// with AVX-512F, the AVX-512 path, and checks that both give the same bits.
//   (after one npm run build:native, which configures native/build)
//   native/build/bench_scan [T] [E] [N] [reps] [segments]   (cmake --build native/build --target bench_scan)
// Cycles are TSC ticks (rdtsc), so they count at the TSC rate, not the core clock; compare builds in one run.
#include <x86intrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu/ops.h"

int main(int argc, char** argv) {
    const int64_t T = argc > 1 ? atoll(argv[1]) : 512, E = argc > 2 ? atoll(argv[2]) : 1536,
                  N = argc > 3 ? atoll(argv[3]) : 16;
    const int reps = argc > 4 ? atoi(argv[4]) : 7;
    const int nseg = argc > 5 ? atoi(argv[5]) : 1;
    uint32_t s = 1;
    auto rnd = [&] { s = s * 1664525u + 1013904223u; return float(s >> 8) / 16777216.0f; };  // [0, 1)
    const int64_t ldbc = 48 + 2 * N, ldz = 2 * E;
    std::vector<float> x(size_t(T * E)), dt(size_t(T * E)), xd(size_t(T * ldbc)), z(size_t(T * ldz)),
        AT(size_t(N * E)), D{std::vector<float>(size_t(E))}, y(size_t(T * E));
    for (auto& v : x) v = 2 * rnd() - 1;
    for (auto& v : dt) v = -7 + 5 * rnd();  // softplus → ≈ 0.001 … 0.13, as dt_proj's bias init gives
    for (auto& v : xd) v = 2 * rnd() - 1;
    for (auto& v : z) v = 4 * rnd() - 2;
    for (int64_t n = 0; n < N; n++)
        for (int64_t e = 0; e < E; e++) AT[size_t(n * E + e)] = -float(n + 1) * (0.5f + rnd());
    for (auto& v : D) v = rnd();
    // nseg equal segments, the first from a zero state, later ones from a saved state of random values
    std::vector<std::vector<float>> init(static_cast<size_t>(nseg)), save(static_cast<size_t>(nseg));
    std::vector<mamba::SegmentState> segs;
    for (int i = 0; i < nseg; i++) {
        init[size_t(i)].resize(size_t(N * E));
        save[size_t(i)].resize(size_t(N * E));
        for (auto& v : init[size_t(i)]) v = rnd();
        segs.push_back({T * i / nseg, T * (i + 1) / nseg, nullptr, nullptr, i ? init[size_t(i)].data() : nullptr,
                        save[size_t(i)].data()});
    }
    auto measure = [&](mamba::GemmIsa isa) {
        auto run = [&] {
            mamba::mamba1_scan_channels(x.data(), dt.data(), xd.data() + 48, xd.data() + 48 + N, ldbc, z.data() + E,
                                        ldz, AT.data(), D.data(), E, N, segs, y.data(), 0, E, isa);
        };
        run();  // warm-up
        std::vector<double> cpe;
        for (int r = 0; r < reps; r++) {
            const uint64_t c0 = __rdtsc();
            run();
            cpe.push_back(double(__rdtsc() - c0) / double(T * E * N));
        }
        std::sort(cpe.begin(), cpe.end());
        uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes of y and every saved state
        auto mix = [&](const std::vector<float>& v) {
            const auto* b = reinterpret_cast<const unsigned char*>(v.data());
            for (size_t i = 0; i < v.size() * 4; i++) h = (h ^ b[i]) * 1099511628211ull;
        };
        mix(y);
        for (auto& v : save) mix(v);
        std::printf("T=%lld E=%lld N=%lld segments=%d %s: TSC cycles per state element min %.3f median %.3f max %.3f, "
                    "hash %016llx\n",
                    (long long)T, (long long)E, (long long)N, nseg, isa == mamba::GemmIsa::Avx512 ? "avx512" : "avx2", cpe.front(),
                    cpe[cpe.size() / 2], cpe.back(), (unsigned long long)h);
        return h;
    };
    const uint64_t h2 = measure(mamba::GemmIsa::Avx2);
    if (!__builtin_cpu_supports("avx512f")) return 0;
    const uint64_t h5 = measure(mamba::GemmIsa::Avx512);
    std::printf("avx512 path bit-identical to avx2: %s\n", h5 == h2 ? "yes" : "NO");
    return h5 == h2 ? 0 : 1;
}
