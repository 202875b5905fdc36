// ssd_kernels.cu — the Mamba-2 chunked SSD scan on tensor cores (bf16 weights only), state in and out.
//
// The recurrence it computes is the one of scan_kernels.cu (head h, group g = h / (H/G), state S ∈ ℝ^{P×N}):
//   Δ_t = softplus(dt_t + dt_bias_h),  S_t = exp(Δ_t A_h) S_{t−1} + Δ_t x_t ⊗ B_t,  y_t = S_t C_t + D_h x_t
// unrolled over chunks of L rows (one head h of group g, rows i = 0..L−1 of a chunk, S₀ the state at its start;
// dtᵢ below is Δ):
//   dtᵢ = softplus(dt_rawᵢ + dt_bias),  aᵢ = Σ_{k≤i} dt_k·A            (cumulative log-decay, fp32)
//   Sᵢ  = e^{aᵢ}·S₀ + Σ_{j≤i} e^{aᵢ−aⱼ}·dtⱼ·xⱼ·Bⱼᵀ                       (= the recurrence, unrolled)
//   yᵢ  = Cᵢ·Sᵢ + D·xᵢ
//       = Σ_{j≤i} [ (Cᵢ·Bⱼ)·e^{aᵢ−aⱼ} ]·(dtⱼ·xⱼ)  +  (e^{aᵢ}·Cᵢ)·S₀ᵀ  + D·xᵢ
//         └ M = (C·Bᵀ) ∘ decay mask ┘  └ Xdt ┘       └ Cexp ┘
//   S_L = e^{a_{L−1}}·S₀ + Σⱼ (e^{a_{L−1}−aⱼ}·dtⱼ·xⱼ)ᵀ·Bⱼ  =  e^{a_{L−1}}·S₀ + Xwᵀ·B
// so a chunk is five small matrix products (G = C·Bᵀ, M·Xdt, Cexp·S₀ᵀ, Xwᵀ·B) on tensor cores (wmma 16×16×16,
// fp32 accumulate) plus elementwise work. Operands: B, C, Xdt, Xw, M in fp16 (10-bit mantissa; these are
// bounded activations), Cexp and the S₀ copy in bf16 (a state can grow past fp16's range); the running state
// stays in fp32 accumulator fragments from chunk to chunk and is saved in fp32.
//
// One block (4 warps) per (segment, head) walks the segment's chunks in order. The chunk grid starts at the
// segment's first row, so a segment's result does not depend on what else is packed in the call; the
// scheduler cuts long segments only at multiples of the chunk length (kSsdChunkAlign), where the chunked and
// the uncut computation are the same arithmetic. Chunk length 64 at the real head sizes (P 64, N 128); 16 at
// the small test sizes, so short fixture sequences cross chunk boundaries.
#include <cuda_fp16.h>
#include <mma.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "device_math.cuh"
#include "scan_queue.cuh"
#include "wmma_tiles.cuh"

namespace mamba::cuda {

namespace {

using namespace nvcuda;
using Accum = WmmaAccum;

constexpr int kSsdThreads = 256;  // 8 warps
constexpr int kSsdWarps = kSsdThreads / 32;

template <int LC, int PP, int NN>
struct SsdLayout {
    static_assert(LC % 16 == 0 && PP % 16 == 0 && NN % 16 == 0, "wmma tiles are 16×16");
    // Row strides padded by 16 bytes, so the 8 rows a fragment load touches fall in different banks.
    static constexpr int kLdB = NN + 8;   // half/bf16 rows of B, C, Cexp and the bf16 state copy
    static constexpr int kLdX = PP + 8;   // half rows of Xdt, Xw
    static constexpr int kLdM = LC + 8;   // half rows of M
    static constexpr int kLdG = LC + 4;   // float rows of G
    static constexpr int kLdY = PP + 4;   // float rows of Y
    static constexpr int kLdS = NN + 4;   // float rows of the state
    static constexpr int kF = (LC * kLdG > LC * kLdY ? (LC * kLdG > PP * kLdS ? LC * kLdG : PP * kLdS)
                                                     : (LC * kLdY > PP * kLdS ? LC * kLdY : PP * kLdS));
    static constexpr size_t kB = 0;                                        // half  [LC][kLdB]
    static constexpr size_t kC = kB + size_t(LC) * kLdB * 2;               // half  [LC][kLdB], then bf16 Cexp
    static constexpr size_t kXdt = kC + size_t(LC) * kLdB * 2;             // half  [LC][kLdX]
    static constexpr size_t kXw = kXdt + size_t(LC) * kLdX * 2;            // half  [LC][kLdX]
    static constexpr size_t kM = kXw + size_t(LC) * kLdX * 2;              // half  [LC][kLdM]
    static constexpr size_t kS = kM + size_t(LC) * kLdM * 2;               // bf16  [PP][kLdB]
    static constexpr size_t kFo = kS + size_t(PP) * kLdB * 2;              // float [kF]: G, then Y, then the state
    static constexpr size_t kA = kFo + size_t(kF) * 4;                     // float [LC] cumulative a
    static constexpr size_t kDt = kA + size_t(LC) * 4;                     // float [LC] dt
    static constexpr size_t kEa = kDt + size_t(LC) * 4;                    // float [LC] e^{a}
    static constexpr size_t kEw = kEa + size_t(LC) * 4;                    // float [LC] e^{a_last − a}
    static constexpr size_t kBytes = kEw + size_t(LC) * 4;
};

// One block per SM, registers uncapped: no spills (measured faster than two blocks per SM with spills).
template <int LC, int PP, int NN>
__global__ void __launch_bounds__(kSsdThreads, 1)
    mamba2_ssd_chunked_kernel(ScanQueue q, SegTable segs, int layer, Mamba2ScanArgs a) {
    using Lay = SsdLayout<LC, PP, NN>;
    constexpr int LDB = Lay::kLdB, LDX = Lay::kLdX, LDM = Lay::kLdM, LDG = Lay::kLdG, LDY = Lay::kLdY, LDS = Lay::kLdS;
    extern __shared__ __align__(128) unsigned char smem[];
    half* Bh = reinterpret_cast<half*>(smem + Lay::kB);
    half* Ch = reinterpret_cast<half*>(smem + Lay::kC);
    __nv_bfloat16* Ce = reinterpret_cast<__nv_bfloat16*>(smem + Lay::kC);  // Cexp, written over C after G
    half* Xdt = reinterpret_cast<half*>(smem + Lay::kXdt);
    half* Xw = reinterpret_cast<half*>(smem + Lay::kXw);
    half* Mh = reinterpret_cast<half*>(smem + Lay::kM);
    __nv_bfloat16* Sb = reinterpret_cast<__nv_bfloat16*>(smem + Lay::kS);
    float* F = reinterpret_cast<float*>(smem + Lay::kFo);
    float* acum = reinterpret_cast<float*>(smem + Lay::kA);
    float* dts = reinterpret_cast<float*>(smem + Lay::kDt);
    float* ea = reinterpret_cast<float*>(smem + Lay::kEa);
    float* ew = reinterpret_cast<float*>(smem + Lay::kEw);

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int P = a.P, N = a.N, E = a.H * a.P;
    const ScanItem item = scan_take(q);
    const int head = item.block;
    const int group = head / (a.H / a.G);
    const int seg = item.seg;
    const int s0 = segs.start[seg];
    const int s1 = s0 + segs.length[seg];
    const int xbc_stride = E + 2 * a.G * N;
    const float A = a.A[head], bias = a.dt_bias[head], d_skip = a.Dskip[head];
    const size_t state_off = static_cast<size_t>(layer) * E * N + static_cast<size_t>(head) * P * N;
    const bool vec = N % 4 == 0 && P % 4 == 0 && xbc_stride % 4 == 0 && (reinterpret_cast<uintptr_t>(a.xbc) & 15u) == 0;

    // Running state: warp w owns the 16×16 tiles w, w+8, … of the PP×NN state.
    constexpr int kSTiles = (PP / 16) * (NN / 16);
    constexpr int kSPerWarp = (kSTiles + kSsdWarps - 1) / kSsdWarps;
    Accum S[kSPerWarp];
    {
        const float* init = segs.init_ssm[seg];
        for (int i = threadIdx.x; i < PP * NN; i += kSsdThreads) {
            const int p = i / NN, n = i % NN;
            const float v = (init != nullptr && p < P && n < N) ? __ldcg(init + state_off + size_t(p) * N + n) : 0.0f;
            F[p * LDS + n] = v;
            Sb[p * LDB + n] = __float2bfloat16_rn(v);
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < kSPerWarp; ++k) {
            const int st = warp + k * kSsdWarps;
            if (st < kSTiles) {
                wmma::load_matrix_sync(S[k], F + (st / (NN / 16)) * 16 * LDS + (st % (NN / 16)) * 16, LDS, wmma::mem_row_major);
            }
        }
        __syncthreads();
    }

    constexpr int kBC4 = (LC * NN / 4 + kSsdThreads - 1) / kSsdThreads;
    constexpr int kX4 = (LC * PP / 4 + kSsdThreads - 1) / kSsdThreads;
    for (int c0 = s0; c0 < s1; c0 += LC) {
        const int rows = min(LC, s1 - c0);
        // 1. Every global load of the chunk is issued here, before any is used, so their latencies overlap: dt per
        //    row (zero on padding rows), B and C of the head's group and x of the head as float4 (vec: every
        //    width, stride and offset a multiple of 4 floats; otherwise one float at a time, same values).
        float dt_row = 0.0f;
        if (threadIdx.x < LC && int(threadIdx.x) < rows) {
            dt_row = a.dt[static_cast<size_t>(c0 + threadIdx.x) * a.dt_stride + head];
        }
        float4 bq[kBC4], cq[kBC4], xq[kX4];
#pragma unroll
        for (int u = 0; u < kBC4; ++u) {
            const int i4 = threadIdx.x + u * kSsdThreads, r = i4 / (NN / 4), n = (i4 % (NN / 4)) * 4;
            bq[u] = cq[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (i4 < LC * NN / 4 && r < rows && n < N) {
                const float* row = a.xbc + static_cast<size_t>(c0 + r) * xbc_stride + E;
                if (vec) {
                    bq[u] = __ldg(reinterpret_cast<const float4*>(row + group * N + n));
                    cq[u] = __ldg(reinterpret_cast<const float4*>(row + a.G * N + group * N + n));
                } else {
                    float* bp = &bq[u].x;
                    float* cp = &cq[u].x;
                    for (int e = 0; e < 4 && n + e < N; ++e) {
                        bp[e] = row[group * N + n + e];
                        cp[e] = row[a.G * N + group * N + n + e];
                    }
                }
            }
        }
#pragma unroll
        for (int u = 0; u < kX4; ++u) {
            const int i4 = threadIdx.x + u * kSsdThreads, r = i4 / (PP / 4), p = (i4 % (PP / 4)) * 4;
            xq[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (i4 < LC * PP / 4 && r < rows && p < P) {
                const float* xr = a.xbc + static_cast<size_t>(c0 + r) * xbc_stride + head * P;
                if (vec) {
                    xq[u] = __ldg(reinterpret_cast<const float4*>(xr + p));
                } else {
                    float* xp = &xq[u].x;
                    for (int e = 0; e < 4 && p + e < P; ++e) xp[e] = xr[p + e];
                }
            }
        }
        if (threadIdx.x < LC) dts[threadIdx.x] = int(threadIdx.x) < rows ? softplus(dt_row + bias) : 0.0f;
#pragma unroll
        for (int u = 0; u < kBC4; ++u) {
            const int i4 = threadIdx.x + u * kSsdThreads;
            if (i4 >= LC * NN / 4) continue;
            const int at = (i4 / (NN / 4)) * LDB + (i4 % (NN / 4)) * 4;
            reinterpret_cast<__half2*>(Bh + at)[0] = __floats2half2_rn(bq[u].x, bq[u].y);
            reinterpret_cast<__half2*>(Bh + at)[1] = __floats2half2_rn(bq[u].z, bq[u].w);
            reinterpret_cast<__half2*>(Ch + at)[0] = __floats2half2_rn(cq[u].x, cq[u].y);
            reinterpret_cast<__half2*>(Ch + at)[1] = __floats2half2_rn(cq[u].z, cq[u].w);
        }
        __syncthreads();
        // Cumulative a = Σ dt·A in a fixed order: each lane sums its run of rows, then an inclusive lane scan.
        if (warp == 0) {
            constexpr int kPerLane = (LC + 31) / 32;
            float v[kPerLane];
            float run = 0.0f;
#pragma unroll
            for (int e = 0; e < kPerLane; ++e) {
                const int r = lane * kPerLane + e;
                run += r < LC ? dts[r] * A : 0.0f;
                v[e] = run;
            }
            float incl = run;
            for (int off = 1; off < 32; off *= 2) {
                const float up = __shfl_up_sync(0xffffffffu, incl, off);
                if (lane >= off) incl += up;
            }
            const float before = incl - run;
            const float total = __shfl_sync(0xffffffffu, incl, 31);  // = a of the last row
#pragma unroll
            for (int e = 0; e < kPerLane; ++e) {
                const int r = lane * kPerLane + e;
                if (r < LC) {
                    const float ar = before + v[e];
                    acum[r] = ar;
                    ea[r] = expf(ar);
                    ew[r] = expf(total - ar);
                }
            }
        }
        __syncthreads();
        const float a_last = acum[LC - 1];

        // 2. Xdt = dt·x, Xw = e^{a_last − a}·dt·x; G = C·Bᵀ on the lower block triangle into F.
#pragma unroll
        for (int u = 0; u < kX4; ++u) {
            const int i4 = threadIdx.x + u * kSsdThreads;
            if (i4 >= LC * PP / 4) continue;
            const int r = i4 / (PP / 4), at = r * LDX + (i4 % (PP / 4)) * 4;
            const float d = dts[r], w = ew[r];
            const float xd[4] = {d * xq[u].x, d * xq[u].y, d * xq[u].z, d * xq[u].w};
            reinterpret_cast<__half2*>(Xdt + at)[0] = __floats2half2_rn(xd[0], xd[1]);
            reinterpret_cast<__half2*>(Xdt + at)[1] = __floats2half2_rn(xd[2], xd[3]);
            reinterpret_cast<__half2*>(Xw + at)[0] = __floats2half2_rn(w * xd[0], w * xd[1]);
            reinterpret_cast<__half2*>(Xw + at)[1] = __floats2half2_rn(w * xd[2], w * xd[3]);
        }
        for (int q = warp; q < (LC / 16) * (LC / 16); q += kSsdWarps) {
            const int ti = q / (LC / 16), tj = q % (LC / 16);
            if (tj > ti) continue;  // masked to zero below
            Accum g;
            wmma::fill_fragment(g, 0.0f);
            // G[ti][tj] = Σ_n C[ti rows][n]·B[tj rows][n]
            mma_tiles<half, wmma::row_major, wmma::col_major>(g, Ch + ti * 16 * LDB, LDB, 16, Bh + tj * 16 * LDB, LDB, 16,
                                                              NN / 16);
            wmma::store_matrix_sync(F + ti * 16 * LDG + tj * 16, g, LDG, wmma::mem_row_major);
        }
        __syncthreads();

        // 3. M = G ∘ [j ≤ i]·e^{aᵢ−aⱼ} (fp16); Cexp = e^{aᵢ}·Cᵢ (bf16, in place over C: same thread reads and writes).
        for (int i = threadIdx.x; i < LC * LC; i += kSsdThreads) {
            const int r = i / LC, j = i % LC;
            Mh[r * LDM + j] = __float2half_rn(j <= r ? F[r * LDG + j] * expf(acum[r] - acum[j]) : 0.0f);
        }
        for (int i = threadIdx.x; i < LC * NN; i += kSsdThreads) {
            const int r = i / NN, at = r * LDB + i % NN;
            Ce[at] = __float2bfloat16_rn(ea[r] * __half2float(Ch[at]));
        }
        __syncthreads();

        // 4. Y = M·Xdt + Cexp·S₀ᵀ (tile rows ti, head-dim columns tp) into F (G's space, consumed in 3).
        //    Then S ← e^{a_last}·S + Xwᵀ·B in the state fragments.
        constexpr int kYTiles = (LC / 16) * (PP / 16);
#pragma unroll
        for (int k = 0; k < (kYTiles + kSsdWarps - 1) / kSsdWarps; ++k) {
            const int q = warp + k * kSsdWarps;
            if (q >= kYTiles) continue;
            const int ti = q / (PP / 16), tp = q % (PP / 16);
            Accum y;
            wmma::fill_fragment(y, 0.0f);
            // Y = Σ_{j ≤ i} M[i][j]·Xdt[j] (tiles kt ≤ ti), then + Σ_n Cexp[i][n]·S₀[p][n]
            mma_tiles<half, wmma::row_major, wmma::row_major>(y, Mh + ti * 16 * LDM, LDM, 16, Xdt + tp * 16, LDX, 16 * LDX,
                                                              ti + 1);
            mma_tiles<__nv_bfloat16, wmma::row_major, wmma::col_major>(y, Ce + ti * 16 * LDB, LDB, 16, Sb + tp * 16 * LDB,
                                                                       LDB, 16, NN / 16);
            wmma::store_matrix_sync(F + ti * 16 * LDY + tp * 16, y, LDY, wmma::mem_row_major);
        }
        {
            const float decay = expf(a_last);
#pragma unroll
            for (int s = 0; s < kSPerWarp; ++s) {
                const int st = warp + s * kSsdWarps;
                if (st >= kSTiles) continue;
                const int tp = st / (NN / 16), tn = st % (NN / 16);
#pragma unroll
                for (int e = 0; e < S[s].num_elements; ++e) S[s].x[e] *= decay;  // e^{a_last}·S
                // S[p][n] += Σ_j Xw[j][p]·B[j][n]
                mma_tiles<half, wmma::col_major, wmma::row_major>(S[s], Xw + tp * 16, LDX, 16 * LDX, Bh + tn * 16, LDB,
                                                                  16 * LDB, LC / 16);
            }
        }
        __syncthreads();

        // 5. y rows out (+ D·x from the registers loaded in 1); the new state into F (fp32) and its bf16 copy.
#pragma unroll
        for (int u = 0; u < kX4; ++u) {
            const int i4 = threadIdx.x + u * kSsdThreads, r = i4 / (PP / 4), p = (i4 % (PP / 4)) * 4;
            if (i4 >= LC * PP / 4 || r >= rows) continue;
            const float xs[4] = {xq[u].x, xq[u].y, xq[u].z, xq[u].w};
            float* yr = a.y + static_cast<size_t>(c0 + r) * E + head * P;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                if (p + e < P) yr[p + e] = F[r * LDY + p + e] + d_skip * xs[e];
            }
        }
        __syncthreads();
#pragma unroll
        for (int s = 0; s < kSPerWarp; ++s) {
            const int st = warp + s * kSsdWarps;
            if (st < kSTiles) {
                wmma::store_matrix_sync(F + (st / (NN / 16)) * 16 * LDS + (st % (NN / 16)) * 16, S[s], LDS, wmma::mem_row_major);
            }
        }
        __syncthreads();
        for (int i = threadIdx.x; i < PP * NN; i += kSsdThreads) {
            const int p = i / NN, n = i % NN;
            Sb[p * LDB + n] = __float2bfloat16_rn(F[p * LDS + n]);
        }
        // (the next chunk's first barrier orders these writes before any read; F holds the fp32 state until then)
    }

    float* save = segs.save_ssm[seg];
    if (save != nullptr) {
        for (int i = threadIdx.x; i < P * N; i += kSsdThreads) save[state_off + i] = F[(i / N) * LDS + i % N];
    }
    scan_finish(q, item);
}

template <int LC, int PP, int NN>
void launch_ssd(ScanQueue q, dim3 grid, SegTable segs, int layer, const Mamba2ScanArgs& a, cudaStream_t stream) {
    constexpr size_t bytes = SsdLayout<LC, PP, NN>::kBytes;
    static bool configured = false;  // the attribute is per function; set once per instantiation
    if (!configured) {
        check_cuda(cudaFuncSetAttribute(mamba2_ssd_chunked_kernel<LC, PP, NN>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(bytes)),
                   "mamba2_ssd_chunked_kernel: shared memory");
        configured = true;
    }
    mamba2_ssd_chunked_kernel<LC, PP, NN><<<grid, kSsdThreads, bytes, stream>>>(q, segs, layer, a);
}

void launch_ssd_shape(ScanQueue q, dim3 grid, SegTable segs, int layer, const Mamba2ScanArgs& a, cudaStream_t stream) {
    if (a.P <= 16 && a.N <= 16) {
        launch_ssd<16, 16, 16>(q, grid, segs, layer, a, stream);
    } else if (a.P <= 64 && a.N <= 128) {
        if (a.N <= 64) launch_ssd<64, 64, 64>(q, grid, segs, layer, a, stream);
        else launch_ssd<64, 64, 128>(q, grid, segs, layer, a, stream);
    } else {
        throw std::runtime_error("mamba2 chunked SSD: head dim " + std::to_string(a.P) + " / d_state " +
                                 std::to_string(a.N) + " not supported (the caller checks mamba2_ssd_chunk_length)");
    }
}

}  // namespace

int mamba2_ssd_chunk_length(int P, int N) {
    if (P <= 16 && N <= 16) return 16;
    if (P <= 64 && N <= 128) return 64;
    return 0;
}

void launch_mamba2_ssd(const int32_t* seg_list, int n, SegTable segs, int layer, const Mamba2ScanArgs& a,
                       cudaStream_t stream) {
    if (n == 0) return;
    launch_ssd_shape(ScanQueue{seg_list, nullptr, nullptr, nullptr, 0, a.H}, dim3(n, a.H), segs, layer, a, stream);
    check_launch("mamba2_ssd_chunked_kernel");
}

void launch_mamba2_ssd_queued(ScanQueue q, int n, SegTable segs, int layer, const Mamba2ScanArgs& a, cudaStream_t stream) {
    if (n == 0) return;
    launch_ssd_shape(q, dim3(unsigned(n) * unsigned(q.blocks)), segs, layer, a, stream);
    check_launch("mamba2_ssd_chunked_kernel (queued)");
}

}  // namespace mamba::cuda
