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

// Layer kinds of a hybrid model (spec.layerKinds).
enum LayerKind : int { kMambaLayer = 0, kAttentionLayer = 1 };

struct ModelSpec {
    std::string device;  // "cpu" | "cuda"
    int family;          // 1 = Mamba-1, 2 = Mamba-2 (the mixer of every kMambaLayer)
    int d_model, n_layer, vocab, d_state, d_conv, d_inner;
    int dt_rank;                         // Mamba-1
    int n_heads, head_dim, n_groups;     // Mamba-2
    float norm_eps;
    bool conv_bias, proj_bias, tie_embeddings;
    // Hybrid models (mamba_ssm's MHA and GatedMLP; every default resolved in TypeScript). A pure Mamba model has
    // layer_kinds all kMambaLayer and d_intermediate 0.
    std::vector<int> layer_kinds;        // n_layer entries
    int attn_heads = 0, attn_heads_kv = 0, attn_head_dim = 0;
    int attn_conv = 0;                   // taps of the causal depthwise conv on q, k, v (with bias, no activation); 0 = none
    int attn_rotary_dim = 0;             // rotary dims at the start of each q and k head (GPT-NeoX halves); 0 = none
    double attn_rotary_base = 10000.0;
    bool attn_qkv_bias = false, attn_out_bias = false;
    int attn_mlp_dim = 0;                // in-attention MLP rows of in_proj (up | gate); 0 = none
    double attn_softmax_scale = 1.0;
    int d_intermediate = 0;              // GatedMLP hidden size after every mixer; 0 = no MLP, no norm2
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

// One slot's state in the exchange layout (exportState / importState): conv [layer][C][K-1] over every layer with
// a conv (oldest input first), ssm over the Mamba layers, kv [token][attention layer][K then V][Hkv][hd].
struct StateData {
    std::vector<float> conv, ssm, kv;
};

struct ScoreOutput {
    std::vector<double> logprobs;   // per score row
    std::vector<uint8_t> greedy;    // per score row
    std::vector<float> logits;      // logit_rows.size() * vocab
};

// A compute backend. Methods throw std::runtime_error with a one-line message on bad input;
// the N-API layer turns that into a rejected Promise. All methods are called from one worker at a time.
//
// States with attention layers: a slot's state "after token t" also holds the K, V rows of tokens 0..t, as a chain
// of reference-counted blocks shared between slots. Saving a segment's final state makes a block of that
// segment's own rows whose parent is the chain the segment started from (ancestors are never copied); copy_state
// shares the chain; free_state drops the slot's reference; step() appends a row (growing the tail block in place
// when only this slot holds it). A row's rotary position is its chain length at its segment's start plus its index
// in the segment. Attention scores of a query row run over key positions in order with a fixed reduction order
// that depends only on the row's position, so results do not depend on packing, block boundaries or threads.
class Backend {
public:
    virtual ~Backend() = default;
    // The batch was checked by validate_score_batch (score_batch.h) before this call.
    virtual void score(const ScoreBatch& batch, ScoreOutput& out) = 0;
    // n sequences, one token each; logits_out has n * vocab floats.
    virtual void step(const int32_t* slots, const int32_t* tokens, int n, float* logits_out) = 0;
    virtual void copy_state(int src, int dst) = 0;
    virtual void free_state(int slot) = 0;
    // Whether a slot holds a state (for validate_score_batch).
    virtual bool holds_state(int slot) const = 0;
    virtual void export_state(int slot, StateData& out) = 0;
    virtual void import_state(int slot, const StateData& in) = 0;
    virtual size_t conv_state_floats() const = 0;
    virtual size_t ssm_state_floats() const = 0;
    // Floats of K and V per token of a state: 2 × Hkv × hd × attention layers (0 for a pure Mamba model).
    virtual size_t kv_floats_per_token() const = 0;
    virtual size_t weight_bytes() const = 0;
    /** Bytes of memory on the device the backend computes on (the GPU's total); 0 on the CPU. */
    virtual size_t device_memory_bytes() const { return 0; }
    virtual std::string isa() const = 0;
};

// Factories. make_cuda_backend exists only in builds with CUDA (MAMBA_EVAL_CUDA defined).
std::unique_ptr<Backend> make_cpu_backend(const ModelSpec& spec);
#ifdef MAMBA_EVAL_CUDA
std::unique_ptr<Backend> make_cuda_backend(const ModelSpec& spec);
#endif

}  // namespace mamba
