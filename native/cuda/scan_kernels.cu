// scan_kernels.cu — the Mamba-1 selective scan and the Mamba-2 recurrent SSD scan over packed segments.
//
// One group of L lanes (L = min(N, 32)) owns one channel (Mamba-1: channel e; Mamba-2: head h, dim p)
// and walks its segment token by token; each lane keeps N/L states in registers. y_t = Σ_n C_n·h_n is
// reduced over the group with a fixed butterfly, so a row's result does not depend on the batch.
// States: Mamba-1 [layer][E][N], Mamba-2 [layer][H][P][N]; read at the start, written at the end by the
// same thread (so saving in place over the initial state is safe).
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "device_math.cuh"

namespace mamba::cuda {

namespace {

constexpr int kScanThreads = 128;

template <int NPL>
__global__ void __launch_bounds__(kScanThreads)
    mamba1_scan_kernel(const int32_t* seg_list, SegTable segs, int layer, Mamba1ScanArgs a) {
    const int L = a.N / NPL;
    const int lane = threadIdx.x % L;
    const int e = blockIdx.y * (kScanThreads / L) + threadIdx.x / L;
    const bool valid = e < a.E;
    const int ec = valid ? e : a.E - 1;  // idle lanes still take part in the shuffles
    const int seg = seg_list[blockIdx.x];
    const int s0 = segs.start[seg];
    const int s1 = s0 + segs.length[seg];
    const size_t state_off = static_cast<size_t>(layer) * a.E * a.N + static_cast<size_t>(ec) * a.N;
    const float* init = segs.init_ssm[seg];

    float A[NPL];
    float h[NPL];
#pragma unroll
    for (int j = 0; j < NPL; ++j) {
        const int n = lane + j * L;
        A[j] = a.A[static_cast<size_t>(ec) * a.N + n];
        h[j] = init != nullptr ? init[state_off + n] : 0.0f;
    }
    const float bias = a.dt_bias[ec];
    const float d_skip = a.Dskip[ec];
    const int dbc_stride = a.R + 2 * a.N;
    for (int t = s0; t < s1; ++t) {
        const size_t row = static_cast<size_t>(t);
        const float delta = softplus(a.dt[row * a.E + ec] + bias);
        const float xv = a.x[row * a.E + ec];
        const float* bc = a.dbc + row * dbc_stride + a.R;
        float part = 0.0f;
#pragma unroll
        for (int j = 0; j < NPL; ++j) {
            const int n = lane + j * L;
            h[j] = expf(delta * A[j]) * h[j] + delta * bc[n] * xv;
            part += h[j] * bc[a.N + n];
        }
        const float sum = group_sum(part, L);
        if (lane == 0 && valid) {
            const float zv = a.z[row * a.z_stride + ec];
            store_act(a.y, row * a.E + ec, (sum + d_skip * xv) * silu(zv));
        }
    }
    float* save = segs.save_ssm[seg];
    if (save != nullptr && valid) {
#pragma unroll
        for (int j = 0; j < NPL; ++j) save[state_off + lane + j * L] = h[j];
    }
}

template <int NPL>
__global__ void __launch_bounds__(kScanThreads)
    mamba2_scan_kernel(const int32_t* seg_list, SegTable segs, int layer, Mamba2ScanArgs a) {
    const int L = a.N / NPL;
    const int E = a.H * a.P;
    const int lane = threadIdx.x % L;
    const int ch = blockIdx.y * (kScanThreads / L) + threadIdx.x / L;
    const bool valid = ch < E;
    const int cc = valid ? ch : E - 1;
    const int head = cc / a.P;
    const int group = head / (a.H / a.G);
    const int seg = seg_list[blockIdx.x];
    const int s0 = segs.start[seg];
    const int s1 = s0 + segs.length[seg];
    const size_t state_off = static_cast<size_t>(layer) * E * a.N + static_cast<size_t>(cc) * a.N;
    const float* init = segs.init_ssm[seg];

    float h[NPL];
#pragma unroll
    for (int j = 0; j < NPL; ++j) h[j] = init != nullptr ? init[state_off + lane + j * L] : 0.0f;
    const float A = a.A[head];
    const float bias = a.dt_bias[head];
    const float d_skip = a.Dskip[head];
    const int xbc_stride = E + 2 * a.G * a.N;
    const int b_off = E + group * a.N;
    const int c_off = E + a.G * a.N + group * a.N;
    for (int t = s0; t < s1; ++t) {
        const size_t row = static_cast<size_t>(t);
        const float delta = softplus(a.dt[row * a.dt_stride + head] + bias);
        const float decay = expf(delta * A);
        const float* r = a.xbc + row * xbc_stride;
        const float xv = r[cc];
        float part = 0.0f;
#pragma unroll
        for (int j = 0; j < NPL; ++j) {
            const int n = lane + j * L;
            h[j] = decay * h[j] + delta * r[b_off + n] * xv;
            part += h[j] * r[c_off + n];
        }
        const float sum = group_sum(part, L);
        if (lane == 0 && valid) a.y[row * E + cc] = sum + d_skip * xv;
    }
    float* save = segs.save_ssm[seg];
    if (save != nullptr && valid) {
#pragma unroll
        for (int j = 0; j < NPL; ++j) save[state_off + lane + j * L] = h[j];
    }
}

/** States per lane for d_state N: N ≤ 32 must be a power of two (one lane each), else 64 or 128. */
int states_per_lane(int N) {
    if (N >= 1 && N <= 32 && (N & (N - 1)) == 0) return 1;
    if (N == 64) return 2;
    if (N == 128) return 4;
    if (N == 256) return 8;
    throw std::runtime_error("cuda backend: d_state " + std::to_string(N) +
                             " is not supported (expected a power of two up to 32, or 64, 128, 256)");
}

}  // namespace

void launch_mamba1_scan(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba1ScanArgs& a,
                        cudaStream_t stream) {
    if (n == 0) return;
    const int npl = states_per_lane(a.N);
    const int per_block = kScanThreads / (a.N / npl);
    const dim3 grid(n, (a.E + per_block - 1) / per_block);
    switch (npl) {
        case 1: mamba1_scan_kernel<1><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
        case 2: mamba1_scan_kernel<2><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
        case 4: mamba1_scan_kernel<4><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
        default: mamba1_scan_kernel<8><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
    }
    check_launch("mamba1_scan_kernel");
}

void launch_mamba2_scan(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba2ScanArgs& a,
                        cudaStream_t stream) {
    if (n == 0) return;
    const int npl = states_per_lane(a.N);
    const int per_block = kScanThreads / (a.N / npl);
    const dim3 grid(n, (a.H * a.P + per_block - 1) / per_block);
    switch (npl) {
        case 1: mamba2_scan_kernel<1><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
        case 2: mamba2_scan_kernel<2><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
        case 4: mamba2_scan_kernel<4><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
        default: mamba2_scan_kernel<8><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
    }
    check_launch("mamba2_scan_kernel");
}

}  // namespace mamba::cuda
