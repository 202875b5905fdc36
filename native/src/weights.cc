// weights.cc — see weights.h.
#include "weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace mamba {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

const char* dtype_name(DType t) { return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : "BF16"; }
size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

// Whether an element (given as raw bits) is NaN or ±Inf: all exponent bits set.
bool nonfinite_f32(uint32_t bits) { return (bits & 0x7f800000u) == 0x7f800000u; }
bool nonfinite_f16(uint16_t bits) { return (bits & 0x7c00u) == 0x7c00u; }
bool nonfinite_bf16(uint16_t bits) { return (bits & 0x7f80u) == 0x7f80u; }

// Index of the first non-finite element of a tensor's raw bytes, or -1.
int64_t first_nonfinite(const uint8_t* p, DType t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (t == DType::F32) {
            uint32_t b;
            std::memcpy(&b, p + 4 * i, 4);
            if (nonfinite_f32(b)) return int64_t(i);
        } else {
            uint16_t b;
            std::memcpy(&b, p + 2 * i, 2);
            if (t == DType::F16 ? nonfinite_f16(b) : nonfinite_bf16(b)) return int64_t(i);
        }
    }
    return -1;
}

// Element i of a raw tensor as f32.
float element_f32(const uint8_t* p, DType t, size_t i) {
    if (t == DType::F32) {
        float f;
        std::memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t b;
    std::memcpy(&b, p + 2 * i, 2);
    return t == DType::F16 ? f16_to_f32(b) : bf16_to_f32(b);
}

// Drops the resident pages wholly inside [p, p + n) of a read-only file mapping from this process (they are
// re-read from the file if touched again): a tensor converted into `owned` no longer needs its source pages,
// which would otherwise count in the resident set twice over (e.g. F32 file → BF16 compute form).
void release_pages(const uint8_t* p, uint64_t n) {
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
    const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
    if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace

float bf16_to_f32(uint16_t v) {
    uint32_t bits = uint32_t(v) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_bf16(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    // round to nearest, ties to even (inputs are finite: checked before conversion)
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return uint16_t((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                mant <<= 1;
                e++;
            } while ((mant & 0x400u) == 0);
            bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

MappedFile::MappedFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open weight file " + path + ": " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        throw std::runtime_error("cannot stat weight file " + path + ": " + std::strerror(err));
    }
    size_ = uint64_t(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            ::close(fd);
            throw std::runtime_error("cannot memory-map weight file " + path + ": " + std::strerror(err));
        }
        data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

bool is_matrix_weight(const std::string& name) {
    auto ends_with = [&](const char* suffix) {
        size_t n = std::strlen(suffix);
        return name.size() >= n && name.compare(name.size() - n, n, suffix) == 0;
    };
    return name == "backbone.embedding.weight" || name == "lm_head.weight" || ends_with("in_proj.weight") ||
           ends_with("x_proj.weight") || ends_with("dt_proj.weight") || ends_with("out_proj.weight") ||
           ends_with("mlp.fc1.weight") || ends_with("mlp.fc2.weight");
}

void validate_spec(const ModelSpec& s) {
    auto positive = [](int v, const char* field) {
        if (v <= 0) throw std::runtime_error(std::string("spec.") + field + " must be a positive integer, got " + std::to_string(v));
    };
    if (s.family != 1 && s.family != 2) throw std::runtime_error("spec.family must be 1 or 2, got " + std::to_string(s.family));
    positive(s.d_model, "dModel");
    positive(s.n_layer, "nLayer");
    positive(s.vocab, "vocab");
    positive(s.d_state, "dState");
    positive(s.d_conv, "dConv");
    positive(s.d_inner, "dInner");
    positive(s.threads, "threads");
    if (s.d_conv > 8) throw std::runtime_error("spec.dConv must be at most 8, got " + std::to_string(s.d_conv));
    if (s.threads > 256) throw std::runtime_error("spec.threads must be at most 256, got " + std::to_string(s.threads));
    if (!(s.norm_eps > 0.0f) || !std::isfinite(s.norm_eps))
        throw std::runtime_error("spec.normEps must be a positive finite number");
    if (s.family == 1) {
        positive(s.dt_rank, "dtRank");
    } else {
        positive(s.n_heads, "nHeads");
        positive(s.head_dim, "headDim");
        positive(s.n_groups, "nGroups");
        if (int64_t(s.n_heads) * s.head_dim != s.d_inner)
            throw std::runtime_error("spec.nHeads × spec.headDim must equal spec.dInner (" + std::to_string(s.n_heads) +
                                     " × " + std::to_string(s.head_dim) + " != " + std::to_string(s.d_inner) + ")");
        if (s.n_heads % s.n_groups != 0)
            throw std::runtime_error("spec.nHeads (" + std::to_string(s.n_heads) + ") must be a multiple of spec.nGroups (" +
                                     std::to_string(s.n_groups) + ")");
    }
    validate_hybrid_spec(s);
}

AttentionDims attention_dims(const ModelSpec& s) {
    AttentionDims a;
    a.H = s.attn_heads;
    a.Hkv = s.attn_heads_kv;
    a.hd = s.attn_head_dim;
    a.K = s.attn_conv;
    a.rd = s.attn_rotary_dim;
    a.mlp = s.attn_mlp_dim;
    a.qkv = a.hd * (a.H + 2 * a.Hkv);
    a.in_rows = a.qkv + a.mlp;
    a.ctx = a.hd * a.H + a.mlp / 2;
    a.kv_row = 2 * a.Hkv * a.hd;
    return a;
}

bool has_attention(const ModelSpec& s) {
    return std::find(s.layer_kinds.begin(), s.layer_kinds.end(), int(kAttentionLayer)) != s.layer_kinds.end();
}

void validate_hybrid_spec(const ModelSpec& s) {
    if (s.layer_kinds.size() != size_t(s.n_layer))
        throw std::runtime_error("spec.layerKinds has " + std::to_string(s.layer_kinds.size()) + " entries, expected nLayer = " +
                                 std::to_string(s.n_layer));
    for (size_t i = 0; i < s.layer_kinds.size(); i++)
        if (s.layer_kinds[i] != kMambaLayer && s.layer_kinds[i] != kAttentionLayer)
            throw std::runtime_error("spec.layerKinds[" + std::to_string(i) + "] must be 0 (Mamba) or 1 (attention)");
    if (s.d_intermediate < 0)
        throw std::runtime_error("spec.dIntermediate must be a non-negative integer, got " + std::to_string(s.d_intermediate));
    if (!has_attention(s)) return;
    auto positive = [](int v, const char* field) {
        if (v <= 0) throw std::runtime_error(std::string("spec.") + field + " must be a positive integer, got " + std::to_string(v));
    };
    positive(s.attn_heads, "attnHeads");
    positive(s.attn_heads_kv, "attnHeadsKv");
    positive(s.attn_head_dim, "attnHeadDim");
    if (s.attn_heads % s.attn_heads_kv != 0)
        throw std::runtime_error("spec.attnHeads (" + std::to_string(s.attn_heads) + ") must be a multiple of spec.attnHeadsKv (" +
                                 std::to_string(s.attn_heads_kv) + ")");
    if (s.attn_conv < 0 || s.attn_conv > 8)
        throw std::runtime_error("spec.attnConv must be in [0, 8], got " + std::to_string(s.attn_conv));
    if (s.attn_rotary_dim < 0 || s.attn_rotary_dim % 2 != 0 || s.attn_rotary_dim > s.attn_head_dim)
        throw std::runtime_error("spec.attnRotaryDim must be even and in [0, attnHeadDim = " + std::to_string(s.attn_head_dim) +
                                 "], got " + std::to_string(s.attn_rotary_dim));
    if (s.attn_rotary_dim > 0 && !(s.attn_rotary_base > 0.0 && std::isfinite(s.attn_rotary_base)))
        throw std::runtime_error("spec.attnRotaryBase must be a positive finite number");
    if (s.attn_mlp_dim < 0 || s.attn_mlp_dim % 2 != 0)
        throw std::runtime_error("spec.attnMlpDim must be an even non-negative integer (up | gate halves), got " +
                                 std::to_string(s.attn_mlp_dim));
    if (!(s.attn_softmax_scale > 0.0 && std::isfinite(s.attn_softmax_scale)))
        throw std::runtime_error("spec.attnSoftmaxScale must be a positive finite number");
    const int64_t qkv = int64_t(s.attn_head_dim) * (s.attn_heads + 2 * int64_t(s.attn_heads_kv));
    if (qkv + s.attn_mlp_dim > (int64_t(1) << 30))
        throw std::runtime_error("spec: attnHeadDim × (attnHeads + 2·attnHeadsKv) + attnMlpDim is too large");
}

std::map<std::string, ExpectedTensor> expected_tensors(const ModelSpec& s) {
    const int64_t D = s.d_model, V = s.vocab, E = s.d_inner, N = s.d_state, K = s.d_conv;
    std::map<std::string, ExpectedTensor> m;
    m["backbone.embedding.weight"] = {{V, D}, false};
    m["backbone.norm_f.weight"] = {{D}, false};
    m["lm_head.weight"] = {{V, D}, true};
    const AttentionDims a = attention_dims(s);
    for (int i = 0; i < s.n_layer; i++) {
        const std::string p = "backbone.layers." + std::to_string(i) + ".";
        m[p + "norm.weight"] = {{D}, false};
        if (s.d_intermediate > 0) {
            const int64_t dI = s.d_intermediate;
            m[p + "norm2.weight"] = {{D}, false};
            m[p + "mlp.fc1.weight"] = {{2 * dI, D}, false};
            m[p + "mlp.fc2.weight"] = {{D, dI}, false};
        }
        if (s.layer_kinds[size_t(i)] == kAttentionLayer) {
            m[p + "mixer.in_proj.weight"] = {{a.in_rows, D}, false};
            m[p + "mixer.out_proj.weight"] = {{D, a.ctx}, false};
            if (s.attn_qkv_bias) m[p + "mixer.in_proj.bias"] = {{a.in_rows}, false};
            if (s.attn_out_bias) m[p + "mixer.out_proj.bias"] = {{D}, false};
            if (a.K > 0) {
                m[p + "mixer.conv1d.weight"] = {{a.qkv, 1, a.K}, false};
                m[p + "mixer.conv1d.bias"] = {{a.qkv}, false};
            }
            continue;
        }
        int64_t in_rows, conv_ch;
        if (s.family == 1) {
            const int64_t R = s.dt_rank;
            in_rows = 2 * E;
            conv_ch = E;
            m[p + "mixer.x_proj.weight"] = {{R + 2 * N, E}, false};
            m[p + "mixer.dt_proj.weight"] = {{E, R}, false};
            m[p + "mixer.dt_proj.bias"] = {{E}, false};
            m[p + "mixer.A_log"] = {{E, N}, false};
            m[p + "mixer.D"] = {{E}, false};
        } else {
            const int64_t H = s.n_heads, G = s.n_groups;
            in_rows = 2 * E + 2 * G * N + H;
            conv_ch = E + 2 * G * N;
            m[p + "mixer.dt_bias"] = {{H}, false};
            m[p + "mixer.A_log"] = {{H}, false};
            m[p + "mixer.D"] = {{H}, false};
            m[p + "mixer.norm.weight"] = {{E}, false};
        }
        m[p + "mixer.in_proj.weight"] = {{in_rows, D}, false};
        m[p + "mixer.conv1d.weight"] = {{conv_ch, 1, K}, false};
        if (s.conv_bias) m[p + "mixer.conv1d.bias"] = {{conv_ch}, false};
        m[p + "mixer.out_proj.weight"] = {{D, E}, false};
        if (s.proj_bias) {
            m[p + "mixer.in_proj.bias"] = {{in_rows}, false};
            m[p + "mixer.out_proj.bias"] = {{D}, false};
        }
    }
    return m;
}

WeightStore::WeightStore(const ModelSpec& spec) {
    const auto expected = expected_tensors(spec);
    for (const TensorSource& src : spec.tensors) {
        auto it = expected.find(src.name);
        if (it == expected.end())
            throw std::runtime_error("unexpected tensor " + src.name + " (not a weight of this " +
                                     (spec.family == 1 ? "Mamba-1" : "Mamba-2") +
                                     (has_attention(spec) || spec.d_intermediate > 0 ? " hybrid" : "") + " configuration)");
        if (tensors_.count(src.name)) throw std::runtime_error("tensor " + src.name + " is given twice");
        if (src.shape != it->second.shape)
            throw std::runtime_error("tensor " + src.name + " has shape " + shape_str(src.shape) + ", expected " +
                                     shape_str(it->second.shape));
        size_t count = 1;
        for (int64_t d : src.shape) count *= size_t(d);
        const size_t esize = dtype_size(src.dtype);
        if (src.byte_length != count * esize)
            throw std::runtime_error("tensor " + src.name + ": byteLength " + std::to_string(src.byte_length) +
                                     " != " + std::to_string(count) + " elements × " + std::to_string(esize) +
                                     " bytes (" + dtype_name(src.dtype) + ")");
        auto& file = files_[src.file];
        if (!file) file = std::make_shared<MappedFile>(src.file);
        if (src.offset > file->size() || src.byte_length > file->size() - src.offset)
            throw std::runtime_error("tensor " + src.name + ": bytes [" + std::to_string(src.offset) + ", " +
                                     std::to_string(src.offset + src.byte_length) + ") lie outside " + src.file +
                                     " (" + std::to_string(file->size()) + " bytes)");
        const uint8_t* raw = file->data() + src.offset;
        int64_t bad = first_nonfinite(raw, src.dtype, count);
        if (bad >= 0)
            throw std::runtime_error(src.file + ": tensor " + src.name + " has a non-finite value (NaN or Inf) at element " +
                                     std::to_string(bad));

        Tensor t;
        t.rows = src.shape.size() >= 2 ? src.shape[0] : 1;
        t.cols = int64_t(count) / (t.rows ? t.rows : 1);
        t.dtype = (spec.weight_type == WeightType::BF16 && is_matrix_weight(src.name)) ? DType::BF16 : DType::F32;
        const uintptr_t addr = reinterpret_cast<uintptr_t>(raw);
        if (t.dtype == src.dtype && addr % esize == 0) {
            t.data = raw;  // zero copy: the mapped bytes are already in compute form
        } else if (t.dtype == DType::F32) {
            t.owned.resize(count * 4);
            float* dst = reinterpret_cast<float*>(t.owned.data());
            for (size_t i = 0; i < count; i++) dst[i] = element_f32(raw, src.dtype, i);
            t.data = t.owned.data();
        } else {
            t.owned.resize(count * 2);
            uint16_t* dst = reinterpret_cast<uint16_t*>(t.owned.data());
            for (size_t i = 0; i < count; i++) dst[i] = f32_to_bf16(element_f32(raw, src.dtype, i));
            t.data = t.owned.data();
        }
        if (t.data != raw) release_pages(raw, src.byte_length);
        tensors_.emplace(src.name, std::move(t));
    }
    for (const auto& [name, exp] : expected)
        if (!exp.optional && !tensors_.count(name)) throw std::runtime_error("missing tensor " + name);
}

const Tensor& WeightStore::get(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::runtime_error("missing tensor " + name);
    return it->second;
}

void WeightStore::release(const std::string& name, size_t begin, size_t end) {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::runtime_error("missing tensor " + name);
    Tensor& t = it->second;
    if (!t.data || end <= begin) return;
    if (!t.owned.empty()) {
        if (begin == 0 && end >= t.owned.size()) {
            std::vector<uint8_t>().swap(t.owned);
            t.data = nullptr;
        }
        return;
    }
    release_pages(static_cast<const uint8_t*>(t.data) + begin, std::min<uint64_t>(end, t.bytes()) - begin);
}

size_t WeightStore::total_bytes() const {
    size_t n = 0;
    for (const auto& [name, t] : tensors_) n += t.bytes();
    return n;
}

}  // namespace mamba
