// device_math.cuh — small device helpers shared by the kernels: activations, stores, fixed-order reductions.
#pragma once
#include <cuda_bf16.h>

#include "kernels.cuh"

namespace mamba::cuda {

__device__ __forceinline__ float silu(float v) { return v / (1.0f + expf(-v)); }

/** mamba_ssm's delta_softplus: log1p(exp(v)) below 20, the identity above. */
__device__ __forceinline__ float softplus(float v) { return v <= 20.0f ? log1pf(expf(v)) : v; }

__device__ __forceinline__ void store_act(ActOut out, size_t i, float v) {
    if (out.bf16) {
        static_cast<__nv_bfloat16*>(out.ptr)[i] = __float2bfloat16_rn(v);
    } else {
        static_cast<float*>(out.ptr)[i] = v;
    }
}

/** Butterfly sum over groups of `width` lanes (power of two ≤ 32); lane 0 of each group gets a fixed-order sum. */
__device__ __forceinline__ float group_sum(float v, int width) {
    for (int offset = width / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

/**
 * Sum over a block of kThreads threads (multiple of 32), the same order every time; every thread gets
 * the result. `scratch` needs kThreads/32 elements and is reused after a barrier.
 */
template <int kThreads, typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    const int warp = threadIdx.x / 32;
    if (threadIdx.x % 32 == 0) scratch[warp] = v;
    __syncthreads();
    T total = scratch[0];
    for (int i = 1; i < kThreads / 32; ++i) total += scratch[i];
    __syncthreads();
    return total;
}

}  // namespace mamba::cuda
