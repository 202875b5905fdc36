// phase_clock.cuh — optional per-phase GPU time of one score() call on stderr (MAMBA_EVAL_CUDA_PROFILE=1, the CUDA
// counterpart of the CPU backend's MAMBA_EVAL_PROFILE=1; step() then runs without CUDA graphs).
//
// mark(phase) records an event on the stream; the time up to the next mark is charged to that phase.
// report() (after the stream has synchronised) prints one line to stderr. Off: every call is a no-op.
#pragma once
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace mamba::cuda {

enum Phase { kPhaseEmbed, kPhaseNorm, kPhaseGemm, kPhaseConv, kPhaseScan, kPhaseAttention, kPhaseHead, kPhaseEnd, kPhaseCount };

class PhaseClock {
public:
    /** Whether the environment has MAMBA_EVAL_CUDA_PROFILE set (non-empty); read at every call. */
    static bool enabled() {
        const char* env = std::getenv("MAMBA_EVAL_CUDA_PROFILE");
        return env != nullptr && env[0] != '\0';
    }
    /** Starts a call: profiling is on while enabled(). */
    void begin(cudaStream_t stream) {
        on_ = enabled();
        stream_ = stream;
        host_start_ = std::chrono::steady_clock::now();
        clear();
    }
    void mark(Phase phase) {
        if (!on_) return;
        cudaEvent_t event = nullptr;
        if (cudaEventCreate(&event) != cudaSuccess) return;
        cudaEventRecord(event, stream_);
        marks_.emplace_back(phase, event);
    }
    /**
     * Prints "cuda profile: T rows, segments S, levels L, <phase> ms, ..., call N ms" (call: host wall time from
     * begin(), planning and uploads included) and frees the events. Call after synchronising.
     */
    void report(long rows, long segments = 0, int levels = 0) {
        if (on_ && marks_.size() >= 2) {
            const double call_ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - host_start_).count();
            float ms[kPhaseCount] = {};
            for (size_t i = 0; i + 1 < marks_.size(); ++i) {
                float d = 0.0f;
                if (cudaEventElapsedTime(&d, marks_[i].second, marks_[i + 1].second) == cudaSuccess) ms[marks_[i].first] += d;
            }
            std::fprintf(stderr, "cuda profile: %ld rows, segments %ld, levels %d, embed %.2f ms, norm %.2f ms, gemm %.2f ms, "
                         "conv %.2f ms, scan %.2f ms, attention %.2f ms, head %.2f ms, call %.2f ms\n", rows, segments, levels,
                         ms[kPhaseEmbed], ms[kPhaseNorm], ms[kPhaseGemm], ms[kPhaseConv], ms[kPhaseScan], ms[kPhaseAttention],
                         ms[kPhaseHead], call_ms);
        }
        clear();
    }
    ~PhaseClock() { clear(); }

private:
    void clear() {
        for (auto& m : marks_) cudaEventDestroy(m.second);
        marks_.clear();
    }
    bool on_ = false;
    std::chrono::steady_clock::time_point host_start_{};
    cudaStream_t stream_ = nullptr;
    std::vector<std::pair<Phase, cudaEvent_t>> marks_;
};

}  // namespace mamba::cuda
