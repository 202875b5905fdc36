// logits_kernels.cu — fused log-softmax + gather + greedy flag over the vocabulary, one block per scored entry.
//
// For a logit row l ∈ ℝ^V and a target token y:
//   m = max_v l_v,  a = first v with l_v = m
//   log p(y) = l_y − m − log Σ_v exp(l_v − m)        the sum in double, in a fixed order (block_sum)
//   greedy   = [a = y]
#include "cuda_check.cuh"
#include "device_math.cuh"

namespace mamba::cuda {

namespace {

constexpr int kSoftmaxThreads = 512;

__global__ void __launch_bounds__(kSoftmaxThreads)
    logsoftmax_gather_kernel(const float* logits, int V, const int32_t* row, const int32_t* target, double* logprob,
                             uint8_t* greedy) {
    __shared__ float best_val[kSoftmaxThreads];
    __shared__ int best_idx[kSoftmaxThreads];
    __shared__ double scratch[kSoftmaxThreads / 32];
    const size_t i = blockIdx.x;
    const float* l = logits + static_cast<size_t>(row[i]) * V;

    // Maximum and its first index: each thread scans its strided indices in increasing order.
    float mx = -INFINITY;
    int arg = V;
    for (int v = threadIdx.x; v < V; v += kSoftmaxThreads) {
        if (arg == V || l[v] > mx) {
            mx = l[v];
            arg = v;
        }
    }
    best_val[threadIdx.x] = mx;
    best_idx[threadIdx.x] = arg;
    __syncthreads();
    for (int stride = kSoftmaxThreads / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) {
            const float ov = best_val[threadIdx.x + stride];
            const int oi = best_idx[threadIdx.x + stride];
            const float mv = best_val[threadIdx.x];
            const int mi = best_idx[threadIdx.x];
            if (ov > mv || (ov == mv && oi < mi)) {
                best_val[threadIdx.x] = ov;
                best_idx[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    const float row_max = best_val[0];
    const int row_arg = best_idx[0];

    double sum = 0.0;  // Σ_v exp(l_v − m)
    for (int v = threadIdx.x; v < V; v += kSoftmaxThreads) sum += exp(static_cast<double>(l[v]) - row_max);
    const double total = block_sum<kSoftmaxThreads>(sum, scratch);
    if (threadIdx.x == 0) {
        const int tgt = target[i];
        logprob[i] = static_cast<double>(l[tgt]) - static_cast<double>(row_max) - log(total);
        greedy[i] = row_arg == tgt ? 1 : 0;
    }
}

}  // namespace

void launch_logsoftmax_gather(const float* logits, int V, const int32_t* row, const int32_t* target, int n,
                              double* logprob, uint8_t* greedy, cudaStream_t stream) {
    if (n == 0) return;
    logsoftmax_gather_kernel<<<n, kSoftmaxThreads, 0, stream>>>(logits, V, row, target, logprob, greedy);
    check_launch("logsoftmax_gather_kernel");
}

}  // namespace mamba::cuda
