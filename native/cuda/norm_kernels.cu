// norm_kernels.cu — embedding gather, residual add + RMSNorm, gated group RMSNorm, small copies.
//
//   embed:          R_t = emb[token_t]                                    (the residual stream, fp32)
//   add + RMSNorm:  R_t += mix_t;  u_t = R_t · w / sqrt(mean_d(R_t[d]²) + eps)          (eps = 1e-5)
//   gated RMSNorm:  g = y_t ⊙ SiLU(z_t);  out = g · w / sqrt(mean_{c∈group}(g[c]²) + eps), per group of E/G channels
//                   (Mamba-2, norm_before_gate = false)
//   gated product:  out = a ⊙ SiLU(b)                 (GatedMLP: fc1's value and gate halves; MHA's in-attention MLP)
// Sums of squares are taken by a block per row in a fixed order (block_sum), so a row never depends on the batch.
#include "cuda_check.cuh"
#include "device_math.cuh"

namespace mamba::cuda {

namespace {

constexpr int kNormThreads = 256;

__global__ void embed_kernel(const int32_t* tokens, const void* emb, bool emb_bf16, int D, float* out) {
    const size_t t = blockIdx.x;
    const size_t base = static_cast<size_t>(tokens[t]) * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        out[t * D + d] = emb_bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(emb)[base + d])
                                  : static_cast<const float*>(emb)[base + d];
    }
}

__global__ void __launch_bounds__(kNormThreads)
    add_rmsnorm_kernel(const int32_t* rows, float* resid, const float* mix, const float* w, int D, float eps,
                       ActOut out) {
    __shared__ float scratch[kNormThreads / 32];
    const size_t i = blockIdx.x;
    const size_t r = rows != nullptr ? static_cast<size_t>(rows[i]) : i;
    float* h = resid + r * D;
    const float* m = mix != nullptr ? mix + r * D : nullptr;
    float ss = 0.0f;
    for (int d = threadIdx.x; d < D; d += kNormThreads) {
        const float v = m != nullptr ? h[d] + m[d] : h[d];  // R += mix
        if (rows == nullptr && m != nullptr) h[d] = v;
        ss += v * v;                                          // Σ_d R[d]²
    }
    const float total = block_sum<kNormThreads>(ss, scratch);
    const float rstd = 1.0f / sqrtf(total / static_cast<float>(D) + eps);  // 1 / sqrt(mean + eps)
    for (int d = threadIdx.x; d < D; d += kNormThreads) {
        const float v = (rows == nullptr || m == nullptr) ? h[d] : h[d] + m[d];
        store_act(out, i * D + d, v * rstd * w[d]);
    }
}

// The same for rows that allow float4 access (D a multiple of 4, 16-byte aligned), 128 threads a row: thread i holds
// float4s i, i + 128, … (K4 of them) in registers between the sum and the scaling, so the row is read once.
constexpr int kVecNormThreads = 128;

__device__ __forceinline__ void store_act4(ActOut out, size_t i, float4 v) {  // i a multiple of 4
    if (out.bf16) {
        auto* o = reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(out.ptr) + i);
        o[0] = __floats2bfloat162_rn(v.x, v.y);
        o[1] = __floats2bfloat162_rn(v.z, v.w);
    } else {
        *reinterpret_cast<float4*>(static_cast<float*>(out.ptr) + i) = v;
    }
}

template <int K4>
__global__ void __launch_bounds__(kVecNormThreads)
    add_rmsnorm_vec_kernel(const int32_t* rows, float* resid, const float* mix, const float* w, int D, float eps,
                           ActOut out) {
    __shared__ float scratch[kVecNormThreads / 32];
    const size_t i = blockIdx.x;
    const size_t r = rows != nullptr ? static_cast<size_t>(rows[i]) : i;
    float4* h = reinterpret_cast<float4*>(resid + r * D);
    const float4* m = mix != nullptr ? reinterpret_cast<const float4*>(mix + r * D) : nullptr;
    const int D4 = D / 4;
    float4 v[K4];
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < K4; ++k) {
        const int d = threadIdx.x + k * kVecNormThreads;
        v[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (d < D4) {
            v[k] = h[d];
            if (m != nullptr) {  // R += mix
                const float4 mv = m[d];
                v[k] = make_float4(v[k].x + mv.x, v[k].y + mv.y, v[k].z + mv.z, v[k].w + mv.w);
                if (rows == nullptr) h[d] = v[k];
            }
            ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;  // Σ_d R[d]²
        }
    }
    const float total = block_sum<kVecNormThreads>(ss, scratch);
    const float rstd = 1.0f / sqrtf(total / static_cast<float>(D) + eps);  // 1 / sqrt(mean + eps)
#pragma unroll
    for (int k = 0; k < K4; ++k) {
        const int d = threadIdx.x + k * kVecNormThreads;
        if (d < D4) {
            const float4 wv = reinterpret_cast<const float4*>(w)[d];
            store_act4(out, i * D + 4 * size_t(d),
                       make_float4(v[k].x * rstd * wv.x, v[k].y * rstd * wv.y, v[k].z * rstd * wv.z, v[k].w * rstd * wv.w));
        }
    }
}

__global__ void __launch_bounds__(kNormThreads)
    gated_rmsnorm_kernel(const float* y, const float* z, int z_stride, const float* w, int E, int group, float eps,
                         ActOut out) {
    __shared__ float scratch[kNormThreads / 32];
    const size_t t = blockIdx.x;
    const int c0 = blockIdx.y * group;
    float ss = 0.0f;
    for (int c = c0 + threadIdx.x; c < c0 + group; c += kNormThreads) {
        const float g = y[t * E + c] * silu(z[t * z_stride + c]);  // g = y ⊙ SiLU(z)
        ss += g * g;
    }
    const float total = block_sum<kNormThreads>(ss, scratch);
    const float rstd = 1.0f / sqrtf(total / static_cast<float>(group) + eps);
    for (int c = c0 + threadIdx.x; c < c0 + group; c += kNormThreads) {
        const float g = y[t * E + c] * silu(z[t * z_stride + c]);
        store_act(out, t * E + c, g * rstd * w[c]);
    }
}

// The same for groups that allow float4 access (group, E and z_stride multiples of 4, 16-byte aligned): thread i holds
// g for float4s i, i + 128, … of the group (K4 of them) in registers, so y and z are read once.
template <int K4>
__global__ void __launch_bounds__(kVecNormThreads)
    gated_rmsnorm_vec_kernel(const float* y, const float* z, int z_stride, const float* w, int E, int group, float eps,
                             ActOut out) {
    __shared__ float scratch[kVecNormThreads / 32];
    const size_t t = blockIdx.x;
    const int c0 = blockIdx.y * group;
    const int n4 = group / 4;
    const float4* y4 = reinterpret_cast<const float4*>(y + t * E + c0);
    const float4* z4 = reinterpret_cast<const float4*>(z + t * z_stride + c0);
    float4 g[K4];
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < K4; ++k) {
        const int c = threadIdx.x + k * kVecNormThreads;
        g[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (c < n4) {
            const float4 yv = __ldg(y4 + c), zv = __ldg(z4 + c);
            g[k] = make_float4(yv.x * silu(zv.x), yv.y * silu(zv.y), yv.z * silu(zv.z), yv.w * silu(zv.w));  // y ⊙ SiLU(z)
            ss += g[k].x * g[k].x + g[k].y * g[k].y + g[k].z * g[k].z + g[k].w * g[k].w;
        }
    }
    const float total = block_sum<kVecNormThreads>(ss, scratch);
    const float rstd = 1.0f / sqrtf(total / static_cast<float>(group) + eps);
#pragma unroll
    for (int k = 0; k < K4; ++k) {
        const int c = threadIdx.x + k * kVecNormThreads;
        if (c < n4) {
            const float4 wv = reinterpret_cast<const float4*>(w + c0)[c];
            store_act4(out, t * E + c0 + 4 * size_t(c),
                       make_float4(g[k].x * rstd * wv.x, g[k].y * rstd * wv.y, g[k].z * rstd * wv.z, g[k].w * rstd * wv.w));
        }
    }
}

__global__ void copy_cols_kernel(int T, int cols, const float* src, int src_stride, ActOut dst) {
    const size_t total = static_cast<size_t>(T) * cols;
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        const size_t t = i / cols;
        const size_t c = i % cols;
        store_act(dst, i, src[t * src_stride + c]);
    }
}

__global__ void add_bias_kernel(int T, int cols, float* y, int ld, const float* bias) {
    const size_t total = static_cast<size_t>(T) * cols;
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        y[(i / cols) * ld + i % cols] += bias[i % cols];
    }
}

__global__ void gated_product_kernel(int T, int cols, const float* src, int src_ld, int a_col, int b_col, ActOut dst,
                                     int dst_ld, int dst_col) {
    const size_t total = static_cast<size_t>(T) * cols;
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        const size_t t = i / cols, c = i % cols;
        const float* row = src + t * src_ld;
        store_act(dst, t * dst_ld + dst_col + c, row[a_col + c] * silu(row[b_col + c]));  // value · SiLU(gate)
    }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

unsigned elementwise_blocks(size_t n) {
    const size_t blocks = (n + 255) / 256;
    return static_cast<unsigned>(blocks < 65536 ? (blocks == 0 ? 1 : blocks) : 65536);
}

}  // namespace

void launch_embed(const int32_t* tokens, int T, const void* emb, bool emb_bf16, int D, float* out,
                  cudaStream_t stream) {
    if (T == 0) return;
    embed_kernel<<<T, 256, 0, stream>>>(tokens, emb, emb_bf16, D, out);
    check_launch("embed_kernel");
}

void launch_add_rmsnorm(const int32_t* rows, int n, float* resid, const float* mix, const float* w, int D, float eps,
                        ActOut out, cudaStream_t stream) {
    if (n == 0) return;
    const int k4 = (D / 4 + kVecNormThreads - 1) / kVecNormThreads;  // float4s per thread
    const bool vec = D % 4 == 0 && k4 <= 8 && aligned16(resid) && aligned16(mix) && aligned16(w) &&
                     (out.bf16 ? (reinterpret_cast<uintptr_t>(out.ptr) & 7u) == 0 : aligned16(out.ptr));
    if (!vec) {
        add_rmsnorm_kernel<<<n, kNormThreads, 0, stream>>>(rows, resid, mix, w, D, eps, out);
    } else {
        switch (k4) {
            case 1: add_rmsnorm_vec_kernel<1><<<n, kVecNormThreads, 0, stream>>>(rows, resid, mix, w, D, eps, out); break;
            case 2: add_rmsnorm_vec_kernel<2><<<n, kVecNormThreads, 0, stream>>>(rows, resid, mix, w, D, eps, out); break;
            case 3: add_rmsnorm_vec_kernel<3><<<n, kVecNormThreads, 0, stream>>>(rows, resid, mix, w, D, eps, out); break;
            case 4: add_rmsnorm_vec_kernel<4><<<n, kVecNormThreads, 0, stream>>>(rows, resid, mix, w, D, eps, out); break;
            case 5: add_rmsnorm_vec_kernel<5><<<n, kVecNormThreads, 0, stream>>>(rows, resid, mix, w, D, eps, out); break;
            case 6: add_rmsnorm_vec_kernel<6><<<n, kVecNormThreads, 0, stream>>>(rows, resid, mix, w, D, eps, out); break;
            default: add_rmsnorm_vec_kernel<8><<<n, kVecNormThreads, 0, stream>>>(rows, resid, mix, w, D, eps, out); break;
        }
    }
    check_launch("add_rmsnorm_kernel");
}

void launch_gated_rmsnorm(int T, const float* y, const float* z, int z_stride, const float* w, int E, int G, float eps,
                          ActOut out, cudaStream_t stream) {
    if (T == 0) return;
    const int group = E / G;
    const dim3 grid(T, G);
    const int k4 = (group / 4 + kVecNormThreads - 1) / kVecNormThreads;  // float4s per thread
    const bool vec = group % 4 == 0 && E % 4 == 0 && z_stride % 4 == 0 && k4 <= 12 && aligned16(y) && aligned16(z) &&
                     aligned16(w) && (out.bf16 ? (reinterpret_cast<uintptr_t>(out.ptr) & 7u) == 0 : aligned16(out.ptr));
    if (!vec) {
        gated_rmsnorm_kernel<<<grid, kNormThreads, 0, stream>>>(y, z, z_stride, w, E, group, eps, out);
    } else if (k4 <= 2) {
        gated_rmsnorm_vec_kernel<2><<<grid, kVecNormThreads, 0, stream>>>(y, z, z_stride, w, E, group, eps, out);
    } else if (k4 <= 4) {
        gated_rmsnorm_vec_kernel<4><<<grid, kVecNormThreads, 0, stream>>>(y, z, z_stride, w, E, group, eps, out);
    } else if (k4 <= 6) {
        gated_rmsnorm_vec_kernel<6><<<grid, kVecNormThreads, 0, stream>>>(y, z, z_stride, w, E, group, eps, out);
    } else if (k4 <= 8) {
        gated_rmsnorm_vec_kernel<8><<<grid, kVecNormThreads, 0, stream>>>(y, z, z_stride, w, E, group, eps, out);
    } else {
        gated_rmsnorm_vec_kernel<12><<<grid, kVecNormThreads, 0, stream>>>(y, z, z_stride, w, E, group, eps, out);
    }
    check_launch("gated_rmsnorm_kernel");
}

void launch_copy_cols(int T, int cols, const float* src, int src_stride, ActOut dst, cudaStream_t stream) {
    const size_t n = static_cast<size_t>(T) * cols;
    if (n == 0) return;
    copy_cols_kernel<<<elementwise_blocks(n), 256, 0, stream>>>(T, cols, src, src_stride, dst);
    check_launch("copy_cols_kernel");
}

void launch_gated_product(int T, int cols, const float* src, int src_ld, int a_col, int b_col, ActOut dst, int dst_ld,
                          int dst_col, cudaStream_t stream) {
    const size_t n = static_cast<size_t>(T) * cols;
    if (n == 0) return;
    gated_product_kernel<<<elementwise_blocks(n), 256, 0, stream>>>(T, cols, src, src_ld, a_col, b_col, dst, dst_ld, dst_col);
    check_launch("gated_product_kernel");
}

void launch_add_bias(int T, int cols, float* y, int ld, const float* bias, cudaStream_t stream) {
    const size_t n = static_cast<size_t>(T) * cols;
    if (n == 0) return;
    add_bias_kernel<<<elementwise_blocks(n), 256, 0, stream>>>(T, cols, y, ld, bias);
    check_launch("add_bias_kernel");
}

}  // namespace mamba::cuda
