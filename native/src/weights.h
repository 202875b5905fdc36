// weights.h — memory-mapped checkpoint tensors, validated and converted to compute form.
//
// Shared by the CPU and CUDA backends. Every file is mapped once (read-only); every TensorSource is
// bounds-checked against its file, its byte length against shape × element size, and its shape against
// what the spec says the canonical name must have. NaN/Inf anywhere in a weight is an error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"

namespace mamba {

// A read-only mapping of one whole file.
class MappedFile {
public:
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }

private:
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

// A weight in compute form: f32 or bf16 elements, row-major [rows × cols] (vectors have rows = 1).
// `data` points into a mapping (zero copy) or into `owned`.
struct Tensor {
    DType dtype = DType::F32;  // F32 or BF16 only
    int64_t rows = 0, cols = 0;
    const void* data = nullptr;
    std::vector<uint8_t> owned;

    const float* f32() const { return static_cast<const float*>(data); }
    const uint16_t* bf16() const { return static_cast<const uint16_t*>(data); }
    size_t bytes() const { return size_t(rows) * size_t(cols) * (dtype == DType::F32 ? 4 : 2); }
};

// Expected shape of every canonical tensor for a spec; `optional` ones may be absent.
struct ExpectedTensor {
    std::vector<int64_t> shape;
    bool optional = false;
};
std::map<std::string, ExpectedTensor> expected_tensors(const ModelSpec& spec);

// Checks a spec's numbers (positive sizes, family 1 or 2, Mamba-2 head/group divisibility, d_conv ≤ 8,
// threads ≥ 1, and the hybrid fields: validate_hybrid_spec); throws std::runtime_error naming the field.
void validate_spec(const ModelSpec& spec);

// The hybrid fields: layerKinds (n_layer entries of 0 or 1), dIntermediate ≥ 0 and, with an attention layer,
// positive head counts with attnHeads a multiple of attnHeadsKv, attnConv in [0, 8], attnRotaryDim even and at
// most attnHeadDim, attnMlpDim even, a positive finite softmax scale and rotary base.
void validate_hybrid_spec(const ModelSpec& spec);

// Whether some layer of the spec is attention.
bool has_attention(const ModelSpec& spec);

// Sizes of an attention layer (mamba_ssm's MHA, modules/mha.py 89-108), from the spec's attn* fields.
struct AttentionDims {
    int64_t H = 0, Hkv = 0, hd = 0;  // query heads, key/value heads, head dimension
    int64_t K = 0;                   // conv taps (0 = no conv)
    int64_t rd = 0;                  // rotary dimensions (0 = none)
    int64_t mlp = 0;                 // in-attention MLP rows of in_proj (up | gate)
    int64_t qkv = 0;                 // hd · (H + 2·Hkv): q | k heads | v heads
    int64_t in_rows = 0;             // qkv + mlp
    int64_t ctx = 0;                 // out_proj input: hd · H + mlp / 2
    int64_t kv_row = 0;              // floats of one token's K and V in one layer: 2 · Hkv · hd
};
AttentionDims attention_dims(const ModelSpec& spec);

// All weights of a model, keyed by canonical name.
class WeightStore {
public:
    // Validates spec.tensors against expected_tensors(spec) and loads them. GEMM weights (is_matrix_weight)
    // are held as BF16 when spec.weight_type is BF16; everything else is held as F32.
    explicit WeightStore(const ModelSpec& spec);

    // The tensor of that canonical name; throws when absent.
    const Tensor& get(const std::string& name) const;
    bool has(const std::string& name) const { return tensors_.count(name) != 0; }
    size_t total_bytes() const;

    // Lets go of bytes [begin, end) of a tensor that a backend now holds in its own layout (the CPU backend's
    // packed GEMM weights), so they stop counting in the resident set: pages of a zero-copy mapping wholly
    // inside the range are dropped (madvise DONTNEED; re-read from the file if touched again), and an owned
    // copy is freed once the range covers all of it. The tensor's data must not be read afterwards.
    void release(const std::string& name, size_t begin, size_t end);

private:
    std::map<std::string, std::shared_ptr<MappedFile>> files_;
    std::map<std::string, Tensor> tensors_;
};

// Whether a canonical name is a GEMM weight (in_proj, x_proj, dt_proj, out_proj, mlp.fc1, mlp.fc2, lm_head,
// embedding).
bool is_matrix_weight(const std::string& name);

// Element conversions (exact for bf16/f16 → f32; round to nearest even for f32 → bf16).
float bf16_to_f32(uint16_t v);
uint16_t f32_to_bf16(float v);
float f16_to_f32(uint16_t v);

}  // namespace mamba
