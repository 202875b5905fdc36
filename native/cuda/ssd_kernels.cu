// ssd_kernels.cu — the Mamba-2 chunked SSD scan on tensor cores (bf16 weights only), state in and out.
//
// The recurrence it computes is the one of scan_kernels.cu (head h, group g = h / (H/G), state S ∈ ℝ^{P×N}):
//   Δ_t = softplus(dt_t + dt_bias_h),  S_t = exp(Δ_t A_h) S_{t−1} + Δ_t x_t ⊗ B_t,  y_t = S_t C_t + D_h x_t
// unrolled over chunks of L rows (one head h of group g, rows i = 0..L−1 of a chunk, S₀ the state at its start;
// dtᵢ below is Δ):
//   dtᵢ = softplus(dt_rawᵢ + dt_bias),  aᵢ = Σ_{k≤i} dt_k·A            (cumulative log-decay, fp32)
//   Sᵢ  = e^{aᵢ}·S₀ + Σ_{j≤i} e^{aᵢ−aⱼ}·dtⱼ·xⱼ·Bⱼᵀ                       (= the recurrence, unrolled)
//   yᵢ  = Cᵢ·Sᵢ + D·xᵢ
//       = Σ_{j≤i} [ (Cᵢ·Bⱼ)·e^{aᵢ−aⱼ} ]·(dtⱼ·xⱼ)  +  e^{aᵢ}·(Cᵢ·S₀ᵀ)  + D·xᵢ
//         └ M = (C·Bᵀ) ∘ decay mask ┘  └ Xdt ┘
//   S_L = e^{a_{L−1}}·S₀ + Σⱼ (e^{a_{L−1}−aⱼ}·dtⱼ·xⱼ)ᵀ·Bⱼ  =  e^{a_{L−1}}·S₀ + Xwᵀ·B
// so a chunk is four small matrix products (G = C·Bᵀ, M·Xdt, C·S₀ᵀ, Xwᵀ·B) on tensor cores (wmma 16×16×16,
// fp32 accumulate) plus elementwise work. Operands: B, C, Xdt, Xw, M in fp16 (10-bit mantissa; these are
// bounded activations), C and the S₀ copy in bf16 for C·S₀ᵀ (a state can grow past fp16's range; e^{aᵢ} is applied
// to that product's rows in fp32); the running state
// stays in fp32 accumulator fragments from chunk to chunk and is saved in fp32.
//
// One block (16 warps) per (segment, head) walks the segment's chunks in order. The chunk grid starts at the
// segment's first row, so a segment's result does not depend on what else is packed in the call; the scheduler cuts
// long segments only at multiples of the chunk length (SEGMENT_CUT_ALIGNMENT in src/lm/scheduler.ts), where the
// chunked and the uncut computation are the same arithmetic. A chunk's last row tiles that hold only padding rows
// (a short segment, or a segment's last chunk) are skipped: they would add exact zeros. Chunk length 64 at the real
// head sizes (P 64, N 128); 16 at the small test sizes, so short fixture sequences cross chunk boundaries.
#include <cuda_fp16.h>
#include <mma.h>

#include <algorithm>
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

constexpr int kSsdThreads = 512;  // 16 warps
constexpr int kSsdWarps = kSsdThreads / 32;
constexpr int kAccElems = Accum::num_elements;  // elements of an accumulator tile per thread

template <int LC, int PP, int NN>
struct SsdLayout {
    static_assert(LC % 16 == 0 && PP % 16 == 0 && NN % 16 == 0, "wmma tiles are 16×16");
    // Row strides padded by 16 bytes, so the 8 rows a fragment load touches fall in different banks.
    static constexpr int kLdB = NN + 8;   // half/bf16 rows of B, C (both types) and the bf16 state copy
    static constexpr int kLdX = PP + 8;   // half rows of Xdt, Xw
    static constexpr int kLdM = LC + 8;   // half rows of M
    static constexpr size_t kB = 0;                                        // half  [LC][kLdB]
    static constexpr size_t kC = kB + size_t(LC) * kLdB * 2;               // half  [LC][kLdB]
    static constexpr size_t kCb = kC + size_t(LC) * kLdB * 2;              // bf16  [LC][kLdB] C again
    static constexpr size_t kXdt = kCb + size_t(LC) * kLdB * 2;            // half  [LC][kLdX]
    static constexpr size_t kXw = kXdt + size_t(LC) * kLdX * 2;            // half  [LC][kLdX]
    static constexpr size_t kM = kXw + size_t(LC) * kLdX * 2;              // half  [LC][kLdM]
    static constexpr size_t kS = kM + size_t(LC) * kLdM * 2;               // bf16  [PP][kLdB] the state S₀
    static constexpr size_t kIdx = kS + size_t(PP) * kLdB * 2;             // float [256] element (r, c) = 16·r + c
    static constexpr size_t kA = kIdx + 256 * 4;                           // float [LC] cumulative a
    static constexpr size_t kDt = kA + size_t(LC) * 4;                     // float [LC] dt
    static constexpr size_t kEa = kDt + size_t(LC) * 4;                    // float [LC] e^{a}
    static constexpr size_t kEw = kEa + size_t(LC) * 4;                    // float [LC] e^{a_last − a}
    static constexpr size_t kBytes = kEw + size_t(LC) * 4;
};

/**
 * The k-th G tile of warp `warp` (tiles t = warp, warp + kSsdWarps, … of the lower block triangle, row by row:
 * t ↦ (ti, tj), tj ≤ ti): false when the chunk's `lower` tiles have none left for it.
 */
__device__ __forceinline__ bool warp_g_tile(int warp, int k, int lower, int& ti, int& tj) {
    int t = warp + k * kSsdWarps;
    if (t >= lower) return false;
    ti = 0;
    while (t > ti) t -= ++ti;
    tj = t;
    return true;
}

// One block of 16 warps per SM (97 KB of shared memory at the real sizes), registers capped at 128. Every accumulator
// tile stays in registers: G becomes M, Y goes out, and the state becomes its bf16 copy element by element, through
// a table of each element's (row, column) in the accumulator layout, so no tile makes a trip through shared memory.
template <int LC, int PP, int NN>
__global__ void __launch_bounds__(kSsdThreads, 1)
    mamba2_ssd_chunked_kernel(ScanQueue q, SegTable segs, int layer, Mamba2ScanArgs a) {
    using Lay = SsdLayout<LC, PP, NN>;
    constexpr int LDB = Lay::kLdB, LDX = Lay::kLdX, LDM = Lay::kLdM;
    extern __shared__ __align__(128) unsigned char smem[];
    half* Bh = reinterpret_cast<half*>(smem + Lay::kB);
    half* Ch = reinterpret_cast<half*>(smem + Lay::kC);
    __nv_bfloat16* Cb = reinterpret_cast<__nv_bfloat16*>(smem + Lay::kCb);
    half* Xdt = reinterpret_cast<half*>(smem + Lay::kXdt);
    half* Xw = reinterpret_cast<half*>(smem + Lay::kXw);
    half* Mh = reinterpret_cast<half*>(smem + Lay::kM);
    __nv_bfloat16* Sb = reinterpret_cast<__nv_bfloat16*>(smem + Lay::kS);
    float* idx = reinterpret_cast<float*>(smem + Lay::kIdx);
    float* acum = reinterpret_cast<float*>(smem + Lay::kA);
    float* dts = reinterpret_cast<float*>(smem + Lay::kDt);
    float* ea = reinterpret_cast<float*>(smem + Lay::kEa);
    float* ew = reinterpret_cast<float*>(smem + Lay::kEw);

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int P = a.P, N = a.N, E = a.H * a.P;
    // A plain launch puts the heads on x, so the blocks of one segment run together and its B and C stay in L2
    // (segments on x reread them from DRAM once per wave of heads); a queued launch takes its items head-fastest.
    const ScanItem item = q.counter == nullptr ? ScanItem{int(blockIdx.y), int(blockIdx.x), q.order[blockIdx.y]} : scan_take(q);
    const int head = item.block;
    const int group = head / (a.H / a.G);
    const int seg = item.seg;
    const int s0 = segs.start[seg];
    const int s1 = s0 + segs.length[seg];
    const int xbc_stride = E + 2 * a.G * N;
    const float A = a.A[head], bias = a.dt_bias[head], d_skip = a.Dskip[head];
    const size_t state_off = static_cast<size_t>(layer) * E * N + static_cast<size_t>(head) * P * N;
    const bool vec = N % 4 == 0 && P % 4 == 0 && xbc_stride % 4 == 0 && (reinterpret_cast<uintptr_t>(a.xbc) & 15u) == 0;

    // rc[e] = 16·r + c: the row r and column c of element e of this thread's part of any accumulator tile.
    for (int i = threadIdx.x; i < 256; i += kSsdThreads) idx[i] = static_cast<float>(i);
    __syncthreads();
    int rc[kAccElems];
    {
        Accum t;
        wmma::load_matrix_sync(t, idx, 16, wmma::mem_row_major);
#pragma unroll
        for (int e = 0; e < kAccElems; ++e) rc[e] = static_cast<int>(t.x[e]);
    }

    // Running state S ∈ ℝ^{P×N} in fp32 accumulator tiles: warp w owns tiles w, w+16, … (tile st: rows 16·(st / (NN/16)),
    // columns 16·(st % (NN/16))); read from the segment's initial state (through L2), and its bf16 copy S₀ into Sb.
    constexpr int kSTiles = (PP / 16) * (NN / 16);
    constexpr int kSPerWarp = (kSTiles + kSsdWarps - 1) / kSsdWarps;
    Accum S[kSPerWarp];
    {
        const float* init = segs.init_ssm[seg];
#pragma unroll
        for (int k = 0; k < kSPerWarp; ++k) {
            const int st = warp + k * kSsdWarps;
            if (st >= kSTiles) continue;
#pragma unroll
            for (int e = 0; e < kAccElems; ++e) {
                const int p = (st / (NN / 16)) * 16 + (rc[e] >> 4), n = (st % (NN / 16)) * 16 + (rc[e] & 15);
                const float v = (init != nullptr && p < P && n < N) ? __ldcg(init + state_off + size_t(p) * N + n) : 0.0f;
                S[k].x[e] = v;
                Sb[p * LDB + n] = __float2bfloat16_rn(v);
            }
        }
    }

    constexpr int kBC4 = (LC * NN / 4 + kSsdThreads - 1) / kSsdThreads;
    constexpr int kBCPass = kBC4 % 2 == 0 ? kBC4 / 2 : kBC4;  // float4s of B (and of C) per thread per pass
    constexpr int kX4 = (LC * PP / 4 + kSsdThreads - 1) / kSsdThreads;
    constexpr int kLower = (LC / 16) * (LC / 16 + 1) / 2;  // tiles of G on or below the diagonal
    constexpr int kGPerWarp = (kLower + kSsdWarps - 1) / kSsdWarps;
    for (int c0 = s0; c0 < s1; c0 += LC) {
        // A chunk's rows past the segment's end are zero (x, B, C, dt); only the row tiles that hold real rows are
        // computed: the others would add exact zeros to the state and give rows nobody reads.
        const int rows = min(LC, s1 - c0);
        const int row_tiles = (rows + 15) / 16;
        const int lower = row_tiles * (row_tiles + 1) / 2;
        const bool last = c0 + LC >= s1;
        // 1. dt per row (zero on padding rows), then B and C of the head's group as float4 (vec: every width, stride
        //    and offset a multiple of 4 floats; otherwise one float at a time, same values) in two passes of loads
        //    then stores; x of the head is only prefetched into L2 here and loaded in 3.
        float dt_row = 0.0f;
        if (threadIdx.x < LC && int(threadIdx.x) < rows) {
            dt_row = a.dt[static_cast<size_t>(c0 + threadIdx.x) * a.dt_stride + head];
        }
        // B and C in two passes of loads then stores: fp16 B and C, and the bf16 copy of C (half the registers in flight).
#pragma unroll
        for (int h = 0; h < kBC4 / kBCPass; ++h) {
            float4 bq[kBCPass], cq[kBCPass];
#pragma unroll
            for (int u = 0; u < kBCPass; ++u) {
                const int i4 = threadIdx.x + (h * kBCPass + u) * kSsdThreads, r = i4 / (NN / 4), n = (i4 % (NN / 4)) * 4;
                bq[u] = cq[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (i4 < LC * NN / 4 && r < rows && n < N) {
                    const float* row = a.xbc + static_cast<size_t>(c0 + r) * xbc_stride + E;
                    if (vec) {
                        bq[u] = __ldg(reinterpret_cast<const float4*>(row + group * N + n));
                        cq[u] = __ldg(reinterpret_cast<const float4*>(row + a.G * N + group * N + n));
                    } else {  // one float at a time, statically indexed (an array whose address is taken lives in memory)
                        float bt[4] = {0.0f, 0.0f, 0.0f, 0.0f}, ct[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            if (n + e < N) {
                                bt[e] = row[group * N + n + e];
                                ct[e] = row[a.G * N + group * N + n + e];
                            }
                        }
                        bq[u] = make_float4(bt[0], bt[1], bt[2], bt[3]);
                        cq[u] = make_float4(ct[0], ct[1], ct[2], ct[3]);
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < kBCPass; ++u) {
                const int i4 = threadIdx.x + (h * kBCPass + u) * kSsdThreads;
                if (i4 >= LC * NN / 4) continue;
                const int at = (i4 / (NN / 4)) * LDB + (i4 % (NN / 4)) * 4;
                reinterpret_cast<__half2*>(Bh + at)[0] = __floats2half2_rn(bq[u].x, bq[u].y);
                reinterpret_cast<__half2*>(Bh + at)[1] = __floats2half2_rn(bq[u].z, bq[u].w);
                reinterpret_cast<__half2*>(Ch + at)[0] = __floats2half2_rn(cq[u].x, cq[u].y);
                reinterpret_cast<__half2*>(Ch + at)[1] = __floats2half2_rn(cq[u].z, cq[u].w);
                reinterpret_cast<__nv_bfloat162*>(Cb + at)[0] = __floats2bfloat162_rn(cq[u].x, cq[u].y);
                reinterpret_cast<__nv_bfloat162*>(Cb + at)[1] = __floats2bfloat162_rn(cq[u].z, cq[u].w);
            }
        }
        // x of the head is read in 3; here its lines are only asked into L2 (no registers held across 2).
        for (int i = threadIdx.x; i < rows * ((PP * 4 + 127) / 128); i += kSsdThreads) {
            const int r = i / ((PP * 4 + 127) / 128), line = i % ((PP * 4 + 127) / 128);
            const float* xr = a.xbc + static_cast<size_t>(c0 + r) * xbc_stride + head * P + line * 32;
            if (line * 32 < P) asm volatile("prefetch.global.L2 [%0];" ::"l"(xr));
        }
        if (threadIdx.x < LC) dts[threadIdx.x] = int(threadIdx.x) < rows ? softplus(dt_row + bias) : 0.0f;
        __syncthreads();

        // 2. Warp 0: cumulative a = Σ dt·A in a fixed order (each lane sums its run of rows, then an inclusive lane
        //    scan). Meanwhile every warp takes its tiles of G = C·Bᵀ on the lower block triangle, into registers.
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
        Accum g[kGPerWarp];
#pragma unroll
        for (int k = 0; k < kGPerWarp; ++k) {
            int ti, tj;
            if (!warp_g_tile(warp, k, lower, ti, tj)) continue;
            wmma::fill_fragment(g[k], 0.0f);
            // G[ti][tj] = Σ_n C[ti rows][n]·B[tj rows][n]
            mma_tiles<half, wmma::row_major, wmma::col_major>(g[k], Ch + ti * 16 * LDB, LDB, 16, Bh + tj * 16 * LDB, LDB, 16,
                                                              NN / 16);
        }
        __syncthreads();
        const float a_last = acum[LC - 1];

        // 3. M = G ∘ [j ≤ i]·e^{aᵢ−aⱼ} (fp16, from the G tiles in registers); Xdt = dt·x, Xw = e^{a_last − a}·dt·x
        //    (fp16).
        float4 xq[kX4];  // x of the head, loaded first so the loads overlap M
#pragma unroll
        for (int u = 0; u < kX4; ++u) {
            const int i4 = threadIdx.x + u * kSsdThreads, r = i4 / (PP / 4), p = (i4 % (PP / 4)) * 4;
            xq[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (i4 < LC * PP / 4 && r < rows && p < P) {
                const float* xr = a.xbc + static_cast<size_t>(c0 + r) * xbc_stride + head * P;
                if (vec) {
                    xq[u] = __ldg(reinterpret_cast<const float4*>(xr + p));
                } else {
                    float xt[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        if (p + e < P) xt[e] = xr[p + e];
                    }
                    xq[u] = make_float4(xt[0], xt[1], xt[2], xt[3]);
                }
            }
        }
#pragma unroll
        for (int k = 0; k < kGPerWarp; ++k) {
            int ti, tj;
            if (!warp_g_tile(warp, k, lower, ti, tj)) continue;
#pragma unroll
            for (int e = 0; e < kAccElems; ++e) {
                const int r = ti * 16 + (rc[e] >> 4), j = tj * 16 + (rc[e] & 15);
                Mh[r * LDM + j] = __float2half_rn(j <= r ? g[k].x[e] * expf(acum[r] - acum[j]) : 0.0f);
            }
        }
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
        __syncthreads();

        // 4. Y = M·Xdt + e^{a}·(C·S₀ᵀ) (row tiles ti, head-dim columns tp), out with + D·x straight from the registers.
        //    Then S ← e^{a_last}·S + Xwᵀ·B in the state tiles.
        constexpr int kYTiles = (LC / 16) * (PP / 16);
#pragma unroll
        for (int k = 0; k < (kYTiles + kSsdWarps - 1) / kSsdWarps; ++k) {
            const int qy = warp + k * kSsdWarps;
            const int ti = qy / (PP / 16), tp = qy % (PP / 16);
            if (qy >= kYTiles || ti >= row_tiles) continue;
            Accum ym, ys;
            wmma::fill_fragment(ym, 0.0f);
            wmma::fill_fragment(ys, 0.0f);
            // ym = Σ_{j ≤ i} M[i][j]·Xdt[j] (tiles kt ≤ ti); ys = Σ_n C[i][n]·S₀[p][n]
            mma_tiles<half, wmma::row_major, wmma::row_major>(ym, Mh + ti * 16 * LDM, LDM, 16, Xdt + tp * 16, LDX, 16 * LDX,
                                                              ti + 1);
            mma_tiles<__nv_bfloat16, wmma::row_major, wmma::col_major>(ys, Cb + ti * 16 * LDB, LDB, 16, Sb + tp * 16 * LDB,
                                                                       LDB, 16, NN / 16);
#pragma unroll
            for (int e = 0; e < kAccElems; ++e) {
                const int r = ti * 16 + (rc[e] >> 4), p = tp * 16 + (rc[e] & 15);
                if (r >= rows || p >= P) continue;
                const float x = __ldg(a.xbc + static_cast<size_t>(c0 + r) * xbc_stride + head * P + p);
                const float yv = fmaf(ea[r], ys.x[e], ym.x[e]);  // e^{aᵢ}·(C·S₀ᵀ) + M·Xdt
                a.y[static_cast<size_t>(c0 + r) * E + head * P + p] = fmaf(d_skip, x, yv);
            }
        }
        {
            const float decay = expf(a_last);
#pragma unroll
            for (int s = 0; s < kSPerWarp; ++s) {
                const int st = warp + s * kSsdWarps;
                if (st >= kSTiles) continue;
                const int tp = st / (NN / 16), tn = st % (NN / 16);
#pragma unroll
                for (int e = 0; e < kAccElems; ++e) S[s].x[e] *= decay;  // e^{a_last}·S
                // S[p][n] += Σ_j Xw[j][p]·B[j][n] over the row tiles that hold real rows
                mma_tiles<half, wmma::col_major, wmma::row_major>(S[s], Xw + tp * 16, LDX, 16 * LDX, Bh + tn * 16, LDB,
                                                                  16 * LDB, row_tiles);
            }
        }
        __syncthreads();  // every read of this chunk's shared tiles is done

        // 5. The next chunk's S₀: the bf16 copy of the state, element by element from the registers.
        if (!last) {
#pragma unroll
            for (int s = 0; s < kSPerWarp; ++s) {
                const int st = warp + s * kSsdWarps;
                if (st >= kSTiles) continue;
#pragma unroll
                for (int e = 0; e < kAccElems; ++e) {
                    const int p = (st / (NN / 16)) * 16 + (rc[e] >> 4), n = (st % (NN / 16)) * 16 + (rc[e] & 15);
                    Sb[p * LDB + n] = __float2bfloat16_rn(S[s].x[e]);
                }
            }
        }
        // (the next chunk's first barrier orders these writes before any read)
    }

    float* save = segs.save_ssm[seg];
    if (save != nullptr) {
#pragma unroll
        for (int s = 0; s < kSPerWarp; ++s) {
            const int st = warp + s * kSsdWarps;
            if (st >= kSTiles) continue;
#pragma unroll
            for (int e = 0; e < kAccElems; ++e) {
                const int p = (st / (NN / 16)) * 16 + (rc[e] >> 4), n = (st % (NN / 16)) * 16 + (rc[e] & 15);
                if (p < P && n < N) save[state_off + size_t(p) * N + n] = S[s].x[e];
            }
        }
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
    constexpr int kMaxGridY = 65535;  // segments go on y (heads on x): at most this many per launch
    for (int i0 = 0; i0 < n; i0 += kMaxGridY) {
        launch_ssd_shape(ScanQueue{seg_list + i0, nullptr, nullptr, nullptr, 0, a.H}, dim3(a.H, std::min(n - i0, kMaxGridY)),
                         segs, layer, a, stream);
    }
    check_launch("mamba2_ssd_chunked_kernel");
}

void launch_mamba2_ssd_queued(ScanQueue q, int n, SegTable segs, int layer, const Mamba2ScanArgs& a, cudaStream_t stream) {
    if (n == 0) return;
    launch_ssd_shape(q, dim3(unsigned(n) * unsigned(q.blocks)), segs, layer, a, stream);
    check_launch("mamba2_ssd_chunked_kernel (queued)");
}

}  // namespace mamba::cuda
