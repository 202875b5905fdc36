// backend.h — the contract between the N-API layer (addon.cc) and a compute backend (CPU or CUDA).
//
// The addon is mechanism only: it runs what TypeScript asks, on packed token segments with explicit
// recurrent states. See src/model/backends/addonTypes.ts for the same contract from the TS side.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mamba {

enum class DType { F32, F16, BF16 };
enum class WeightType { F32, BF16 };

// One tensor's bytes: a contiguous row-major run at `offset` in `file` (memory-mapped by the loader).
struct TensorSource {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::string file;
    uint64_t offset;
    uint64_t byte_length;
};

struct ModelSpec {
    std::string device;  // "cpu" | "cuda"
    int family;          // 1 = Mamba-1, 2 = Mamba-2
    int d_model, n_layer, vocab, d_state, d_conv, d_inner;
    int dt_rank;                         // Mamba-1
    int n_heads, head_dim, n_groups;     // Mamba-2
    float norm_eps;
    bool conv_bias, proj_bias, tie_embeddings;
    int threads;
    WeightType weight_type;
    std::vector<TensorSource> tensors;
};

// Packed segments; see ScoreBatch in addonTypes.ts.
struct ScoreBatch {
    std::vector<int32_t> tokens;
    std::vector<int32_t> seg_offsets;   // n_seg + 1
    std::vector<int32_t> seg_init;      // n_seg, slot or -1
    std::vector<int32_t> seg_save;      // n_seg, slot or -1
    std::vector<int32_t> score_rows;
    std::vector<int32_t> score_targets;
    std::vector<int32_t> logit_rows;
};

struct ScoreOutput {
    std::vector<double> logprobs;   // per score row
    std::vector<uint8_t> greedy;    // per score row
    std::vector<float> logits;      // logit_rows.size() * vocab
};

// A compute backend. Methods throw std::runtime_error with a one-line message on bad input;
// the N-API layer turns that into a rejected Promise. All methods are called from one worker at a time.
class Backend {
public:
    virtual ~Backend() = default;
    virtual void score(const ScoreBatch& batch, ScoreOutput& out) = 0;
    // n sequences, one token each; logits_out has n * vocab floats.
    virtual void step(const int32_t* slots, const int32_t* tokens, int n, float* logits_out) = 0;
    virtual void copy_state(int src, int dst) = 0;
    virtual void free_state(int slot) = 0;
    virtual void export_state(int slot, std::vector<float>& conv, std::vector<float>& ssm) = 0;
    virtual void import_state(int slot, const float* conv, size_t n_conv, const float* ssm, size_t n_ssm) = 0;
    virtual size_t conv_state_floats() const = 0;
    virtual size_t ssm_state_floats() const = 0;
    virtual size_t weight_bytes() const = 0;
    virtual std::string isa() const = 0;
};

// Factories. make_cuda_backend exists only in builds with CUDA (MAMBA_EVAL_CUDA defined).
std::unique_ptr<Backend> make_cpu_backend(const ModelSpec& spec);
#ifdef MAMBA_EVAL_CUDA
std::unique_ptr<Backend> make_cuda_backend(const ModelSpec& spec);
#endif

}  // namespace mamba
