// cpu_backend.cc — the CPU Backend: Mamba-1 / Mamba-2 (and hybrid attention / GatedMLP) forward over packed
// segments, state slots, step.
//
// score(): embed all rows → per layer (RMSNorm → in_proj → conv+SiLU → scan → out_proj → residual), where
// GEMMs and row-wise ops run on all packed rows at once and only conv and scan see segment boundaries →
// norm_f + LM head on the distinct requested rows only. step() is score() with one 1-token segment per
// slot, so both paths run the very same arithmetic.
//
// Hybrid models (mamba_ssm's Block with MHA layers and a GatedMLP): the residual stream h goes through
//   h += mixer(RMSNorm(h)·w_norm)            mixer = the Mamba mixer, or attention (attention.h)
//   h += mlp(RMSNorm(h)·w_norm2)             when d_intermediate > 0:  mlp(x) = (y · SiLU(gate)) · fc2ᵀ, [y | gate] = x · fc1ᵀ
// which is mamba_ssm's fused add + norm (block.py 51-86: res = h + res; h = mixer(norm(res)); res = h + res;
// h = mlp(norm2(res))) written as one stream. Attention layers keep K/V rows in chains of KvBlocks per slot.
#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <stdexcept>
#include <thread>

#include "backend.h"
#include "cpu/attention.h"
#include "cpu/gemm.h"
#include "cpu/mlp.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "score_batch.h"
#include "weights.h"

namespace mamba {

namespace {

constexpr int64_t kHeadChunk = 128;  // LM-head rows computed at a time (bounds the logits scratch: 128 × vocab floats)

// Anonymous memory for the packed GEMM weights: one mapping, in transparent huge pages where the kernel
// allows them (a decode step streams every weight once, so fewer TLB misses; on a VM also far fewer
// first-touch faults). One mapping for all matrices, so at most one partly used huge page.
class PackedArena {
public:
    explicit PackedArena(size_t bytes) {
        constexpr size_t kHuge = size_t(2) << 20;
        size_ = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;  // room to start on a huge-page boundary
        void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            throw std::runtime_error("cannot allocate " + std::to_string(bytes) + " bytes for the packed weights");
        base_ = static_cast<uint8_t*>(p);
        data_ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base_) + kHuge - 1) & ~uintptr_t(kHuge - 1));
        ::madvise(data_, size_ - size_t(data_ - base_), MADV_HUGEPAGE);  // advice only: 4 KiB pages otherwise
    }
    ~PackedArena() { ::munmap(base_, size_); }
    PackedArena(const PackedArena&) = delete;
    PackedArena& operator=(const PackedArena&) = delete;
    uint8_t* data() const { return data_; }

private:
    uint8_t* base_ = nullptr;
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

// One layer's weights, by role. Pointers into the WeightStore or the packed arena; small derived arrays owned here.
// An attention layer uses norm, in_proj, in_bias, conv_wT ([K][qkv]), conv_bias, out_proj and out_bias.
struct Layer {
    int kind;                    // kMambaLayer or kAttentionLayer
    int attn_index;              // attention layers: index among them (the layer index of KvBlock); -1 otherwise
    const Tensor* norm;
    const float* norm2;          // GatedMLP (d_intermediate > 0): norm2.weight, fc1, fc2
    GemmWeight fc1, fc2;
    GemmWeight in_proj;
    const float* in_bias;  // or null
    std::vector<float> conv_wT;  // [K][C] transposed conv1d.weight
    const float* conv_bias;      // or null
    GemmWeight x_proj;           // Mamba-1
    GemmWeight dt_proj;          // Mamba-1
    const float* dt_bias;        // Mamba-1: dt_proj.bias [E]; Mamba-2: dt_bias [H]
    std::vector<float> A;        // Mamba-1: [N][E] = −exp(A_log)ᵀ; Mamba-2: [H] = −exp(A_log)
    const float* D;
    const float* gate_norm;      // Mamba-2 mixer.norm.weight [E]
    GemmWeight out_proj;
    const float* out_bias;       // or null
};

// Per-op wall time (and the calling thread's CPU time) of score() calls, printed to stderr after each call when MAMBA_EVAL_PROFILE is set
// (a measurement aid, docs/performance.md; it changes no result).
// Mamba-1 runs in_proj+conv and dt_proj+softplus+scan as fused per-thread regions, timed as one op each.
enum Op { kEmbed, kNorm, kInProj, kConv, kInProjConv, kXProj, kDtProjScan, kScan, kGateNorm, kOutProj, kRotary,
          kAttention, kMlp, kHeadNorm, kHeadGemm, kHeadLse, kOps };
const char* const kOpNames[kOps] = {"embed", "rmsnorm", "in_proj", "conv", "in_proj+conv", "x_proj",
                                    "dt_proj+softplus+scan", "scan", "gate_norm", "out_proj+residual",
                                    "rotary+kv_store", "attention", "mlp", "head_norm", "head_gemm", "head_logsoftmax"};

class OpTimer {
public:
    OpTimer() : on_(std::getenv("MAMBA_EVAL_PROFILE") != nullptr) {}
    template <class F>
    void run(Op op, F&& f) {
        if (!on_) {
            f();
            return;
        }
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = thread_cpu();
        f();
        sec_[op] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        cpu_[op] += thread_cpu() - c0;
    }
    // Marks the start of a score() call (the wall time printed by report() runs from here).
    void start() {
        if (on_) t0_ = std::chrono::steady_clock::now();
    }
    void report(int64_t T) {
        if (!on_) return;
        double total = 0;
        for (double s : sec_) total += s;
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
        std::fprintf(stderr, "profile T=%lld total %.1f ms (wall %.1f ms):", (long long)T, total * 1e3, wall * 1e3);
        for (int i = 0; i < kOps; i++)
            if (sec_[i] > 0)
                std::fprintf(stderr, " %s %.1f%% (%.2f ms, calling thread cpu %.2f ms)", kOpNames[i], 100 * sec_[i] / total,
                             sec_[i] * 1e3, cpu_[i] * 1e3);
        std::fprintf(stderr, "\n");
        for (double& s : sec_) s = 0;
        for (double& s : cpu_) s = 0;
    }

private:
    // CPU seconds of the calling thread: with one thread, an op's own cost whatever else the machine runs.
    static double thread_cpu() {
        timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
    }
    bool on_;
    double sec_[kOps] = {}, cpu_[kOps] = {};
    std::chrono::steady_clock::time_point t0_;
};

std::string slot_str(int slot) { return "slot " + std::to_string(slot); }

// Copies between an internal [rows][cols] block and its exchange layout, the transpose [cols][rows]: to the exchange
// layout (to_exchange) or back.
void transpose_copy(float* internal, float* exchange, int64_t rows, int64_t cols, bool to_exchange) {
    for (int64_t c = 0; c < cols; c++)
        for (int64_t r = 0; r < rows; r++) {
            float& a = internal[r * cols + c];
            float& b = exchange[c * rows + r];
            if (to_exchange) b = a; else a = b;
        }
}

// One segment's K/V chains in a call: where its keys before its first row come from, and the block (and first
// row in it) that receives its own rows when it saves its state.
struct SegmentChain {
    KvChain init;
    std::shared_ptr<KvBlock> save_block;
    int64_t save_row0 = 0;
};

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(const ModelSpec& spec)
        : s_(spec), w_(spec), pool_(spec.threads), isa_(choose_gemm_isa()), a_(attention_dims(spec)),
          rot_(a_.rd, spec.attn_rotary_base) {
        s_.tensors.clear();
        const int64_t E = s_.d_inner, N = s_.d_state, K = s_.d_conv;
        conv_ch_ = s_.family == 1 ? E : E + 2 * int64_t(s_.n_groups) * N;
        in_rows_ = s_.family == 1 ? 2 * E : 2 * E + 2 * int64_t(s_.n_groups) * N + s_.n_heads;
        conv_layer_ = (K - 1) * conv_ch_;
        ssm_layer_ = s_.family == 1 ? E * N : int64_t(s_.n_heads) * s_.head_dim * N;
        // Per-layer state offsets: a Mamba layer holds conv_layer_ + ssm_layer_ floats, an attention layer its
        // (K−1) × qkv pre-conv rows (and its K/V rows in the slot's chain).
        int64_t conv_at = 0, ssm_at = 0;
        for (int l = 0; l < s_.n_layer; l++) {
            const bool attn = s_.layer_kinds[size_t(l)] == kAttentionLayer;
            conv_off_.push_back(conv_at);
            ssm_off_.push_back(ssm_at);
            conv_at += attn ? std::max<int64_t>(0, a_.K - 1) * a_.qkv : conv_layer_;
            ssm_at += attn ? 0 : ssm_layer_;
            if (attn) n_attn_++;
            else n_mamba_++;
        }
        conv_total_ = conv_at;
        ssm_total_ = ssm_at;
        pack_matrices();
        emb_ = packed_.at("backbone.embedding.weight");
        norm_f_ = &w_.get("backbone.norm_f.weight");
        head_ = packed_.count("lm_head.weight") ? packed_.at("lm_head.weight") : emb_;
        for (int i = 0; i < s_.n_layer; i++) layers_.push_back(load_layer(i));
    }

    void score(const ScoreBatch& b, ScoreOutput& out) override { run_score(b, out); }

    void step(const int32_t* slots, const int32_t* tokens, int n, float* logits_out) override {
        if (n <= 0) throw std::runtime_error("step: expected at least one slot");
        ScoreBatch b;
        std::vector<int32_t> seen;
        for (int i = 0; i < n; i++) {
            check_slot_id(slots[i], "step: slots[" + std::to_string(i) + "]");
            if (std::find(seen.begin(), seen.end(), slots[i]) != seen.end())
                throw std::runtime_error("step: slot " + std::to_string(slots[i]) + " appears twice");
            seen.push_back(slots[i]);
            b.tokens.push_back(tokens[i]);
            b.seg_offsets.push_back(i);
            b.seg_init.push_back(slots[i]);
            b.seg_save.push_back(slots[i]);
            b.logit_rows.push_back(i);
        }
        b.seg_offsets.push_back(n);
        check_tokens(b.tokens, s_.vocab, "step: tokens");
        for (int i = 0; i < n; i++)  // a slot never written starts from the zero state
            if (!live(slots[i])) allocate(slots[i]);
        ScoreOutput out;
        validate_score_batch(b, s_.vocab, [this](int slot) { return live(slot); });
        run_score(b, out);
        std::memcpy(logits_out, out.logits.data(), out.logits.size() * sizeof(float));
    }

    void copy_state(int src, int dst) override {
        require_live(src, "copyState: source");
        check_slot_id(dst, "copyState: destination");
        if (src == dst) return;
        allocate(dst);
        std::memcpy(slots_[dst].get(), slots_[src].get(), state_floats() * sizeof(float));
        chains_[dst] = chains_[src];  // the K/V rows are shared, never copied
    }

    void free_state(int slot) override {
        check_slot_id(slot, "freeState");
        if (size_t(slot) < slots_.size()) {
            slots_[slot].reset();
            chains_[slot] = KvChain{};
        }
    }

    bool holds_state(int slot) const override { return live(slot); }

    void export_state(int slot, StateData& out) override {
        require_live(slot, "exportState");
        out.conv.resize(conv_state_floats());
        out.ssm.resize(ssm_state_floats());
        transfer_state(slots_[slot].get(), out.conv.data(), out.ssm.data(), true);
        // kv [token][attention layer][K heads | V heads]
        const KvChain& chain = chains_[slot];
        out.kv.resize(size_t(chain.length) * kv_floats_per_token());
        float* dst = out.kv.data();
        for (const KvRun& run : chain_runs(chain))
            for (int64_t r = 0; r < run.rows; r++)
                for (int ai = 0; ai < n_attn_; ai++, dst += a_.kv_row) run.block->read_row(ai, r, dst);
    }

    void import_state(int slot, const StateData& in) override {
        check_slot_id(slot, "importState");
        auto check = [](const std::vector<float>& v, size_t expected, const char* what) {
            if (v.size() != expected)
                throw std::runtime_error(std::string("importState: ") + what + " has " + std::to_string(v.size()) +
                                         " floats, expected " + std::to_string(expected));
        };
        check(in.conv, conv_state_floats(), "conv");
        check(in.ssm, ssm_state_floats(), "ssm");
        const size_t per_token = kv_floats_per_token();
        if (per_token == 0 ? !in.kv.empty() : in.kv.size() % per_token != 0)
            throw std::runtime_error("importState: kv has " + std::to_string(in.kv.size()) + " floats, expected " +
                                     (per_token == 0 ? std::string("none (the model has no attention layers)")
                                                     : "a multiple of kvFloatsPerToken = " + std::to_string(per_token)));
        auto finite = [](const std::vector<float>& v, const char* what) {
            for (size_t i = 0; i < v.size(); i++)
                if (!std::isfinite(v[i]))
                    throw std::runtime_error(std::string("importState: ") + what + "[" + std::to_string(i) + "] is not finite");
        };
        finite(in.conv, "conv");
        finite(in.ssm, "ssm");
        finite(in.kv, "kv");
        allocate(slot);
        transfer_state(slots_[slot].get(), const_cast<float*>(in.conv.data()), const_cast<float*>(in.ssm.data()), false);
        const int64_t rows = per_token == 0 ? 0 : int64_t(in.kv.size() / per_token);
        chains_[slot] = KvChain{};
        if (rows > 0) {
            auto block = std::make_shared<KvBlock>(nullptr, 0, rows, n_attn_, a_);
            const float* src = in.kv.data();
            for (int64_t r = 0; r < rows; r++)
                for (int ai = 0; ai < n_attn_; ai++, src += a_.kv_row) block->write_row(ai, r, src);
            chains_[slot] = KvChain{std::move(block), rows};
        }
    }

    size_t conv_state_floats() const override { return size_t(conv_total_); }
    size_t ssm_state_floats() const override { return size_t(ssm_total_); }
    size_t kv_floats_per_token() const override { return size_t(a_.kv_row) * size_t(n_attn_); }
    size_t weight_bytes() const override {
        size_t n = w_.total_bytes();
        for (const Layer& l : layers_) n += (l.conv_wT.size() + l.A.size()) * sizeof(float);
        return n;
    }
    std::string isa() const override { return gemm_isa_name(isa_); }

private:
    // Copies every GEMM weight into the panel layout (gemm.h) in one arena, a slice of rows at a time, and
    // releases each slice's source bytes right after it (a converted bf16 copy: the whole tensor after it), so
    // the resident set holds about one copy of the weights throughout (peak: the weights plus one tensor).
    void pack_matrices() {
        std::vector<std::string> names = {"backbone.embedding.weight"};
        if (!s_.tie_embeddings && w_.has("lm_head.weight")) names.push_back("lm_head.weight");
        for (int i = 0; i < s_.n_layer; i++) {
            const std::string p = "backbone.layers." + std::to_string(i) + ".mixer.";
            names.push_back(p + "in_proj.weight");
            if (s_.family == 1 && s_.layer_kinds[size_t(i)] == kMambaLayer) {
                names.push_back(p + "x_proj.weight");
                names.push_back(p + "dt_proj.weight");
            }
            names.push_back(p + "out_proj.weight");
            if (s_.d_intermediate > 0) {
                names.push_back("backbone.layers." + std::to_string(i) + ".mlp.fc1.weight");
                names.push_back("backbone.layers." + std::to_string(i) + ".mlp.fc2.weight");
            }
        }
        size_t total = 0;
        for (const std::string& n : names) {
            const Tensor& t = w_.get(n);
            total += packed_bytes(t.rows, t.cols, t.dtype);
        }
        arena_ = std::make_unique<PackedArena>(total);
        constexpr size_t kSliceBytes = size_t(8) << 20;  // source bytes packed between two releases
        uint8_t* dst = arena_->data();
        for (const std::string& n : names) {
            const Tensor& t = w_.get(n);
            const bool owned = !t.owned.empty();
            const size_t row_bytes = t.bytes() / size_t(t.rows);
            // A mapped tensor goes in slices (its pages can be dropped slice by slice); a converted copy at once.
            constexpr int64_t kP = GemmWeight::kPanel;
            const int64_t slice = owned ? t.rows : std::max<int64_t>(kP, int64_t(kSliceBytes / row_bytes) / kP * kP);
            GemmWeight g;
            for (int64_t r0 = 0; r0 < t.rows; r0 += slice) {
                const int64_t r1 = std::min(t.rows, r0 + slice);
                g = pack_rows(t, dst, r0, r1);
                w_.release(n, size_t(r0) * row_bytes, r1 == t.rows ? t.bytes() : size_t(r1) * row_bytes);
            }
            weights_.push_back(g);
            dst += packed_bytes(t.rows, t.cols, t.dtype);
#ifdef __GLIBC__
            // A freed converted copy below malloc's mmap threshold stays in the heap; hand its pages back now.
            if (owned) malloc_trim(0);
#endif
        }
        for (size_t i = 0; i < names.size(); i++) packed_[names[i]] = &weights_[i];
    }

    Layer load_layer(int i) {
        const std::string p = "backbone.layers." + std::to_string(i) + ".";
        auto vec = [&](const std::string& name) { return w_.get(p + name).f32(); };
        auto opt = [&](const std::string& name) { return w_.has(p + name) ? w_.get(p + name).f32() : nullptr; };
        Layer l{};
        l.kind = s_.layer_kinds[size_t(i)];
        l.attn_index = -1;
        l.norm = &w_.get(p + "norm.weight");
        if (s_.d_intermediate > 0) {
            l.norm2 = vec("norm2.weight");
            l.fc1 = *packed_.at(p + "mlp.fc1.weight");
            l.fc2 = *packed_.at(p + "mlp.fc2.weight");
        }
        l.in_proj = *packed_.at(p + "mixer.in_proj.weight");
        l.out_proj = *packed_.at(p + "mixer.out_proj.weight");
        if (l.kind == kAttentionLayer) {
            l.attn_index = n_attn_loaded_++;
            l.in_bias = s_.attn_qkv_bias ? vec("mixer.in_proj.bias") : nullptr;
            l.out_bias = s_.attn_out_bias ? vec("mixer.out_proj.bias") : nullptr;
            if (a_.K > 0) {
                l.conv_bias = vec("mixer.conv1d.bias");
                const float* cw = vec("mixer.conv1d.weight");  // [qkv][K]
                const int64_t C = a_.qkv, K = a_.K;
                l.conv_wT.resize(size_t(C * K));
                for (int64_t c = 0; c < C; c++)
                    for (int64_t k = 0; k < K; k++) l.conv_wT[k * C + c] = cw[c * K + k];
            }
            return l;
        }
        l.in_bias = s_.proj_bias ? vec("mixer.in_proj.bias") : nullptr;
        l.conv_bias = s_.conv_bias ? opt("mixer.conv1d.bias") : nullptr;
        l.out_bias = s_.proj_bias ? vec("mixer.out_proj.bias") : nullptr;
        l.D = vec("mixer.D");
        const float* cw = vec("mixer.conv1d.weight");  // [C][K]
        const int64_t C = conv_ch_, K = s_.d_conv;
        l.conv_wT.resize(size_t(C * K));
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < K; k++) l.conv_wT[k * C + c] = cw[c * K + k];
        const float* a_log = vec("mixer.A_log");
        if (s_.family == 1) {
            const int64_t E = s_.d_inner, N = s_.d_state;
            l.x_proj = *packed_.at(p + "mixer.x_proj.weight");
            l.dt_proj = *packed_.at(p + "mixer.dt_proj.weight");
            l.dt_bias = vec("mixer.dt_proj.bias");
            l.A.resize(size_t(E * N));
            for (int64_t e = 0; e < E; e++)
                for (int64_t n = 0; n < N; n++) l.A[n * E + e] = -std::exp(a_log[e * N + n]);
        } else {
            l.dt_bias = vec("mixer.dt_bias");
            l.gate_norm = vec("mixer.norm.weight");
            l.A.resize(size_t(s_.n_heads));
            for (int h = 0; h < s_.n_heads; h++) l.A[h] = -std::exp(a_log[h]);
        }
        return l;
    }

    size_t state_floats() const { return conv_state_floats() + ssm_state_floats(); }
    bool live(int slot) const { return slot >= 0 && size_t(slot) < slots_.size() && slots_[slot] != nullptr; }
    float* conv_of(int slot, int layer) { return slots_[slot].get() + conv_off_[size_t(layer)]; }
    float* ssm_of(int slot, int layer) { return slots_[slot].get() + conv_state_floats() + ssm_off_[size_t(layer)]; }

    void require_live(int slot, const std::string& what) const {
        check_slot_id(slot, what);
        if (!live(slot)) throw std::runtime_error(what + ": " + slot_str(slot) + " holds no state");
    }
    // Makes the slot hold a (zeroed, if new) state buffer and an empty K/V chain.
    void allocate(int slot) {
        if (size_t(slot) >= slots_.size()) {
            slots_.resize(size_t(slot) + 1);
            chains_.resize(size_t(slot) + 1);
        }
        if (!slots_[slot]) {
            slots_[slot].reset(new float[state_floats()]());
            chains_[slot] = KvChain{};
        }
    }

    // Copies a slot's state to (export) or from (import) the exchange layout:
    // conv [layer][C][K-1] (oldest first) over the layers with a conv, Mamba-1 ssm [layer][E][N], Mamba-2 ssm
    // [layer][H][P][N] over the Mamba layers (internal: conv [K-1][C], Mamba-1 [N][E], Mamba-2 [H][N][P]).
    void transfer_state(float* slot, float* conv, float* ssm, bool to_exchange) {
        for (int l = 0; l < s_.n_layer; l++) {
            const bool attn = s_.layer_kinds[size_t(l)] == kAttentionLayer;
            const int64_t C = attn ? a_.qkv : conv_ch_, K1 = attn ? std::max<int64_t>(0, a_.K - 1) : s_.d_conv - 1;
            transpose_copy(slot + conv_off_[size_t(l)], conv + conv_off_[size_t(l)], K1, C, to_exchange);
            if (attn) continue;
            float* is = slot + conv_state_floats() + ssm_off_[size_t(l)];
            float* es = ssm + ssm_off_[size_t(l)];
            if (s_.family == 2) {  // internal [H][N][P], exchange [H][P][N]
                const int64_t H = s_.n_heads, P = s_.head_dim, N = s_.d_state;
                for (int64_t h = 0; h < H; h++) transpose_copy(is + h * N * P, es + h * P * N, N, P, to_exchange);
            } else {  // internal [N][E], exchange [E][N]
                transpose_copy(is, es, s_.d_state, s_.d_inner, to_exchange);
            }
        }
    }

    void run_score(const ScoreBatch& b, ScoreOutput& out) {
        prof_.start();
        const int64_t T = int64_t(b.tokens.size()), D = s_.d_model, E = s_.d_inner;
        const size_t n_seg = b.seg_offsets.size() - 1;
        for (size_t s = 0; s < n_seg; s++)
            if (b.seg_save[s] >= 0) allocate(b.seg_save[s]);
        // K/V chains of every segment, decided in segment order before any layer runs (a segment may start from
        // a slot an earlier segment of the call saves); the blocks' rows are filled layer by layer below.
        std::vector<SegmentChain> chains;
        std::vector<AttnSegment> attn_segs;
        if (n_attn_ > 0) plan_chains(b, chains, attn_segs);

        h_.resize(size_t(T * D));
        u_.resize(size_t(T * D));
        if (n_mamba_ > 0) {
            xz_.resize(size_t(T * in_rows_));
            xc_.resize(size_t(T * conv_ch_));
            y_.resize(size_t(T * E));
        }
        if (n_attn_ > 0 || s_.d_intermediate > 0) {
            const int64_t dI = s_.d_intermediate;
            big_.resize(size_t(T * std::max(n_attn_ > 0 ? a_.in_rows : 0, 2 * dI)));     // in_proj or fc1 output
            mid_.resize(size_t(T * std::max(n_attn_ > 0 && a_.K > 0 ? a_.qkv : 0, dI)));  // conv output or MLP hidden
            if (n_attn_ > 0) {
                ctx_.resize(size_t(T * a_.ctx));
                kv_.resize(size_t(T * a_.kv_row));
            }
        }
        prof_.run(kEmbed, [&] { embed(b.tokens, h_.data()); });

        std::vector<SegmentState> segs(n_seg);
        for (int l = 0; l < s_.n_layer; l++) {
            const Layer& L = layers_[l];
            for (size_t s = 0; s < n_seg; s++) {
                const int init = b.seg_init[s], save = b.seg_save[s];
                const bool mamba = L.kind == kMambaLayer;
                segs[s] = {b.seg_offsets[s], b.seg_offsets[s + 1], init >= 0 ? conv_of(init, l) : nullptr,
                           save >= 0 ? conv_of(save, l) : nullptr, init >= 0 && mamba ? ssm_of(init, l) : nullptr,
                           save >= 0 && mamba ? ssm_of(save, l) : nullptr};
            }
            prof_.run(kNorm, [&] { rms_norm(h_.data(), D, T, D, L.norm->f32(), s_.norm_eps, u_.data(), D, pool_); });
            if (L.kind == kAttentionLayer)
                attention_layer(L, T, segs, chains, attn_segs);
            else
                mamba_layer(L, T, segs);
            if (s_.d_intermediate > 0) {
                // h += (y · SiLU(gate)) · fc2ᵀ,  [y | gate] = RMSNorm(h)·w_norm2 · fc1ᵀ
                const int64_t dI = s_.d_intermediate;
                prof_.run(kNorm, [&] { rms_norm(h_.data(), D, T, D, L.norm2, s_.norm_eps, u_.data(), D, pool_); });
                prof_.run(kMlp, [&] {
                    gemm(u_.data(), D, T, L.fc1, nullptr, big_.data(), 2 * dI, pool_, isa_);
                    silu_gate(big_.data(), 2 * dI, T, dI, mid_.data(), dI, pool_);
                    gemm(mid_.data(), dI, T, L.fc2, nullptr, h_.data(), D, pool_, isa_, GemmOut::AddTo);
                });
            }
        }
        head(b, out);
        prof_.report(T);
    }

    // h += out_proj(Mamba mixer(u)), u = the normed rows in u_.
    void mamba_layer(const Layer& L, int64_t T, const std::vector<SegmentState>& segs) {
        const int64_t D = s_.d_model, E = s_.d_inner, N = s_.d_state;
        if (s_.family == 1) {
            const int64_t R = s_.dt_rank, XD = R + 2 * N;
            xdbl_.resize(size_t(T * XD));
            dt_.resize(size_t(T * E));
            // Each thread: its channels' x and z columns of in_proj(u), then x = SiLU(conv1d(x) + b) on
            // them (no barrier between: the conv of a channel reads only that channel's column).
            prof_.run(kInProjConv, [&] {
                pool_.parallel_for(E, 8, [&](int64_t c0, int64_t c1) {
                    gemm_cols(u_.data(), D, T, L.in_proj, L.in_bias, xz_.data(), in_rows_, c0, c1, isa_);
                    gemm_cols(u_.data(), D, T, L.in_proj, L.in_bias, xz_.data(), in_rows_, E + c0, E + c1, isa_);
                    conv_silu_channels(xz_.data(), in_rows_, conv_ch_, s_.d_conv, L.conv_wT.data(), L.conv_bias,
                                       segs, xc_.data(), c0, c1, isa_);
                });
            });
            // [dt_low, B, C] = x_proj(x)
            prof_.run(kXProj, [&] { gemm(xc_.data(), E, T, L.x_proj, nullptr, xdbl_.data(), XD, pool_, isa_); });
            // Each thread: its channels' dt = dt_proj(dt_low) + bias, then the scan of those channels
            // (softplus(dt) is applied inside the scan).
            prof_.run(kDtProjScan, [&] {
                const DtProj dtp{&L.dt_proj, xdbl_.data(), XD, L.dt_bias};  // dt_proj inside, ahead of the scan
                pool_.parallel_for(E, 16, [&](int64_t e0, int64_t e1) {
                    mamba1_scan_channels(xc_.data(), dt_.data(), xdbl_.data() + R, xdbl_.data() + R + N, XD,
                                         xz_.data() + E, in_rows_, L.A.data(), L.D, E, N, segs, y_.data(), e0, e1,
                                         isa_, &dtp);
                });
            });
        } else {
            const int64_t G = s_.n_groups, H = s_.n_heads;
            // [z, xBC, dt] = in_proj(u);  xBC = SiLU(conv1d(xBC) + b);  scan;  y = RMSNorm_group(y ⊙ SiLU(z))·w
            prof_.run(kInProj, [&] { gemm(u_.data(), D, T, L.in_proj, L.in_bias, xz_.data(), in_rows_, pool_, isa_); });
            prof_.run(kConv, [&] {
                conv_silu(xz_.data() + E, in_rows_, conv_ch_, s_.d_conv, L.conv_wT.data(), L.conv_bias, segs,
                          xc_.data(), pool_, isa_);
            });
            prof_.run(kScan, [&] {
                mamba2_scan(xc_.data(), conv_ch_, xz_.data() + 2 * E + 2 * G * N, in_rows_, L.dt_bias, L.A.data(),
                            L.D, H, s_.head_dim, G, N, segs, y_.data(), pool_, isa_);
            });
            prof_.run(kGateNorm, [&] { gated_rms_norm(y_.data(), xz_.data(), in_rows_, T, E, G, L.gate_norm, s_.norm_eps, pool_); });
        }
        // h = out_proj(y) + h   (the residual added in the GEMM's store)
        prof_.run(kOutProj, [&] { gemm(y_.data(), E, T, L.out_proj, L.out_bias, h_.data(), D, pool_, isa_, GemmOut::AddTo); });
    }

    // h += out_proj([attention(q, k, v) | up · SiLU(gate)]), [q | k | v | up | gate] = in_proj(u) (attention.h).
    void attention_layer(const Layer& L, int64_t T, const std::vector<SegmentState>& segs,
                         const std::vector<SegmentChain>& chains, const std::vector<AttnSegment>& attn_segs) {
        const int64_t D = s_.d_model;
        const AttentionDims& a = a_;
        prof_.run(kInProj, [&] { gemm(u_.data(), D, T, L.in_proj, L.in_bias, big_.data(), a.in_rows, pool_, isa_); });
        // The in-attention MLP: ctx[:, H·hd:] = up · SiLU(gate)
        if (a.mlp > 0) prof_.run(kMlp, [&] { silu_gate(big_.data() + a.qkv, a.in_rows, T, a.mlp / 2, ctx_.data() + a.H * a.hd, a.ctx, pool_); });
        // q, k, v = conv1d(q, k, v) + b (the conv state keeps the pre-conv rows), or in place in the in_proj output
        float* qkv = big_.data();
        int64_t ld = a.in_rows;
        if (a.K > 0) {
            prof_.run(kConv, [&] { conv_channels_no_act(big_.data(), a.in_rows, a.qkv, int(a.K), L.conv_wT.data(), L.conv_bias, segs, mid_.data(), pool_); });
            qkv = mid_.data();
            ld = a.qkv;
        }
        prof_.run(kRotary, [&] {
            apply_rotary(qkv, ld, T, pos_.data(), a, rot_, pool_);
            gather_kv(qkv, ld, T, a, kv_.data(), pool_);
            // This layer's K, V rows of every saving segment go into its block (before any segment reads them).
            for (size_t s = 0; s < chains.size(); s++) {
                const SegmentChain& c = chains[s];
                if (c.save_block)
                    c.save_block->store(L.attn_index, c.save_row0, kv_.data(), T, attn_segs[s].t0, attn_segs[s].t1 - attn_segs[s].t0);
            }
        });
        prof_.run(kAttention, [&] {
            attention(qkv, ld, kv_.data(), T, a, float(s_.attn_softmax_scale), L.attn_index, attn_segs, ctx_.data(), a.ctx, pool_);
        });
        // h = out_proj(ctx) + h
        prof_.run(kOutProj, [&] { gemm(ctx_.data(), a.ctx, T, L.out_proj, L.out_bias, h_.data(), D, pool_, isa_, GemmOut::AddTo); });
    }

    // For each segment in order: the chain it starts from (its slot's chain as earlier segments left it) and, when
    // it saves, the block receiving its rows: the tail of that chain grown in place when the segment saves into
    // the slot it starts from and only that slot holds the tail (a decode step), else a new block whose parent is
    // the chain it started from. Also the rows' positions (pos_) and the rotary table up to the largest.
    void plan_chains(const ScoreBatch& b, std::vector<SegmentChain>& chains, std::vector<AttnSegment>& attn_segs) {
        const size_t n_seg = b.seg_offsets.size() - 1;
        chains.resize(n_seg);
        attn_segs.resize(n_seg);
        pos_.resize(b.tokens.size());
        int64_t max_pos = 0;
        for (size_t s = 0; s < n_seg; s++) {
            const int init = b.seg_init[s], save = b.seg_save[s];
            const int64_t t0 = b.seg_offsets[s], t1 = b.seg_offsets[s + 1], n = t1 - t0;
            SegmentChain& c = chains[s];
            KvChain from = init >= 0 ? chains_[size_t(init)] : KvChain{};
            if (save >= 0) {
                KvChain& slot = chains_[size_t(save)];
                const bool grow = save == init && slot.tail && slot.tail.use_count() == 2 &&  // this slot and `from`
                                  slot.length == slot.tail->start + slot.tail->rows;
                if (grow) {
                    c.save_row0 = slot.tail->rows;
                    slot.tail->grow(n);
                    c.save_block = slot.tail;
                } else {
                    c.save_block = std::make_shared<KvBlock>(from.tail, from.length, n, n_attn_, a_);
                    c.save_row0 = 0;
                }
                slot = KvChain{c.save_block, from.length + n};
            }
            attn_segs[s] = AttnSegment{t0, t1, from.length, chain_runs(from)};
            for (int64_t t = t0; t < t1; t++) pos_[size_t(t)] = from.length + (t - t0);
            max_pos = std::max(max_pos, from.length + n);
            c.init = std::move(from);
        }
        rot_.ensure(max_pos);
    }

    // h[t] = embedding[tokens[t]] as f32
    void embed(const std::vector<int32_t>& tokens, float* h) {
        for (size_t t = 0; t < tokens.size(); t++) packed_row_f32(*emb_, tokens[t], h + t * s_.d_model);
    }

    // norm_f + LM head on the distinct rows of scoreRows ∪ logitRows, kHeadChunk rows at a time;
    // then log-probabilities, greedy flags and requested logits.
    void head(const ScoreBatch& b, ScoreOutput& out) {
        const int64_t D = s_.d_model, V = s_.vocab;
        std::vector<int32_t> rows(b.score_rows);
        rows.insert(rows.end(), b.logit_rows.begin(), b.logit_rows.end());
        std::sort(rows.begin(), rows.end());
        rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
        auto index_of = [&](int32_t r) { return int64_t(std::lower_bound(rows.begin(), rows.end(), r) - rows.begin()); };
        std::vector<int64_t> score_idx(b.score_rows.size()), logit_idx(b.logit_rows.size());
        for (size_t i = 0; i < score_idx.size(); i++) score_idx[i] = index_of(b.score_rows[i]);
        for (size_t i = 0; i < logit_idx.size(); i++) logit_idx[i] = index_of(b.logit_rows[i]);

        out.logprobs.assign(b.score_rows.size(), 0.0);
        out.greedy.assign(b.score_rows.size(), 0);
        out.logits.resize(b.logit_rows.size() * size_t(V));  // every row is written below
        const int64_t R = int64_t(rows.size());
        hn_.resize(size_t(std::min(R, kHeadChunk) * D));
        logits_.resize(size_t(std::min(R, kHeadChunk) * V));
        for (int64_t r0 = 0; r0 < R; r0 += kHeadChunk) {
            const int64_t r1 = std::min(R, r0 + kHeadChunk);
            for (int64_t r = r0; r < r1; r++)
                std::memcpy(u_.data() + (r - r0) * D, h_.data() + int64_t(rows[r]) * D, size_t(D) * sizeof(float));
            prof_.run(kHeadNorm, [&] { rms_norm(u_.data(), D, r1 - r0, D, norm_f_->f32(), s_.norm_eps, hn_.data(), D, pool_); });
            prof_.run(kHeadGemm, [&] { gemm(hn_.data(), D, r1 - r0, *head_, nullptr, logits_.data(), V, pool_, isa_); });
            std::vector<size_t> todo;
            for (size_t i = 0; i < score_idx.size(); i++)
                if (score_idx[i] >= r0 && score_idx[i] < r1) todo.push_back(i);
            prof_.run(kHeadLse, [&] { pool_.parallel_for(int64_t(todo.size()), 1, [&](int64_t a, int64_t z) {
                for (int64_t j = a; j < z; j++) {
                    const size_t i = todo[j];
                    const float* lg = logits_.data() + (score_idx[i] - r0) * V;
                    const int32_t target = b.score_targets[i];
                    float m;
                    int64_t arg;
                    if (!max_arg_max(lg, V, &m, &arg)) {  // a NaN (or a tiny vocabulary): the scalar passes
                        m = lg[0];
                        for (int64_t v = 1; v < V; v++) m = std::max(m, lg[v]);
                        arg = arg_max(lg, V);
                    }
                    out.logprobs[i] = double(lg[target]) - log_sum_exp_given_max(lg, V, m, isa_);
                    out.greedy[i] = arg == target ? 1 : 0;
                }
            }); });
            for (size_t i = 0; i < logit_idx.size(); i++)
                if (logit_idx[i] >= r0 && logit_idx[i] < r1)
                    std::memcpy(out.logits.data() + i * V, logits_.data() + (logit_idx[i] - r0) * V, size_t(V) * sizeof(float));
        }
    }

    ModelSpec s_;
    WeightStore w_;
    ThreadPool pool_;
    GemmIsa isa_;  // which GEMM kernels run (results are bit-identical either way)
    AttentionDims a_;  // attention layers' sizes (all zero without attention)
    RotaryTable rot_;
    OpTimer prof_;
    int64_t conv_ch_, in_rows_, conv_layer_, ssm_layer_;  // of a Mamba layer
    int n_attn_ = 0, n_mamba_ = 0, n_attn_loaded_ = 0;
    std::vector<int64_t> conv_off_, ssm_off_;  // per layer: offset of its conv / SSM state in a slot's parts
    int64_t conv_total_ = 0, ssm_total_ = 0;
    std::unique_ptr<PackedArena> arena_;               // the packed GEMM weights
    std::vector<GemmWeight> weights_;                  // views into arena_, in packing order
    std::map<std::string, const GemmWeight*> packed_;  // canonical name → its packed view
    const GemmWeight* emb_;
    const Tensor* norm_f_;
    const GemmWeight* head_;
    std::vector<Layer> layers_;
    std::vector<std::unique_ptr<float[]>> slots_;  // slot id → [conv of all layers | ssm of the Mamba layers]
    std::vector<KvChain> chains_;                  // slot id → its K/V rows (attention layers)
    std::vector<float> h_, u_, xz_, xc_, xdbl_, dt_, y_, hn_, logits_;  // scratch, reused across calls
    std::vector<float> big_, mid_, ctx_, kv_;      // attention / GatedMLP scratch (kv_: gather_kv's head-major K, V)
    std::vector<int64_t> pos_;                     // position of each row of the call
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const ModelSpec& spec) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        throw std::runtime_error("this CPU lacks AVX2/FMA, which the CPU backend requires");
    validate_spec(spec);
    return std::make_unique<CpuBackend>(spec);
}

}  // namespace mamba
