// bench_forward.cc — prefill of one model shape on the CPU backend without Node: score() of one T-token
// sequence from the zero state with the LM head on every row, as `npm run bench` times it. Prints per call
// the wall and process-CPU seconds, tok/s, the GEMM GFLOP/s (the bench's flop count) and a hash of the
// log-probabilities and greedy flags, so two builds, ISAs or thread counts can be checked for identical bits.
// With MAMBA_EVAL_PROFILE=1 the backend adds its per-op times (wall and calling-thread CPU) on stderr.
// Runs under valgrind (callgrind counts instructions repeatably; MAMBA_EVAL_ISA=avx2 there, valgrind has no
// AVX-512).
//
//   node --import tsx bench/bench.ts --quick   (once: writes the random checkpoints to <tmpdir>/mamba-eval-bench)
//   cmake --build native/build --target bench_forward
//   native/build/bench_forward MODEL [T] [threads] [reps] [f32|bf16] [segments]
//     segments > 1 splits the sequence, each part starting from the state the previous part saved (the hash must
//     not change). MODEL: mamba-130m | mamba2-130m | mamba-370m | mamba-790m | mamba-1.4b (reads
//     $TMPDIR/mamba-eval-bench/MODEL-random-v1.safetensors) or a path to such a file with --shape NAME after it.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend.h"

namespace mamba {
std::unique_ptr<Backend> make_cpu_backend(const ModelSpec& spec);
}

namespace {

struct Shape {
    const char* name;
    int family, d_model, n_layer, d_state, d_inner, dt_rank, head_dim, n_groups;
};
// The shapes of bench/randomCheckpoint.ts (vocab 50280, d_conv 4).
const Shape kShapes[] = {
    {"mamba-130m", 1, 768, 24, 16, 1536, 48, 0, 0},    {"mamba-370m", 1, 1024, 48, 16, 2048, 64, 0, 0},
    {"mamba-790m", 1, 1536, 48, 16, 3072, 96, 0, 0},   {"mamba-1.4b", 1, 2048, 48, 16, 4096, 128, 0, 0},
    {"mamba2-130m", 2, 768, 24, 128, 1536, 0, 64, 1},
};
constexpr int kVocab = 50280;

// GEMM flops per token (bench/randomCheckpoint.ts flopsPerToken).
double flops_per_token(const Shape& s) {
    const double D = s.d_model, E = s.d_inner, N = s.d_state;
    const double per_layer = s.family == 1 ? 2 * E * D + (s.dt_rank + 2 * N) * E + E * s.dt_rank + D * E
                                           : (2 * E + 2 * s.n_groups * N + E / s.head_dim) * D + D * E;
    return 2 * (s.n_layer * per_layer + double(kVocab) * D);
}

// The tensors of a safetensors file: its JSON header read with a small scanner for the one layout the bench
// writes ({"name":{"dtype":"F32","shape":[..],"data_offsets":[a,b]},...}).
std::vector<mamba::TensorSource> read_safetensors(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error(file + ": cannot open (run `npm run bench -- --quick` once to write it)");
    uint64_t len = 0;
    in.read(reinterpret_cast<char*>(&len), 8);
    std::string h(len, '\0');
    in.read(h.data(), std::streamsize(len));
    std::vector<mamba::TensorSource> out;
    size_t p = 1;
    while ((p = h.find('"', p)) != std::string::npos) {
        const size_t q = h.find('"', p + 1);
        mamba::TensorSource t;
        t.name = h.substr(p + 1, q - p - 1);
        t.dtype = mamba::DType::F32;
        t.file = file;
        const size_t sh = h.find("\"shape\":[", q) + 9, she = h.find(']', sh);
        for (size_t i = sh; i < she;) {
            t.shape.push_back(std::strtoll(h.c_str() + i, nullptr, 10));
            const size_t c = h.find(',', i);
            i = c < she ? c + 1 : she;
        }
        const size_t off = h.find("\"data_offsets\":[", q) + 16;
        char* e;
        const uint64_t a = std::strtoull(h.c_str() + off, &e, 10), b = std::strtoull(e + 1, nullptr, 10);
        t.offset = 8 + len + a;
        t.byte_length = b - a;
        out.push_back(t);
        p = h.find('}', off) + 1;
        if (h[p] == '}') break;
    }
    return out;
}

double cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// The 1-thread fp32 FMA peak in GFLOP per CPU-second (12 independent FMA chains, best of 3), for the ISA in use:
// per CPU-second, so that a loaded machine's time slices do not count.
__attribute__((target("avx2,fma"))) double peak_avx2() {
    __m256 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(float(i) * 1e-3f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    const long iters = 20'000'000;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        const double c0 = cpu_seconds();
        for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
            for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
        }
        best = std::max(best, 12.0 * 16 * iters / (cpu_seconds() - c0) / 1e9);
    }
    for (int i = 1; i < 12; i++) a[0] = _mm256_add_ps(a[0], a[i]);  // every chain used: none is dropped
    volatile float sink = _mm256_cvtss_f32(a[0]);
    (void)sink;
    return best;
}
__attribute__((target("avx512f"))) double peak_avx512() {
    __m512 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps(float(i) * 1e-3f);
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    const long iters = 20'000'000;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        const double c0 = cpu_seconds();
        for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
            for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
        }
        best = std::max(best, 12.0 * 32 * iters / (cpu_seconds() - c0) / 1e9);
    }
    for (int i = 1; i < 12; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    volatile float sink = _mm512_reduce_add_ps(a[0]);
    (void)sink;
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_forward MODEL [T] [threads] [reps] [f32|bf16] [segments]\n");
        return 2;
    }
    const std::string model = argv[1];
    const int T = argc > 2 ? std::atoi(argv[2]) : 512, threads = argc > 3 ? std::atoi(argv[3]) : 2,
              reps = argc > 4 ? std::atoi(argv[4]) : 3;
    const bool bf16 = argc > 5 && std::strcmp(argv[5], "bf16") == 0;
    const int nseg = argc > 6 ? std::max(1, std::atoi(argv[6])) : 1;
    const Shape* shape = nullptr;
    for (const Shape& s : kShapes)
        if (model == s.name) shape = &s;
    if (!shape) {
        std::fprintf(stderr, "bench_forward: unknown model %s\n", model.c_str());
        return 2;
    }
    const char* tmp = std::getenv("TMPDIR");
    const std::string file = std::string(tmp ? tmp : "/tmp") + "/mamba-eval-bench/" + model + "-random-v1.safetensors";
    try {
        mamba::ModelSpec spec;
        spec.device = "cpu";
        spec.family = shape->family;
        spec.d_model = shape->d_model;
        spec.n_layer = shape->n_layer;
        spec.layer_kinds.assign(size_t(shape->n_layer), mamba::kMambaLayer);
        spec.vocab = kVocab;
        spec.d_state = shape->d_state;
        spec.d_conv = 4;
        spec.d_inner = shape->d_inner;
        spec.dt_rank = shape->dt_rank;
        spec.n_heads = shape->family == 2 ? shape->d_inner / shape->head_dim : 0;
        spec.head_dim = shape->head_dim;
        spec.n_groups = shape->n_groups;
        spec.norm_eps = 1e-5f;
        spec.conv_bias = true;
        spec.proj_bias = false;
        spec.tie_embeddings = true;
        spec.threads = threads;
        spec.weight_type = bf16 ? mamba::WeightType::BF16 : mamba::WeightType::F32;
        spec.tensors = read_safetensors(file);
        auto be = mamba::make_cpu_backend(spec);

        mamba::ScoreBatch b;  // bench/modelBench.ts tokenStream + fullScoreBatch
        uint32_t x = 7;
        for (int i = 0; i < T; i++) {
            x = x * 1103515245u + 12345u;
            b.tokens.push_back(int32_t((x >> 8) % uint32_t(kVocab)));
        }
        // nseg segments, each continuing from the state the previous one saved: the same log-probs as one segment
        b.seg_offsets.push_back(0);
        for (int i = 0; i < nseg; i++) {
            b.seg_offsets.push_back(int32_t(int64_t(T) * (i + 1) / nseg));
            b.seg_init.push_back(i - 1);
            b.seg_save.push_back(i);
        }
        for (int i = 0; i < T; i++) {
            b.score_rows.push_back(i);
            b.score_targets.push_back(b.tokens[size_t((i + 1) % T)]);
        }
        const double fpt = flops_per_token(*shape);
        const bool is512 = be->isa().rfind("avx512", 0) == 0;
        const double peak = is512 ? peak_avx512() : peak_avx2();
        std::printf("1-thread FMA peak of the ISA in use: %.1f GFLOP per CPU-second\n", peak);
        std::printf("%s %s T=%d segments=%d threads=%d isa=%s GEMM GFLOP/token %.4f\n", model.c_str(),
                    bf16 ? "bf16" : "f32", T, nseg, threads, be->isa().c_str(), fpt / 1e9);
        for (int r = 0; r <= reps; r++) {  // call 0 is the warm-up
            mamba::ScoreOutput out;
            const double c0 = cpu_seconds();
            const auto t0 = std::chrono::steady_clock::now();
            be->score(b, out);
            const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double cpu = cpu_seconds() - c0;
            uint64_t h = 1469598103934665603ull;  // FNV-1a of the log-probs and greedy flags
            auto mix = [&](const void* p, size_t n) {
                for (size_t i = 0; i < n; i++) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ull;
            };
            mix(out.logprobs.data(), out.logprobs.size() * sizeof(double));
            mix(out.greedy.data(), out.greedy.size());
            std::printf("%s wall %.1f ms cpu %.1f ms: %.1f tok/s, %.1f GFLOP/s (wall), %.1f GFLOP per CPU-second "
                        "= %.1f%% of the 1-thread peak; hash %016llx\n",
                        r ? "call" : "warm-up", wall * 1e3, cpu * 1e3, T / wall, T * fpt / wall / 1e9,
                        T * fpt / cpu / 1e9, 100 * T * fpt / cpu / 1e9 / peak, (unsigned long long)h);
            std::fflush(stdout);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_forward: %s\n", e.what());
        return 1;
    }
    return 0;
}
