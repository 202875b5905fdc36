// scan_kernels.cu — the Mamba-1 selective scan and the Mamba-2 recurrent SSD scan over packed segments.
//
// Mamba-1, channel e of E, state n of N, token t of a segment (h_0 = the segment's initial state or zeros):
//   Δ_t = softplus(dt_t + dt_bias_e)                 dt_t = dt_proj(dt_low_t), the GEMM output before its bias
//   h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t x_t         A = −exp(A_log) [E×N]; B_t, C_t ∈ ℝ^N shared by every channel
//   y_t = (C_t · h_t + D x_t) · SiLU(z_t)            the D skip and the SiLU(z) gate fused here
// Mamba-2, head h of H, head dim p of P, group g = h / (H/G) supplies B_t, C_t ∈ ℝ^N; A, D, dt_bias per head:
//   Δ_t = softplus(dt_t + dt_bias_h)
//   S_t = exp(Δ_t A_h) S_{t−1} + Δ_t x_t ⊗ B_t       S ∈ ℝ^{P×N} per head (one row per channel p)
//   y_t = S_t C_t + D_h x_t                           (the gate and the group RMSNorm follow in norm_kernels.cu)
//
// One thread per channel (Mamba-1: e; Mamba-2: (h, p)) holds all of its N states in registers and walks its segment
// token by token; y_t = Σ_n C_t[n]·h_t[n] is a sequential sum in that thread, so a row's result does not depend on
// what else is packed in the call. Kernels, by d_state:
// - Mamba-1 N = 8, 16, 32 ("chunked", the main path): the inputs of the next 8 tokens (Δ, x, z of the channel; B, C
//   of each row) are copied into shared memory with cp.async while the current 8 are computed; the decay is one
//   ex2.approx per state update with log2(e) folded into A once per call. It also takes a ScanQueue, so one launch
//   serves every level of a call.
// - Mamba-1 N = 64 and Mamba-2 N = 8…128 (2·G·N ≤ 1024): the "regs" kernels, the next row prefetched into
//   registers, B and C staged in shared memory.
// - Other sizes: the "lanes" kernels, L = min(N, 32) lanes per channel with N/L states each, y reduced over the
//   lanes with a fixed butterfly.
// - step() (1-token segments) of the chunked and regs sizes: the "step" kernels, a group of lanes per channel (Mamba-1:
//   one state each; Mamba-2: a warp, N/32 states each), so state rows are read and written coalesced and a
//   1-sequence step fills the GPU; y stays the same sequential chain, passed from lane to lane.
// States: Mamba-1 [layer][E][N], Mamba-2 [layer][H][P][N]; read at the start and written at the end by the same
// thread (so saving in place over the initial state is safe).
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "device_math.cuh"
#include "scan_queue.cuh"

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
        const float delta = softplus(a.dt[row * a.E + ec] + bias);  // Δ_t
        const float xv = a.x[row * a.E + ec];
        const float* bc = a.dbc + row * dbc_stride + a.R;
        float part = 0.0f;
#pragma unroll
        for (int j = 0; j < NPL; ++j) {  // this lane's states n = lane, lane + L, …
            const int n = lane + j * L;
            h[j] = expf(delta * A[j]) * h[j] + delta * bc[n] * xv;  // h = exp(Δ A) h + Δ B x
            part += h[j] * bc[a.N + n];                               // Σ_n C h (this lane's part)
        }
        const float sum = group_sum(part, L);
        if (lane == 0 && valid) {
            const float zv = a.z[row * a.z_stride + ec];
            store_act(a.y, row * a.E + ec, (sum + d_skip * xv) * silu(zv));  // y = (C·h + D x) SiLU(z)
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
        const float delta = softplus(a.dt[row * a.dt_stride + head] + bias);  // Δ_t
        const float decay = expf(delta * A);                                   // exp(Δ_t A_h)
        const float* r = a.xbc + row * xbc_stride;
        const float xv = r[cc];
        float part = 0.0f;
#pragma unroll
        for (int j = 0; j < NPL; ++j) {  // this lane's states n = lane, lane + L, …
            const int n = lane + j * L;
            h[j] = decay * h[j] + delta * r[b_off + n] * xv;  // S[p][n] = exp(Δ A) S[p][n] + Δ x_p B_n
            part += h[j] * r[c_off + n];                      // Σ_n S[p][n] C_n (this lane's part)
        }
        const float sum = group_sum(part, L);
        if (lane == 0 && valid) a.y[row * E + cc] = sum + d_skip * xv;  // y = S C + D x
    }
    float* save = segs.save_ssm[seg];
    if (save != nullptr && valid) {
#pragma unroll
        for (int j = 0; j < NPL; ++j) save[state_off + lane + j * L] = h[j];
    }
}

/** 2^v by the SFU (ex2.approx.ftz: ≈ 2 ulp, results below 2^-126 flushed to 0). */
__device__ __forceinline__ float fast_exp2(float v) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));
    return r;
}

constexpr float kLog2e = 1.4426950408889634f;

/**
 * softplus(v) = log(1 + e^v) (v ≤ 20, else v) with e^v on the SFU: one rounding of v·log2(e) and ex2.approx
 * (≈ 2e-7 relative, the accuracy of the decays' exponentials) instead of expf's ten-instruction sequence; log1pf
 * stays, so small e^v keep their full relative accuracy.
 */
__device__ __forceinline__ float softplus_sfu(float v) { return v <= 20.0f ? log1pf(fast_exp2(v * kLog2e)) : v; }

/**
 * SiLU(v) = v / (1 + e^{−v}) with e^{−v} on the SFU and a fast divide (v·rcp): ≈ 4e-7 relative, in 5 instructions
 * instead of ≈ 20 (expf and an IEEE division). For v < −88, e^{−v} is +inf and the result 0 (true value < 1e-36).
 */
__device__ __forceinline__ float silu_sfu(float v) { return __fdividef(v, 1.0f + fast_exp2(-v * kLog2e)); }

/** Asynchronous 4-byte global → shared copy (cp.async.ca); completes at the next cp_async_wait. */
__device__ __forceinline__ void cp_async4(float* dst, const float* src) {
    const unsigned saddr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(saddr), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
/** Waits until at most `kPending` of this thread's committed copy groups are still in flight. */
template <int kPending>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending)); }

constexpr int kScanChunk = 8;  // tokens staged per cp.async round of the chunked Mamba-1 kernel

/** One block's staged inputs for kScanChunk tokens: per channel dt, x, z; per row B then C. */
template <int NS>
struct Mamba1Chunk {
    float dt[kScanChunk][kScanThreads];
    float x[kScanChunk][kScanThreads];
    float z[kScanChunk][kScanThreads];
    __align__(16) float bc[kScanChunk][2 * NS];
};
static_assert(sizeof(Mamba1Chunk<8>) % 16 == 0, "B/C rows are read as float4");

/**
 * Mamba-1 scan for d_state 8, 16, 32, one thread per channel e holding all NS states and A·log2(e) in registers. The inputs of
 * kScanChunk tokens are copied into shared memory by cp.async (each thread its own channel's dt, x, z; the
 * block together the rows' B and C), double-buffered: chunk c+1 is in flight while chunk c is computed, so the
 * loop never waits on global memory latency. Per state update: one multiply, one ex2.approx, one multiply by
 * the hoisted Δ·x and two FMAs. The order of operations per channel is fixed, so results do not depend on the
 * batch.
 */
template <int NS>
__global__ void __launch_bounds__(kScanThreads, NS <= 16 ? 8 : 4)
    mamba1_scan_chunked_kernel(ScanQueue q, SegTable segs, int layer, Mamba1ScanArgs a) {
    __shared__ Mamba1Chunk<NS> stage[2];
    const ScanItem item = scan_take(q);
    const int e = item.block * kScanThreads + threadIdx.x;
    const bool valid = e < a.E;
    const int ec = valid ? e : a.E - 1;  // idle threads still take part in the barriers
    const int seg = item.seg;
    const int s0 = segs.start[seg];
    const int s1 = s0 + segs.length[seg];
    const size_t state_off = static_cast<size_t>(layer) * a.E * NS + static_cast<size_t>(ec) * NS;
    const float* init = segs.init_ssm[seg];
    const size_t dbc_stride = static_cast<size_t>(a.R + 2 * NS);

    float A2[NS];
    float h[NS];
#pragma unroll
    for (int n = 0; n < NS; ++n) {
        A2[n] = a.A[static_cast<size_t>(ec) * NS + n] * kLog2e;
        h[n] = init != nullptr ? __ldcg(init + state_off + n) : 0.0f;  // L2: another block may have just saved it
    }
    const float bias = a.dt_bias[ec];
    const float d_skip = a.Dskip[ec];

    // Issues the copies of the chunk starting at token c into stage[buf] (rows past the segment are skipped).
    auto issue = [&](int c, int buf) {
        const int rows = min(kScanChunk, s1 - c);
        for (int k = 0; k < rows; ++k) {
            const size_t row = static_cast<size_t>(c + k);
            cp_async4(&stage[buf].dt[k][threadIdx.x], a.dt + row * a.E + ec);
            cp_async4(&stage[buf].x[k][threadIdx.x], a.x + row * a.E + ec);
            cp_async4(&stage[buf].z[k][threadIdx.x], a.z + row * a.z_stride + ec);
        }
        for (int i = threadIdx.x; i < rows * 2 * NS; i += kScanThreads) {
            const int k = i / (2 * NS);
            const int j = i % (2 * NS);
            cp_async4(&stage[buf].bc[k][j], a.dbc + static_cast<size_t>(c + k) * dbc_stride + a.R + j);
        }
    };

    issue(s0, 0);
    cp_async_commit();
    for (int c = s0, chunk = 0; c < s1; c += kScanChunk, ++chunk) {
        const int buf = chunk & 1;
        if (c + kScanChunk < s1) issue(c + kScanChunk, buf ^ 1);
        cp_async_commit();  // possibly empty: keeps "all but the newest group" = this chunk
        cp_async_wait<1>();
        __syncthreads();
        const Mamba1Chunk<NS>& st = stage[buf];
        const int rows = min(kScanChunk, s1 - c);
        for (int k = 0; k < rows; ++k) {
            const float xv = st.x[k][threadIdx.x];
            const float delta = softplus_sfu(st.dt[k][threadIdx.x] + bias);  // Δ_t
            const float dx = delta * xv;                                     // Δ_t x_t
            const float4* B4 = reinterpret_cast<const float4*>(st.bc[k]);  // 16-byte aligned rows
            const float4* C4 = reinterpret_cast<const float4*>(st.bc[k] + NS);
            float y = 0.0f;
#pragma unroll
            for (int q = 0; q < NS / 4; ++q) {
                const float4 b = B4[q];
                const float4 cc = C4[q];
                const float bq[4] = {b.x, b.y, b.z, b.w};
                const float cq[4] = {cc.x, cc.y, cc.z, cc.w};
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int n = 4 * q + j;
                    h[n] = fmaf(fast_exp2(delta * A2[n]), h[n], bq[j] * dx);  // h = 2^{Δ A log2 e} h + B Δx
                    y = fmaf(h[n], cq[j], y);                                   // y += C_n h_n, n ascending
                }
            }
            // y_t = (C·h + D x) SiLU(z)
            if (valid) store_act(a.y, static_cast<size_t>(c + k) * a.E + ec, __fmaf_rn(d_skip, xv, y) * silu_sfu(st.z[k][threadIdx.x]));
        }
        __syncthreads();  // stage[buf] is refilled by the next iteration's issue
    }
    float* save = segs.save_ssm[seg];
    if (save != nullptr && valid) {
#pragma unroll
        for (int n = 0; n < NS; ++n) save[state_off + n] = h[n];
    }
    scan_finish(q, item);
}

/** Threads per block of the step kernels: 8 warps. */
constexpr int kStepThreads = 256;

/**
 * Mamba-1 scan for step(), d_state 8, 16, 32: NS lanes per (segment, channel), lane n holding state n, so a channel's
 * state and A rows are read and written by one coalesced access and a 1-token step spreads over E·NS threads instead
 * of E. The arithmetic is the chunked kernel's, in its order: the updates are elementwise, and y = Σ_n C_n h_n stays
 * one sequential chain from n = 0 up (lane n continues the sum lane n − 1 passed on), so step() and score() agree
 * bit for bit.
 */
template <int NS>
__global__ void __launch_bounds__(kStepThreads)
    mamba1_step_kernel(const int32_t* seg_list, SegTable segs, int layer, Mamba1ScanArgs a) {
    constexpr int kPerBlock = kStepThreads / NS;  // channels
    const int n = threadIdx.x % NS;
    const int e = blockIdx.y * kPerBlock + threadIdx.x / NS;
    const bool valid = e < a.E;
    const int ec = valid ? e : a.E - 1;  // lanes past E still take part in the shuffles
    const int seg = seg_list[blockIdx.x];
    const int s0 = segs.start[seg];
    const int s1 = s0 + segs.length[seg];
    const size_t state_off = (static_cast<size_t>(layer) * a.E + ec) * NS + n;
    const float* init = segs.init_ssm[seg];
    const size_t dbc_stride = static_cast<size_t>(a.R + 2 * NS);

    const float A2 = a.A[static_cast<size_t>(ec) * NS + n] * kLog2e;
    float h = init != nullptr ? init[state_off] : 0.0f;
    const float bias = a.dt_bias[ec];
    const float d_skip = a.Dskip[ec];
    for (int t = s0; t < s1; ++t) {
        const size_t row = static_cast<size_t>(t);
        const float* bc = a.dbc + row * dbc_stride + a.R;  // B | C
        const float xv = a.x[row * a.E + ec];
        const float delta = softplus_sfu(a.dt[row * a.E + ec] + bias);  // Δ_t
        const float dx = delta * xv;                                    // Δ_t x_t
        h = fmaf(fast_exp2(delta * A2), h, bc[n] * dx);                 // h = 2^{Δ A log2 e} h + B Δx
        const float c = bc[NS + n];
        float y = 0.0f;
        for (int l = 0; l < NS; ++l) {  // y += C_n h_n, n ascending
            if (n == l) y = fmaf(h, c, y);
            y = __shfl_sync(0xffffffffu, y, l, NS);
        }
        // y_t = (C·h + D x) SiLU(z)
        if (n == 0 && valid) store_act(a.y, row * a.E + ec, __fmaf_rn(d_skip, xv, y) * silu_sfu(a.z[row * a.z_stride + ec]));
    }
    float* save = segs.save_ssm[seg];
    if (save != nullptr && valid) save[state_off] = h;
}

/**
 * Mamba-1 scan for d_state 64 (the chunked kernel's staging would not fit), one thread per channel e holding all NS
 * states in registers (no cross-lane reduction:
 * y = Σ_n C_n·h_n is a plain sequential sum). The token's B and C (shared by all channels) are staged once
 * per block in shared memory, double-buffered; the next row's dt, x, z, B and C are fetched into registers
 * while the current row is computed, so the loop is not bound by memory latency.
 */
template <int NS>
__global__ void __launch_bounds__(kScanThreads)
    mamba1_scan_regs_kernel(const int32_t* seg_list, SegTable segs, int layer, Mamba1ScanArgs a) {
    __shared__ float staged[2][2 * NS];  // B then C of one row
    constexpr int kPer = (2 * NS + kScanThreads - 1) / kScanThreads;
    const int e = blockIdx.y * kScanThreads + threadIdx.x;
    const bool valid = e < a.E;
    const int ec = valid ? e : a.E - 1;  // idle threads still take part in the barriers
    const int seg = seg_list[blockIdx.x];
    const int s0 = segs.start[seg];
    const int s1 = s0 + segs.length[seg];
    const size_t state_off = static_cast<size_t>(layer) * a.E * NS + static_cast<size_t>(ec) * NS;
    const float* init = segs.init_ssm[seg];
    const int dbc_stride = a.R + 2 * NS;

    float A[NS];
    float h[NS];
#pragma unroll
    for (int n = 0; n < NS; ++n) {
        A[n] = a.A[static_cast<size_t>(ec) * NS + n];
        h[n] = init != nullptr ? init[state_off + n] : 0.0f;
    }
    const float bias = a.dt_bias[ec];
    const float d_skip = a.Dskip[ec];

    for (int i = threadIdx.x; i < 2 * NS; i += kScanThreads) staged[0][i] = a.dbc[static_cast<size_t>(s0) * dbc_stride + a.R + i];
    float dt_c = a.dt[static_cast<size_t>(s0) * a.E + ec];
    float x_c = a.x[static_cast<size_t>(s0) * a.E + ec];
    float z_c = a.z[static_cast<size_t>(s0) * a.z_stride + ec];
    __syncthreads();
    for (int t = s0; t < s1; ++t) {
        const int buf = (t - s0) & 1;
        const bool more = t + 1 < s1;
        const size_t nrow = static_cast<size_t>(more ? t + 1 : t);
        float fetched[kPer];
#pragma unroll
        for (int k = 0; k < kPer; ++k) {
            const int i = threadIdx.x + k * kScanThreads;
            fetched[k] = (more && i < 2 * NS) ? a.dbc[nrow * dbc_stride + a.R + i] : 0.0f;
        }
        const float dt_n = a.dt[nrow * a.E + ec];
        const float x_n = a.x[nrow * a.E + ec];
        const float z_n = a.z[nrow * a.z_stride + ec];

        const float delta = softplus(dt_c + bias);  // Δ_t
        float y = 0.0f;
#pragma unroll
        for (int n = 0; n < NS; ++n) {
            h[n] = expf(delta * A[n]) * h[n] + delta * staged[buf][n] * x_c;  // h = exp(Δ A) h + Δ B x
            y += h[n] * staged[buf][NS + n];                                   // y = Σ_n C_n h_n
        }
        if (valid) store_act(a.y, static_cast<size_t>(t) * a.E + ec, (y + d_skip * x_c) * silu(z_c));  // (y + D x) SiLU(z)
#pragma unroll
        for (int k = 0; k < kPer; ++k) {
            const int i = threadIdx.x + k * kScanThreads;
            if (more && i < 2 * NS) staged[buf ^ 1][i] = fetched[k];
        }
        dt_c = dt_n;
        x_c = x_n;
        z_c = z_n;
        __syncthreads();
    }
    float* save = segs.save_ssm[seg];
    if (save != nullptr && valid) {
#pragma unroll
        for (int n = 0; n < NS; ++n) save[state_off + n] = h[n];
    }
}

/**
 * exp(Δ A)·s + (Δ·B_n)·x_p with its roundings spelled out (the product of the last two, then one fma), so every
 * Mamba-2 recurrent kernel computes a state bit for bit the same whatever the compiler would contract.
 */
__device__ __forceinline__ float mamba2_state_update(float s, float decay, float delta, float b, float x) {
    return __fmaf_rn(decay, s, __fmul_rn(__fmul_rn(delta, b), x));
}

/**
 * Mamba-2 scan, one thread per channel (head h, dim p) holding all NS states in registers. Mamba-2's decay is
 * one scalar per head and token, so a channel needs no cross-lane reduction: y = Σ_n C_n·h_n is a plain
 * sequential sum. The token's B and C (shared by every head of a group) are staged once per block in shared
 * memory, double-buffered: the next row (B, C, dt, x) is fetched into registers while the current one is used.
 */
template <int NS>
__global__ void __launch_bounds__(kScanThreads)
    mamba2_scan_regs_kernel(const int32_t* seg_list, SegTable segs, int layer, Mamba2ScanArgs a) {
    extern __shared__ float staged[];  // [2][2·G·NS]: B of every group, then C of every group
    const int E = a.H * a.P;
    const int width = 2 * a.G * NS;
    const int ch = blockIdx.y * kScanThreads + threadIdx.x;
    const bool valid = ch < E;
    const int cc = valid ? ch : E - 1;  // idle threads still take part in the barriers
    const int head = cc / a.P;
    const int group = head / (a.H / a.G);
    const int seg = seg_list[blockIdx.x];
    const int s0 = segs.start[seg];
    const int s1 = s0 + segs.length[seg];
    const size_t state_off = static_cast<size_t>(layer) * E * NS + static_cast<size_t>(cc) * NS;
    const float* init = segs.init_ssm[seg];
    const int xbc_stride = E + width;

    float h[NS];
#pragma unroll
    for (int n = 0; n < NS; ++n) h[n] = init != nullptr ? init[state_off + n] : 0.0f;
    const float A = a.A[head];
    const float bias = a.dt_bias[head];
    const float d_skip = a.Dskip[head];

    for (int i = threadIdx.x; i < width; i += kScanThreads) staged[i] = a.xbc[static_cast<size_t>(s0) * xbc_stride + E + i];
    float dt_c = a.dt[static_cast<size_t>(s0) * a.dt_stride + head];
    float x_c = a.xbc[static_cast<size_t>(s0) * xbc_stride + cc];
    __syncthreads();
    constexpr int kMaxPerThread = 8;  // width ≤ 8 · kScanThreads (checked by the launcher)
    for (int t = s0; t < s1; ++t) {
        const float* cur = staged + ((t - s0) & 1) * width;
        float* next = staged + (((t - s0) & 1) ^ 1) * width;
        float fetched[kMaxPerThread];
        const bool more = t + 1 < s1;
        const size_t nrow = static_cast<size_t>(more ? t + 1 : t);
#pragma unroll
        for (int k = 0; k < kMaxPerThread; ++k) {
            const int i = threadIdx.x + k * kScanThreads;
            fetched[k] = (more && i < width) ? a.xbc[nrow * xbc_stride + E + i] : 0.0f;
        }
        const float dt_n = a.dt[nrow * a.dt_stride + head];
        const float x_n = a.xbc[nrow * xbc_stride + cc];
        const size_t row = static_cast<size_t>(t);
        const float delta = softplus(dt_c + bias);  // Δ_t
        const float decay = expf(delta * A);       // exp(Δ_t A_h)
        const float xv = x_c;
        const float* B = cur + group * NS;
        const float* C = cur + a.G * NS + group * NS;
        float y = 0.0f;
#pragma unroll
        for (int n = 0; n < NS; ++n) {
            h[n] = mamba2_state_update(h[n], decay, delta, B[n], xv);  // S[p][n] = exp(Δ A) S[p][n] + Δ x_p B_n
            y = __fmaf_rn(h[n], C[n], y);                              // y_p = Σ_n S[p][n] C_n
        }
        if (valid) a.y[row * E + cc] = __fmaf_rn(d_skip, xv, y);  // + D x
#pragma unroll
        for (int k = 0; k < kMaxPerThread; ++k) {
            const int i = threadIdx.x + k * kScanThreads;
            if (more && i < width) next[i] = fetched[k];
        }
        dt_c = dt_n;
        x_c = x_n;
        __syncthreads();
    }
    float* save = segs.save_ssm[seg];
    if (save != nullptr && valid) {
#pragma unroll
        for (int n = 0; n < NS; ++n) save[state_off + n] = h[n];
    }
}

/**
 * Mamba-2 scan for step(): one warp per (segment, channel), lane l holding states n = l·KPER … l·KPER + KPER − 1,
 * so a channel's N-float state row is read and written by one coalesced warp access and a 1-token step of a
 * 2.7b-sized layer spreads over E warps instead of E/128 blocks. The arithmetic is the regs kernel's, in its
 * order: the updates are elementwise, and y = Σ_n S[p][n] C_n stays one sequential chain from n = 0 up (lane l
 * continues the sum lane l − 1 passed on), so step() and score() agree bit for bit.
 */
template <int KPER>
__global__ void __launch_bounds__(kStepThreads)
    mamba2_step_kernel(const int32_t* seg_list, SegTable segs, int layer, Mamba2ScanArgs a) {
    const int E = a.H * a.P;
    const int lane = threadIdx.x % 32;
    const int ch = blockIdx.y * (kStepThreads / 32) + threadIdx.x / 32;
    if (ch >= E) return;  // whole warps leave together; the kernel has no barrier
    const int head = ch / a.P;
    const int group = head / (a.H / a.G);
    const int seg = seg_list[blockIdx.x];
    const int s0 = segs.start[seg];
    const int s1 = s0 + segs.length[seg];
    const int lanes = a.N / KPER;  // lanes holding states
    const bool holds = lane < lanes;
    const int n0 = lane * KPER;
    const size_t state_off = (static_cast<size_t>(layer) * E + ch) * a.N + n0;
    const float* init = segs.init_ssm[seg];

    float h[KPER];
#pragma unroll
    for (int j = 0; j < KPER; ++j) h[j] = (init != nullptr && holds) ? init[state_off + j] : 0.0f;
    const float A = a.A[head];
    const float bias = a.dt_bias[head];
    const float d_skip = a.Dskip[head];
    const int xbc_stride = E + 2 * a.G * a.N;
    for (int t = s0; t < s1; ++t) {
        const size_t row = static_cast<size_t>(t);
        const float* r = a.xbc + row * xbc_stride;
        const float* B = r + E + group * a.N + n0;
        const float* C = r + E + a.G * a.N + group * a.N + n0;
        const float delta = softplus(a.dt[row * a.dt_stride + head] + bias);  // Δ_t
        const float decay = expf(delta * A);                                   // exp(Δ_t A_h)
        const float xv = r[ch];
        float c[KPER];
#pragma unroll
        for (int j = 0; j < KPER; ++j) {
            const float b = holds ? B[j] : 0.0f;
            c[j] = holds ? C[j] : 0.0f;
            h[j] = mamba2_state_update(h[j], decay, delta, b, xv);  // S[p][n] = exp(Δ A) S[p][n] + Δ x_p B_n
        }
        float y = 0.0f;
        for (int l = 0; l < lanes; ++l) {  // y_p = Σ_n S[p][n] C_n, n ascending
            if (lane == l) {
#pragma unroll
                for (int j = 0; j < KPER; ++j) y = __fmaf_rn(h[j], c[j], y);
            }
            y = __shfl_sync(0xffffffffu, y, l);
        }
        if (lane == 0) a.y[row * E + ch] = __fmaf_rn(d_skip, xv, y);  // + D x
    }
    float* save = segs.save_ssm[seg];
    if (save != nullptr && holds) {
#pragma unroll
        for (int j = 0; j < KPER; ++j) save[state_off + j] = h[j];
    }
}

template <int KPER>
void launch_mamba2_step(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba2ScanArgs& a,
                        cudaStream_t stream) {
    const int warps = kStepThreads / 32;
    const dim3 grid(n, (a.H * a.P + warps - 1) / warps);
    mamba2_step_kernel<KPER><<<grid, kStepThreads, 0, stream>>>(seg_list, segs, layer, a);
}

/** The register kernel, the token's B and C of every group staged twice (double buffer). */
template <int NS>
void launch_mamba2_regs(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba2ScanArgs& a,
                        cudaStream_t stream) {
    const dim3 grid(n, (a.H * a.P + kScanThreads - 1) / kScanThreads);
    const size_t staged = 2 * sizeof(float) * 2 * a.G * NS;
    mamba2_scan_regs_kernel<NS><<<grid, kScanThreads, staged, stream>>>(seg_list, segs, layer, a);
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

/** Mamba-1 d_state sizes without a chunked kernel: the register kernel for 64, else the lanes kernel. */
void launch_mamba1_regs_or_lanes(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba1ScanArgs& a,
                                 cudaStream_t stream) {
    if (a.N == 64) {
        const dim3 regs_grid(n, (a.E + kScanThreads - 1) / kScanThreads);
        mamba1_scan_regs_kernel<64><<<regs_grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a);
        return;
    }
    const int npl = states_per_lane(a.N);  // 1 (N ≤ 4), 4 (128) or 8 (256)
    const int per_block = kScanThreads / (a.N / npl);
    const dim3 grid(n, (a.E + per_block - 1) / per_block);
    switch (npl) {
        case 1: mamba1_scan_kernel<1><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
        case 4: mamba1_scan_kernel<4><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
        default: mamba1_scan_kernel<8><<<grid, kScanThreads, 0, stream>>>(seg_list, segs, layer, a); break;
    }
}

void launch_mamba1_chunked(ScanQueue q, dim3 grid, SegTable segs, int layer, const Mamba1ScanArgs& a,
                           cudaStream_t stream) {
    switch (a.N) {
        case 8: mamba1_scan_chunked_kernel<8><<<grid, kScanThreads, 0, stream>>>(q, segs, layer, a); break;
        case 16: mamba1_scan_chunked_kernel<16><<<grid, kScanThreads, 0, stream>>>(q, segs, layer, a); break;
        case 32: mamba1_scan_chunked_kernel<32><<<grid, kScanThreads, 0, stream>>>(q, segs, layer, a); break;
        default: throw std::logic_error("mamba1 chunked scan: d_state " + std::to_string(a.N) + " has no kernel");
    }
}

/** The step kernel (1-token segments) for the chunked kernel's d_state sizes: NS lanes per channel. */
void launch_mamba1_step(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba1ScanArgs& a,
                        cudaStream_t stream) {
    auto launch = [&](auto kernel, int ns) {
        const int per_block = kStepThreads / ns;
        kernel<<<dim3(n, (a.E + per_block - 1) / per_block), kStepThreads, 0, stream>>>(seg_list, segs, layer, a);
    };
    switch (a.N) {
        case 8: launch(mamba1_step_kernel<8>, 8); break;
        case 16: launch(mamba1_step_kernel<16>, 16); break;
        case 32: launch(mamba1_step_kernel<32>, 32); break;
        default: throw std::logic_error("mamba1 step scan: d_state " + std::to_string(a.N) + " has no step kernel");
    }
}

}  // namespace

int mamba1_scan_queue_blocks(int E, int N) {
    const bool chunked = N == 8 || N == 16 || N == 32;
    return chunked ? (E + kScanThreads - 1) / kScanThreads : 0;
}

void launch_mamba1_scan(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba1ScanArgs& a,
                        bool one_token_segments, cudaStream_t stream) {
    if (n == 0) return;
    const int blocks = (a.E + kScanThreads - 1) / kScanThreads;
    const bool chunked = mamba1_scan_queue_blocks(a.E, a.N) > 0;  // the chunked kernel for the usual state sizes
    if (chunked && one_token_segments) {  // step(): the same arithmetic, a lane per state
        launch_mamba1_step(seg_list, n, segs, layer, a, stream);
    } else if (chunked) {
        launch_mamba1_chunked(ScanQueue{seg_list, nullptr, nullptr, nullptr, 0, blocks}, dim3(n, blocks), segs, layer, a,
                              stream);
    } else {
        launch_mamba1_regs_or_lanes(seg_list, n, segs, layer, a, stream);
    }
    check_launch("mamba1_scan_kernel");
}

void launch_mamba1_scan_queued(ScanQueue q, int n, SegTable segs, int layer, const Mamba1ScanArgs& a,
                               cudaStream_t stream) {
    if (n == 0) return;
    launch_mamba1_chunked(q, dim3(unsigned(n) * unsigned(q.blocks)), segs, layer, a, stream);
    check_launch("mamba1_scan_kernel (queued)");
}

void launch_mamba2_scan(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba2ScanArgs& a,
                        bool one_token_segments, cudaStream_t stream) {
    if (n == 0) return;
    // step(): a warp per channel, where score() runs the register kernel below (the same arithmetic).
    if (one_token_segments && 2 * a.G * a.N <= 8 * kScanThreads) {
        bool launched = true;
        switch (a.N) {
            case 8: case 16: case 32: launch_mamba2_step<1>(seg_list, n, segs, layer, a, stream); break;
            case 64: launch_mamba2_step<2>(seg_list, n, segs, layer, a, stream); break;
            case 128: launch_mamba2_step<4>(seg_list, n, segs, layer, a, stream); break;
            default: launched = false;
        }
        if (launched) {
            check_launch("mamba2_step_kernel");
            return;
        }
    }
    // The register kernel for the usual state sizes (2·G·N staged floats must fit 8 per thread).
    if (2 * a.G * a.N <= 8 * kScanThreads) {
        bool launched = true;
        switch (a.N) {
            case 8: launch_mamba2_regs<8>(seg_list, n, segs, layer, a, stream); break;
            case 16: launch_mamba2_regs<16>(seg_list, n, segs, layer, a, stream); break;
            case 32: launch_mamba2_regs<32>(seg_list, n, segs, layer, a, stream); break;
            case 64: launch_mamba2_regs<64>(seg_list, n, segs, layer, a, stream); break;
            case 128: launch_mamba2_regs<128>(seg_list, n, segs, layer, a, stream); break;
            default: launched = false;
        }
        if (launched) {
            check_launch("mamba2_scan_regs_kernel");
            return;
        }
    }
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
