// ops.h — the Mamba kernels of the CPU backend other than the GEMM.
//
// Layouts: activations are row-major [T × C] with a row stride (ld). Per-layer recurrent state:
//   conv state  [K-1][C]   row j = the pre-conv input K-1-j tokens before the next one (oldest first)
//   Mamba-1 SSM [N][E]     (state n of channel e at n·E + e)
//   Mamba-2 SSM [H][P][N]
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/thread_pool.h"

namespace mamba {

// One packed segment's rows [t0, t1) and where its state for the current layer comes from / goes to.
// A null init means the zero state; a null save means the final state is dropped.
struct SegmentState {
    int64_t t0, t1;
    const float* conv_init;
    float* conv_save;
    const float* ssm_init;
    float* ssm_save;
};

// out[t][i] = x[t][i] · w[i] / sqrt(mean_i(x[t][i]²) + eps)   for each of the T rows (sum of squares in double)
void rms_norm(const float* x, int64_t ldx, int64_t T, int64_t n, const float* w, float eps, float* out,
              int64_t ldo, ThreadPool& pool);

// Causal depthwise conv + bias + SiLU over the packed segments, channel by channel:
//   out[t][c] = SiLU(Σ_{j<K} wT[j][c] · in[t-K+1+j][c] + bias[c])
// where inputs before a segment's first token come from its conv_init state. in: [T][C] stride ldi,
// wT: [K][C], bias: [C] or null, out: [T][C]. Saves the last K-1 inputs of a segment to conv_save.
// isa = Avx512 (only on a CPU with AVX-512F) runs 16 channels per vector; every output is bit-identical to Avx2's.
void conv_silu(const float* in, int64_t ldi, int64_t C, int K, const float* wT, const float* bias,
               const std::vector<SegmentState>& segs, float* out, ThreadPool& pool, GemmIsa isa = GemmIsa::Avx2);

// conv_silu for channels [c0, c1) only, on the calling thread (c0 a multiple of 8; for fused regions).
void conv_silu_channels(const float* in, int64_t ldi, int64_t C, int K, const float* wT, const float* bias,
                        const std::vector<SegmentState>& segs, float* out, int64_t c0, int64_t c1,
                        GemmIsa isa = GemmIsa::Avx2);

// Mamba-1 selective scan + D skip + SiLU(z) gate, per channel e and state n, token by token:
//   dt = softplus(dt_raw) (vec::softplus8, fused here);
//   h[n][e] ← exp(dt·A[n][e]) · h[n][e] + (dt·x)·B[n];   y[e] = (Σ_n h[n][e]·C[n] + D[e]·x) · SiLU(z[e])
// x, dt_raw: [T][E] (dt_raw = dt_proj output, bias included); B, C: [T][N] at stride ldbc; z: [T][E] at
// stride ldz; AT: [N][E] (= −exp(A_log)ᵀ); y: [T][E]. Channels [e0, e1) only (e0 a multiple of 8), on the
// calling thread: the backend runs it per thread right after that thread's dt_proj columns.
// isa = Avx512 (only on a CPU with AVX-512F) runs 16 channels per vector; every output is bit-identical to Avx2's.
// dtp: when given, dt_raw is computed here, rows [0, T) of channels [e0, e1) = dtp->X · dtp->W[e0, e1)ᵀ + bias
// (gemm_cols), a few rows at a time just ahead of the scan that reads them; else dt_raw holds it already.
struct DtProj {
    const GemmWeight* W;  // dt_proj.weight [E × R]
    const float* X;       // dt_low: [T][R] at stride ldx
    int64_t ldx;
    const float* bias;    // [E] or null
};
void mamba1_scan_channels(const float* x, float* dt_raw, const float* B, const float* Cm, int64_t ldbc,
                          const float* z, int64_t ldz, const float* AT, const float* D, int64_t E, int64_t N,
                          const std::vector<SegmentState>& segs, float* y, int64_t e0, int64_t e1,
                          GemmIsa isa = GemmIsa::Avx2, const DtProj* dtp = nullptr);

// Mamba-2 scan (SSD recurrence) + D skip, per head h (group g = h / (H/G)), token by token:
//   dt = softplus(dt_raw[h] + dt_bias[h]);  S[h][p][n] ← exp(dt·A[h]) · S[h][p][n] + (dt·x[p])·B_g[n]
//   y[h·P + p] = D[h]·x[p] + Σ_n S[h][p][n]·C_g[n]       (the sum one fma chain per channel, n ascending)
// xbc: [T][E + 2GN] conv output (x | B | C); dt_raw: [T][H] at stride ldd; A = −exp(A_log): [H]; y: [T][E].
// The segments' states (ssm_init, ssm_save) are [H][N][P]: a head's channels contiguous for each state index.
// Channels run one per vector lane (8 with AVX2; 16 with isa = Avx512, only on a CPU with AVX-512F), each lane its
// channel's own arithmetic, so every output is bit-identical across the two.
void mamba2_scan(const float* xbc, int64_t ldx, const float* dt_raw, int64_t ldd, const float* dt_bias,
                 const float* A, const float* D, int64_t H, int64_t P, int64_t G, int64_t N,
                 const std::vector<SegmentState>& segs, float* y, ThreadPool& pool, GemmIsa isa = GemmIsa::Avx2);

// Mamba-2 gated RMSNorm (norm_before_gate = false), per row and per group of E/G channels:
//   v = y ⊙ SiLU(z);  y ← v · w / sqrt(mean_group(v²) + eps)        y: [T][E], z: [T][E] at stride ldz
void gated_rms_norm(float* y, const float* z, int64_t ldz, int64_t T, int64_t E, int64_t G, const float* w,
                    float eps, ThreadPool& pool);

// log-sum-exp of a row of n logits: m + log(Σ exp(l − m)), m = max; terms in f32, the sum in double
// over 4 fixed lanes, reduced in a fixed order.
double log_sum_exp(const float* logits, int64_t n);

// log_sum_exp with the row maximum m already known (bit-identical to log_sum_exp when m is its max).
// isa = Avx512 (only on a CPU with AVX-512F) runs 16 logits per vector, with the same bits.
double log_sum_exp_given_max(const float* logits, int64_t n, float m, GemmIsa isa = GemmIsa::Avx2);

// Index of the largest logit (the first one on ties).
int64_t arg_max(const float* logits, int64_t n);

// The row's maximum and arg_max in one vectorised pass, bit-identical to the scalar scans above. Returns false
// (outputs untouched) when a value is NaN or n < 8: the caller then uses the scalar functions, whose NaN
// handling this pass does not reproduce.
bool max_arg_max(const float* logits, int64_t n, float* max_out, int64_t* arg_out);

}  // namespace mamba
