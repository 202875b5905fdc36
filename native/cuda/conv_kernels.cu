// conv_kernels.cu — causal depthwise conv1d + bias (+ SiLU) over packed segments, and the conv state after a segment.
//
// Channel c, token t of a segment (K taps, w [C×K], inputs x before the segment's first row from its history):
//   out_t[c] = SiLU( b[c] + Σ_{k=0}^{K−1} w[c][k] · x_{t−(K−1)+k}[c] )        k ascending
// The Mamba mixers apply the SiLU; the attention layers' conv over q, k, v does not (mamba_ssm's MHA).
// Conv state of one channel: the last K−1 inputs before the next token, oldest first. Positions before the segment's start come from its
// history (ConvHistory: rows of in-call ancestors, a saved state, or zeros), so every level of a call runs in
// one launch. One thread per (channel, chunk of ≤ kConvChunkRows rows) loads all of its K−1+rows inputs first,
// then computes, so the loads are in flight together instead of one row at a time.
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "device_math.cuh"

namespace mamba::cuda {

namespace {

constexpr int kConvThreads = 128;

/** The input of the segment's history element j (0 … K−2, oldest first); see ConvHistory. */
__device__ __forceinline__ float history_input(const float* in, int in_stride, int c, ConvHistory hist, int seg, int j,
                                               size_t state_off, int K) {
    const int32_t code = hist.history[seg * kMaxConvHistory + j];
    if (code >= 0) return in[static_cast<size_t>(code) * in_stride + c];
    if (code == kHistoryZero) return 0.0f;
    const float* state = hist.state[seg] + state_off;
    return state[static_cast<size_t>(c) * (K - 1) + (kHistoryState - code)];
}

template <int K, bool kSilu>
__global__ void __launch_bounds__(kConvThreads)
    conv_kernel(const ConvChunk* chunks, SegTable segs, ConvHistory hist, size_t state_off, const float* in, int in_stride,
                int C, const float* w, const float* bias, float* out, ActOut out_copy) {
    const int c = blockIdx.y * kConvThreads + threadIdx.x;
    if (c >= C) return;  // no barriers below
    const ConvChunk chunk = chunks[blockIdx.x];
    const int s0 = segs.start[chunk.seg];
    const int s1 = s0 + segs.length[chunk.seg];
    const int rows = chunk.row_end - chunk.row_begin;
    // v[i] = the input at row row_begin − (K−1) + i, for i < rows + K − 1.
    float v[kConvChunkRows + K - 1];
#pragma unroll
    for (int i = 0; i < kConvChunkRows + K - 1; ++i) {
        const int p = chunk.row_begin - (K - 1) + i;
        if (p >= chunk.row_end) {
            v[i] = 0.0f;
        } else if (p >= s0) {
            v[i] = in[static_cast<size_t>(p) * in_stride + c];
        } else {
            v[i] = history_input(in, in_stride, c, hist, chunk.seg, p - (s0 - (K - 1)), state_off, K);
        }
    }
    float wk[K];
#pragma unroll
    for (int k = 0; k < K; ++k) wk[k] = w[static_cast<size_t>(c) * K + k];
    const float b = bias != nullptr ? bias[c] : 0.0f;
#pragma unroll
    for (int r = 0; r < kConvChunkRows; ++r) {
        if (r < rows) {
            float acc = b;
#pragma unroll
            for (int k = 0; k < K; ++k) acc += wk[k] * v[r + k];  // b + Σ_k w[k]·x[t−(K−1)+k]
            const float y = kSilu ? silu(acc) : acc;              // SiLU(v) = v / (1 + e^{−v})
            const size_t at = static_cast<size_t>(chunk.row_begin + r) * C + c;
            out[at] = y;
            if (out_copy.ptr != nullptr) store_act(out_copy, at, y);
        }
    }
    // The chunk that ends a saving segment writes its state: the inputs at rows s1 − (K−1) … s1 − 1.
    float* save = segs.save_conv[chunk.seg];
    if (chunk.row_end == s1 && save != nullptr) {
        save += state_off + static_cast<size_t>(c) * (K - 1);
#pragma unroll
        for (int r = 0; r <= kConvChunkRows; ++r) {
            if (r == rows) {
#pragma unroll
                for (int i = 0; i < K - 1; ++i) save[i] = v[r + i];
            }
        }
    }
}

[[noreturn]] void unsupported_width(int K) {
    throw std::runtime_error("cuda backend: d_conv " + std::to_string(K) + " is not supported (expected 2, 3 or 4)");
}

template <bool kSilu>
void launch_conv_act(const ConvChunk* chunks, int n_chunks, SegTable segs, ConvHistory hist, size_t state_off,
                     const float* in, int in_stride, int C, int K, const float* w, const float* bias, float* out,
                     ActOut out_copy, cudaStream_t stream) {
    if (n_chunks == 0) return;
    const dim3 grid(n_chunks, (C + kConvThreads - 1) / kConvThreads);
    switch (K) {
        case 2: conv_kernel<2, kSilu><<<grid, kConvThreads, 0, stream>>>(chunks, segs, hist, state_off, in, in_stride, C, w, bias, out, out_copy); break;
        case 3: conv_kernel<3, kSilu><<<grid, kConvThreads, 0, stream>>>(chunks, segs, hist, state_off, in, in_stride, C, w, bias, out, out_copy); break;
        case 4: conv_kernel<4, kSilu><<<grid, kConvThreads, 0, stream>>>(chunks, segs, hist, state_off, in, in_stride, C, w, bias, out, out_copy); break;
        default: unsupported_width(K);
    }
    check_launch("conv_kernel");
}

}  // namespace

void launch_conv_silu(const ConvChunk* chunks, int n_chunks, SegTable segs, ConvHistory hist, size_t state_off,
                      const float* in, int in_stride, int C, int K, const float* w, const float* bias, float* out,
                      ActOut out_copy, cudaStream_t stream) {
    launch_conv_act<true>(chunks, n_chunks, segs, hist, state_off, in, in_stride, C, K, w, bias, out, out_copy, stream);
}

void launch_conv(const ConvChunk* chunks, int n_chunks, SegTable segs, ConvHistory hist, size_t state_off,
                 const float* in, int in_stride, int C, int K, const float* w, const float* bias, float* out,
                 cudaStream_t stream) {
    launch_conv_act<false>(chunks, n_chunks, segs, hist, state_off, in, in_stride, C, K, w, bias, out,
                           ActOut{nullptr, false}, stream);
}

}  // namespace mamba::cuda
