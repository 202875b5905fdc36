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
    add_rmsnorm_kernel<<<n, kNormThreads, 0, stream>>>(rows, resid, mix, w, D, eps, out);
    check_launch("add_rmsnorm_kernel");
}

void launch_gated_rmsnorm(int T, const float* y, const float* z, int z_stride, const float* w, int E, int G, float eps,
                          ActOut out, cudaStream_t stream) {
    if (T == 0) return;
    gated_rmsnorm_kernel<<<dim3(T, G), kNormThreads, 0, stream>>>(y, z, z_stride, w, E, E / G, eps, out);
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
