// gemm.cu — Y[T×N] = X[T×K]·W[N×K]ᵀ (every projection: in_proj, x_proj, dt_proj, out_proj, the LM head) through
// cuBLASLt: y[t][n] = Σ_k x[t][k]·w[n][k], one algorithm per weight shape for every T (gemm.cuh says why).
#include <stdexcept>
#include <string>

#include "gemm.cuh"

namespace mamba::cuda {

namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;
// Row counts the chosen algorithm must accept: a decode step, an odd small batch, a large prefill.
constexpr int kProbeRows[] = {1, 7, 4096};

cudaDataType_t data_type(GemmType t) { return t == GemmType::BF16 ? CUDA_R_16BF : CUDA_R_32F; }

/** A column-major layout of `rows`×`cols` with leading dimension `ld`. */
cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int rows, int cols, int ld) {
    cublasLtMatrixLayout_t layout = nullptr;
    check_cublas(cublasLtMatrixLayoutCreate(&layout, type, rows, cols, ld), "MatrixLayoutCreate");
    return layout;
}

struct LayoutGuard {
    cublasLtMatrixLayout_t layout;
    ~LayoutGuard() { cublasLtMatrixLayoutDestroy(layout); }
};

/**
 * Makes the algorithm sum each output over K in one pass: split-K off, no reduction scheme. Returns false
 * when cuBLASLt refuses either setting.
 */
bool force_single_pass(cublasLtMatmulAlgo_t& algo) {
    const uint32_t split_k = 1;
    const uint32_t reduction = CUBLASLT_REDUCTION_SCHEME_NONE;
    return cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split_k, sizeof split_k) ==
               CUBLAS_STATUS_SUCCESS &&
           cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &reduction,
                                                sizeof reduction) == CUBLAS_STATUS_SUCCESS;
}

}  // namespace

Gemm::Gemm(GemmType type, cudaStream_t stream) : type_(type), stream_(stream), workspace_(kWorkspaceBytes) {
    check_cublas(cublasLtCreate(&handle_), "cublasLtCreate");
}

Gemm::~Gemm() {
    for (auto& [key, plan] : plans_) {
        cublasLtMatrixLayoutDestroy(plan.a);
        cublasLtMatmulDescDestroy(plan.desc);
    }
    if (handle_ != nullptr) cublasLtDestroy(handle_);
}

Gemm::Plan& Gemm::plan_for(int N, int K, int ldx, int ldy) {
    const Key key{N, K, ldx, ldy};
    auto found = plans_.find(key);
    if (found != plans_.end()) return found->second;

    const cudaDataType_t in_type = data_type(type_);
    Plan plan;
    // fp32 inputs with COMPUTE_32F run true fp32 (no TF32 down-conversion); bf16 inputs accumulate in fp32.
    check_cublas(cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
    const cublasOperation_t op_t = CUBLAS_OP_T;
    const cublasOperation_t op_n = CUBLAS_OP_N;
    check_cublas(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof op_t), "TRANSA");
    check_cublas(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof op_n), "TRANSB");
    plan.a = make_layout(in_type, K, N, K);

    cublasLtMatmulPreference_t pref = nullptr;
    check_cublas(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
    const size_t ws = kWorkspaceBytes;
    check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                 "PREF_MAX_WORKSPACE_BYTES");

    // Ask the heuristic for the large-batch case, then keep the first candidate that, made single-pass,
    // still accepts every probe row count.
    const int big = kProbeRows[sizeof kProbeRows / sizeof kProbeRows[0] - 1];
    LayoutGuard b{make_layout(in_type, K, big, ldx)};
    LayoutGuard c{make_layout(CUDA_R_32F, N, big, ldy)};
    constexpr int kCandidates = 32;
    cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
    int found_count = 0;
    const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(handle_, plan.desc, plan.a, b.layout, c.layout, c.layout,
                                                             pref, kCandidates, results, &found_count);
    cublasLtMatmulPreferenceDestroy(pref);
    check_cublas(hs, "MatmulAlgoGetHeuristic");

    bool chosen = false;
    for (int i = 0; i < found_count && !chosen; ++i) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS || !force_single_pass(results[i].algo)) continue;
        bool fits_all = true;
        for (int rows : kProbeRows) {
            LayoutGuard pb{make_layout(in_type, K, rows, ldx)};
            LayoutGuard pc{make_layout(CUDA_R_32F, N, rows, ldy)};
            cublasLtMatmulHeuristicResult_t check{};
            if (cublasLtMatmulAlgoCheck(handle_, plan.desc, plan.a, pb.layout, pc.layout, pc.layout, &results[i].algo,
                                        &check) != CUBLAS_STATUS_SUCCESS ||
                check.workspaceSize > kWorkspaceBytes) {
                fits_all = false;
                break;
            }
        }
        if (fits_all) {
            plan.algo = results[i].algo;
            chosen = true;
        }
    }
    if (!chosen) {
        cublasLtMatrixLayoutDestroy(plan.a);
        cublasLtMatmulDescDestroy(plan.desc);
        throw std::runtime_error("cublasLt: no single-pass (batch-invariant) GEMM algorithm for N=" + std::to_string(N) +
                                 " K=" + std::to_string(K) + " (" + std::to_string(found_count) + " candidates)");
    }
    return plans_.emplace(key, plan).first->second;
}

void Gemm::run(const void* w, int N, int K, const void* x, int ldx, int T, float* y, int ldy) {
    if (T <= 0) return;
    Plan& plan = plan_for(N, K, ldx, ldy);
    const cudaDataType_t in_type = data_type(type_);
    LayoutGuard b{make_layout(in_type, K, T, ldx)};
    LayoutGuard c{make_layout(CUDA_R_32F, N, T, ldy)};
    const float alpha = 1.0f;
    const float beta = 0.0f;
    check_cublas(cublasLtMatmul(handle_, plan.desc, &alpha, w, plan.a, x, b.layout, &beta, y, c.layout, y, c.layout,
                                &plan.algo, workspace_.data(), workspace_.bytes(), stream_),
                 "Matmul");
}

}  // namespace mamba::cuda
