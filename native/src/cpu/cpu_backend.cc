// cpu_backend.cc — the CPU Backend: Mamba-1 / Mamba-2 forward over packed segments, state slots, step.
//
// score(): embed all rows → per layer (RMSNorm → in_proj → conv+SiLU → scan → out_proj → residual), where
// GEMMs and row-wise ops run on all packed rows at once and only conv and scan see segment boundaries →
// norm_f + LM head on the distinct requested rows only. step() is score() with one 1-token segment per
// slot, so both paths run the very same arithmetic.
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
#include "cpu/gemm.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "weights.h"

namespace mamba {

namespace {

constexpr int kMaxSlots = 1 << 20;
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
struct Layer {
    const Tensor* norm;
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
// (a measurement aid for docs/perf-notes.md; it changes no result).
// Mamba-1 runs in_proj+conv and dt_proj+softplus+scan as fused per-thread regions, timed as one op each.
enum Op { kEmbed, kNorm, kInProj, kConv, kInProjConv, kXProj, kDtProjScan, kScan, kGateNorm, kOutProj, kHeadNorm,
          kHeadGemm, kHeadLse, kOps };
const char* const kOpNames[kOps] = {"embed", "rmsnorm", "in_proj", "conv", "in_proj+conv", "x_proj",
                                    "dt_proj+softplus+scan", "scan", "gate_norm", "out_proj+residual",
                                    "head_norm", "head_gemm", "head_logsoftmax"};

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

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(const ModelSpec& spec) : s_(spec), w_(spec), pool_(spec.threads), isa_(choose_gemm_isa()) {
        s_.tensors.clear();
        const int64_t E = s_.d_inner, N = s_.d_state, K = s_.d_conv;
        conv_ch_ = s_.family == 1 ? E : E + 2 * int64_t(s_.n_groups) * N;
        in_rows_ = s_.family == 1 ? 2 * E : 2 * E + 2 * int64_t(s_.n_groups) * N + s_.n_heads;
        conv_layer_ = (K - 1) * conv_ch_;
        ssm_layer_ = s_.family == 1 ? E * N : int64_t(s_.n_heads) * s_.head_dim * N;
        pack_matrices();
        emb_ = packed_.at("backbone.embedding.weight");
        norm_f_ = &w_.get("backbone.norm_f.weight");
        head_ = packed_.count("lm_head.weight") ? packed_.at("lm_head.weight") : emb_;
        for (int i = 0; i < s_.n_layer; i++) layers_.push_back(load_layer(i));
    }

    void score(const ScoreBatch& b, ScoreOutput& out) override {
        validate(b);
        run_score(b, out);
    }

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
        check_tokens(b.tokens, "step: tokens");
        for (int i = 0; i < n; i++)  // a slot never written starts from the zero state
            if (!live(slots[i])) allocate(slots[i]);
        ScoreOutput out;
        validate(b);
        run_score(b, out);
        std::memcpy(logits_out, out.logits.data(), out.logits.size() * sizeof(float));
    }

    void copy_state(int src, int dst) override {
        require_live(src, "copyState: source");
        check_slot_id(dst, "copyState: destination");
        if (src == dst) return;
        allocate(dst);
        std::memcpy(slots_[dst].get(), slots_[src].get(), state_floats() * sizeof(float));
    }

    void free_state(int slot) override {
        check_slot_id(slot, "freeState");
        if (size_t(slot) < slots_.size()) slots_[slot].reset();
    }

    void export_state(int slot, std::vector<float>& conv, std::vector<float>& ssm) override {
        require_live(slot, "exportState");
        conv.resize(conv_state_floats());
        ssm.resize(ssm_state_floats());
        transfer_state(slots_[slot].get(), conv.data(), ssm.data(), true);
    }

    void import_state(int slot, const float* conv, size_t n_conv, const float* ssm, size_t n_ssm) override {
        check_slot_id(slot, "importState");
        if (n_conv != conv_state_floats())
            throw std::runtime_error("importState: conv has " + std::to_string(n_conv) + " floats, expected " +
                                     std::to_string(conv_state_floats()));
        if (n_ssm != ssm_state_floats())
            throw std::runtime_error("importState: ssm has " + std::to_string(n_ssm) + " floats, expected " +
                                     std::to_string(ssm_state_floats()));
        for (size_t i = 0; i < n_conv; i++)
            if (!std::isfinite(conv[i])) throw std::runtime_error("importState: conv[" + std::to_string(i) + "] is not finite");
        for (size_t i = 0; i < n_ssm; i++)
            if (!std::isfinite(ssm[i])) throw std::runtime_error("importState: ssm[" + std::to_string(i) + "] is not finite");
        allocate(slot);
        transfer_state(slots_[slot].get(), const_cast<float*>(conv), const_cast<float*>(ssm), false);
    }

    size_t conv_state_floats() const override { return size_t(conv_layer_) * size_t(s_.n_layer); }
    size_t ssm_state_floats() const override { return size_t(ssm_layer_) * size_t(s_.n_layer); }
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
            if (s_.family == 1) {
                names.push_back(p + "x_proj.weight");
                names.push_back(p + "dt_proj.weight");
            }
            names.push_back(p + "out_proj.weight");
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
        l.norm = &w_.get(p + "norm.weight");
        l.in_proj = *packed_.at(p + "mixer.in_proj.weight");
        l.in_bias = s_.proj_bias ? vec("mixer.in_proj.bias") : nullptr;
        l.conv_bias = s_.conv_bias ? opt("mixer.conv1d.bias") : nullptr;
        l.out_proj = *packed_.at(p + "mixer.out_proj.weight");
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
    float* conv_of(int slot, int layer) { return slots_[slot].get() + layer * conv_layer_; }
    float* ssm_of(int slot, int layer) { return slots_[slot].get() + conv_state_floats() + layer * ssm_layer_; }

    static void check_slot_id(int slot, const std::string& what) {
        if (slot < 0 || slot >= kMaxSlots)
            throw std::runtime_error(what + ": slot id " + std::to_string(slot) + " is outside [0, " +
                                     std::to_string(kMaxSlots) + ")");
    }
    void require_live(int slot, const std::string& what) const {
        check_slot_id(slot, what);
        if (!live(slot)) throw std::runtime_error(what + ": " + slot_str(slot) + " holds no state");
    }
    // Makes the slot hold a (zeroed, if new) state buffer.
    void allocate(int slot) {
        if (size_t(slot) >= slots_.size()) slots_.resize(size_t(slot) + 1);
        if (!slots_[slot]) slots_[slot].reset(new float[state_floats()]());
    }
    void check_tokens(const std::vector<int32_t>& tokens, const std::string& what) const {
        for (size_t i = 0; i < tokens.size(); i++)
            if (tokens[i] < 0 || tokens[i] >= s_.vocab)
                throw std::runtime_error(what + "[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                                         " is outside [0, " + std::to_string(s_.vocab) + ")");
    }

    // Copies a slot's state to (export) or from (import) the exchange layout:
    // conv [layer][C][K-1] (oldest first), Mamba-1 ssm [layer][E][N], Mamba-2 ssm [layer][H][P][N].
    void transfer_state(float* slot, float* conv, float* ssm, bool to_exchange) {
        const int64_t C = conv_ch_, K1 = s_.d_conv - 1;
        for (int l = 0; l < s_.n_layer; l++) {
            float* in = slot + l * conv_layer_;  // [K-1][C]
            float* ex = conv + l * conv_layer_;  // [C][K-1]
            for (int64_t c = 0; c < C; c++)
                for (int64_t j = 0; j < K1; j++) {
                    float& a = in[j * C + c];
                    float& b = ex[c * K1 + j];
                    if (to_exchange) b = a; else a = b;
                }
            float* is = slot + conv_state_floats() + l * ssm_layer_;
            float* es = ssm + l * ssm_layer_;
            if (s_.family == 2) {
                if (to_exchange) std::memcpy(es, is, ssm_layer_ * sizeof(float));
                else std::memcpy(is, es, ssm_layer_ * sizeof(float));
                continue;
            }
            const int64_t E = s_.d_inner, N = s_.d_state;  // internal [N][E], exchange [E][N]
            for (int64_t e = 0; e < E; e++)
                for (int64_t n = 0; n < N; n++) {
                    float& a = is[n * E + e];
                    float& b = es[e * N + n];
                    if (to_exchange) b = a; else a = b;
                }
        }
    }

    // Every index of a batch is checked here, before any state is touched.
    void validate(const ScoreBatch& b) {
        const int64_t T = int64_t(b.tokens.size());
        if (T == 0) throw std::runtime_error("score: tokens is empty");
        check_tokens(b.tokens, "score: tokens");
        const size_t n_seg = b.seg_offsets.size() < 2 ? 0 : b.seg_offsets.size() - 1;
        if (n_seg == 0) throw std::runtime_error("score: segOffsets needs at least 2 entries (nSeg + 1)");
        if (b.seg_offsets[0] != 0) throw std::runtime_error("score: segOffsets[0] must be 0");
        if (b.seg_offsets.back() != T)
            throw std::runtime_error("score: the last segOffsets entry must equal tokens.length (" +
                                     std::to_string(T) + "), got " + std::to_string(b.seg_offsets.back()));
        for (size_t s = 0; s < n_seg; s++)
            if (b.seg_offsets[s + 1] <= b.seg_offsets[s])
                throw std::runtime_error("score: segOffsets must increase strictly (segment " + std::to_string(s) +
                                         " is empty or negative)");
        if (b.seg_init.size() != n_seg || b.seg_save.size() != n_seg)
            throw std::runtime_error("score: segInit and segSave need one entry per segment (" + std::to_string(n_seg) + ")");
        std::vector<int> will_live;  // slots saved by earlier segments of this batch
        for (size_t s = 0; s < n_seg; s++) {
            const std::string where = "score: segment " + std::to_string(s);
            const int init = b.seg_init[s], save = b.seg_save[s];
            if (init != -1) {
                check_slot_id(init, where + " segInit");
                if (!live(init) && std::find(will_live.begin(), will_live.end(), init) == will_live.end())
                    throw std::runtime_error(where + " starts from " + slot_str(init) + ", which holds no state");
            }
            if (save != -1) {
                check_slot_id(save, where + " segSave");
                will_live.push_back(save);
            }
        }
        if (b.score_rows.size() != b.score_targets.size())
            throw std::runtime_error("score: scoreRows and scoreTargets differ in length (" +
                                     std::to_string(b.score_rows.size()) + " vs " + std::to_string(b.score_targets.size()) + ")");
        auto check_rows = [&](const std::vector<int32_t>& rows, const char* what) {
            for (size_t i = 0; i < rows.size(); i++)
                if (rows[i] < 0 || rows[i] >= T)
                    throw std::runtime_error(std::string("score: ") + what + "[" + std::to_string(i) + "] = " +
                                             std::to_string(rows[i]) + " is outside [0, " + std::to_string(T) + ")");
        };
        check_rows(b.score_rows, "scoreRows");
        check_rows(b.logit_rows, "logitRows");
        check_tokens(b.score_targets, "score: scoreTargets");
    }

    void run_score(const ScoreBatch& b, ScoreOutput& out) {
        prof_.start();
        const int64_t T = int64_t(b.tokens.size()), D = s_.d_model, E = s_.d_inner, N = s_.d_state;
        const size_t n_seg = b.seg_offsets.size() - 1;
        for (size_t s = 0; s < n_seg; s++)
            if (b.seg_save[s] >= 0) allocate(b.seg_save[s]);

        h_.resize(size_t(T * D));
        u_.resize(size_t(T * D));
        xz_.resize(size_t(T * in_rows_));
        xc_.resize(size_t(T * conv_ch_));
        y_.resize(size_t(T * E));
        prof_.run(kEmbed, [&] { embed(b.tokens, h_.data()); });

        std::vector<SegmentState> segs(n_seg);
        for (int l = 0; l < s_.n_layer; l++) {
            const Layer& L = layers_[l];
            for (size_t s = 0; s < n_seg; s++) {
                const int init = b.seg_init[s], save = b.seg_save[s];
                segs[s] = {b.seg_offsets[s], b.seg_offsets[s + 1], init >= 0 ? conv_of(init, l) : nullptr,
                           save >= 0 ? conv_of(save, l) : nullptr, init >= 0 ? ssm_of(init, l) : nullptr,
                           save >= 0 ? ssm_of(save, l) : nullptr};
            }
            prof_.run(kNorm, [&] { rms_norm(h_.data(), D, T, D, L.norm->f32(), s_.norm_eps, u_.data(), D, pool_); });
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
        head(b, out);
        prof_.report(T);
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
    OpTimer prof_;
    int64_t conv_ch_, in_rows_, conv_layer_, ssm_layer_;
    std::unique_ptr<PackedArena> arena_;               // the packed GEMM weights
    std::vector<GemmWeight> weights_;                  // views into arena_, in packing order
    std::map<std::string, const GemmWeight*> packed_;  // canonical name → its packed view
    const GemmWeight* emb_;
    const Tensor* norm_f_;
    const GemmWeight* head_;
    std::vector<Layer> layers_;
    std::vector<std::unique_ptr<float[]>> slots_;  // slot id → [conv of all layers | ssm of all layers]
    std::vector<float> h_, u_, xz_, xc_, xdbl_, dt_, y_, hn_, logits_;  // scratch, reused across calls
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
