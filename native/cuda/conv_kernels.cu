// conv_kernels.cu — causal depthwise conv1d + bias + SiLU over packed segments, and the conv state after a segment.
//
// Conv state of one channel: the last K−1 inputs before the next token, oldest first. Output row t of a
// segment: bias + Σ_k w[k]·x[t−(K−1)+k], where positions before the segment's start come from its
// initial state (or zeros).
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "device_math.cuh"

namespace mamba::cuda {

namespace {

constexpr int kConvThreads = 128;

/** The input at absolute row p of a segment starting at s0: from the rows, or from the initial state. */
__device__ __forceinline__ float conv_input(const float* in, int in_stride, int c, int p, int s0, const float* init,
                                            int K) {
    if (p >= s0) return in[static_cast<size_t>(p) * in_stride + c];
    if (init == nullptr) return 0.0f;
    return init[static_cast<size_t>(c) * (K - 1) + (K - 1) + (p - s0)];
}

template <int K>
__global__ void __launch_bounds__(kConvThreads)
    conv_silu_kernel(const ConvChunk* chunks, SegTable segs, int layer, const float* in, int in_stride, int C,
                     const float* w, const float* bias, float* out, ActOut out_copy) {
    const int c = blockIdx.y * kConvThreads + threadIdx.x;
    if (c >= C) return;
    const ConvChunk chunk = chunks[blockIdx.x];
    const int s0 = segs.start[chunk.seg];
    const float* init_base = segs.init_conv[chunk.seg];
    const float* init = init_base != nullptr ? init_base + static_cast<size_t>(layer) * C * (K - 1) : nullptr;
    float wk[K];
#pragma unroll
    for (int k = 0; k < K; ++k) wk[k] = w[static_cast<size_t>(c) * K + k];
    const float b = bias != nullptr ? bias[c] : 0.0f;
    float window[K];  // window[K-1] is the current input
#pragma unroll
    for (int k = 0; k < K - 1; ++k) window[k] = conv_input(in, in_stride, c, chunk.row_begin - (K - 1) + k, s0, init, K);
    for (int t = chunk.row_begin; t < chunk.row_end; ++t) {
        window[K - 1] = in[static_cast<size_t>(t) * in_stride + c];
        float acc = b;
#pragma unroll
        for (int k = 0; k < K; ++k) acc += wk[k] * window[k];
        const float v = silu(acc);
        out[static_cast<size_t>(t) * C + c] = v;
        if (out_copy.ptr != nullptr) store_act(out_copy, static_cast<size_t>(t) * C + c, v);
#pragma unroll
        for (int k = 0; k < K - 1; ++k) window[k] = window[k + 1];
    }
}

template <int K>
__global__ void conv_state_out_kernel(const int32_t* seg_list, SegTable segs, int layer, const float* in, int in_stride,
                                      int C) {
    const int c = blockIdx.y * kConvThreads + threadIdx.x;
    if (c >= C) return;
    const int seg = seg_list[blockIdx.x];
    const int s0 = segs.start[seg];
    const int end = s0 + segs.length[seg];
    const size_t layer_off = static_cast<size_t>(layer) * C * (K - 1);
    const float* init = segs.init_conv[seg] != nullptr ? segs.init_conv[seg] + layer_off : nullptr;
    float state[K - 1];
    // Read everything first: the saved state may overwrite the initial one in place.
#pragma unroll
    for (int i = 0; i < K - 1; ++i) state[i] = conv_input(in, in_stride, c, end - (K - 1) + i, s0, init, K);
    float* save = segs.save_conv[seg] + layer_off + static_cast<size_t>(c) * (K - 1);
#pragma unroll
    for (int i = 0; i < K - 1; ++i) save[i] = state[i];
}

[[noreturn]] void unsupported_width(int K) {
    throw std::runtime_error("cuda backend: d_conv " + std::to_string(K) + " is not supported (expected 2, 3 or 4)");
}

}  // namespace

void launch_conv_silu(const ConvChunk* chunks, int n_chunks, SegTable segs, int layer, const float* in, int in_stride,
                      int C, int K, const float* w, const float* bias, float* out, ActOut out_copy,
                      cudaStream_t stream) {
    if (n_chunks == 0) return;
    const dim3 grid(n_chunks, (C + kConvThreads - 1) / kConvThreads);
    switch (K) {
        case 2: conv_silu_kernel<2><<<grid, kConvThreads, 0, stream>>>(chunks, segs, layer, in, in_stride, C, w, bias, out, out_copy); break;
        case 3: conv_silu_kernel<3><<<grid, kConvThreads, 0, stream>>>(chunks, segs, layer, in, in_stride, C, w, bias, out, out_copy); break;
        case 4: conv_silu_kernel<4><<<grid, kConvThreads, 0, stream>>>(chunks, segs, layer, in, in_stride, C, w, bias, out, out_copy); break;
        default: unsupported_width(K);
    }
    check_launch("conv_silu_kernel");
}

void launch_conv_state_out(const int32_t* seg_list, int n, SegTable segs, int layer, const float* in, int in_stride,
                           int C, int K, cudaStream_t stream) {
    if (n == 0) return;
    const dim3 grid(n, (C + kConvThreads - 1) / kConvThreads);
    switch (K) {
        case 2: conv_state_out_kernel<2><<<grid, kConvThreads, 0, stream>>>(seg_list, segs, layer, in, in_stride, C); break;
        case 3: conv_state_out_kernel<3><<<grid, kConvThreads, 0, stream>>>(seg_list, segs, layer, in, in_stride, C); break;
        case 4: conv_state_out_kernel<4><<<grid, kConvThreads, 0, stream>>>(seg_list, segs, layer, in, in_stride, C); break;
        default: unsupported_width(K);
    }
    check_launch("conv_state_out_kernel");
}

}  // namespace mamba::cuda
