// cuda_backend.cu — the CUDA Backend: Mamba-1 / Mamba-2 forward over packed segments on one GPU.
//
// The model (mamba_ssm semantics; R is the fp32 residual stream of a token):
//   R = emb[token];  per layer: R += out_proj(mixer(RMSNorm(R)));  logits = head(RMSNorm_f(R))
//   Mamba-1 mixer:  [x, z] = in_proj(u);  x = SiLU(conv(x) + b);  [dt_low, B, C] = x_proj(x);  dt = dt_proj(dt_low)
//                   y = selective_scan(x, dt, A, B, C, D) · SiLU(z)                         (scan_kernels.cu)
//   Mamba-2 mixer:  [z, xBC, dt] = in_proj(u);  xBC = SiLU(conv(xBC) + b);  y = SSD(x, dt, A, B, C, D)
//                   y = RMSNorm_group(y ⊙ SiLU(z))                           (scan_kernels.cu, ssd_kernels.cu)
//   attention mixer (hybrid models, mamba_ssm's MHA; attention_kernels.cu):
//                   [q, k, v, up, gate] = in_proj(u);  [q, k, v] = conv([q, k, v]) + b (no SiLU);  rotary on q, k
//                   ctx = softmax(scale · q kᵀ, causal) v per head (query head h reads K/V head h / (H/Hkv))
//                   out_proj(cat(ctx, up · SiLU(gate)))
//   GatedMLP (every block when d_intermediate > 0): R += mixer output;  [a, g] = fc1(RMSNorm2(R));
//                   mix = fc2(a · SiLU(g))
// log p(next token) = log_softmax(logits)[target] (logits_kernels.cu).
//
// score(): embed all rows → per layer (add + RMSNorm → in_proj → conv + SiLU → [x_proj → dt_proj] →
// scan [→ gated norm] → out_proj) → norm_f + LM head on the distinct requested rows only → fused
// log-softmax + gather. GEMMs run on all packed rows at once (cuBLASLt, one fixed algorithm per shape);
// only conv and scan see segments. Segments that start from a state another segment of the same call
// saves are in a later "level", so a prefix and its branches fit in one call: the conv reads such a segment's
// history from its ancestors' rows (one launch for all levels), and the scan runs all levels in one launch whose
// blocks wait for their parent's state (ScanQueue), or one launch per level. step() is score() with one
// 1-token segment per slot, so both run the same arithmetic. States live in device memory in the
// exchange layout (conv [layer][C][K-1] oldest first over the layers with a conv; ssm [layer][E][N] or [layer][H][P][N]
// over the Mamba layers). An attention layer's state is the K and V rows of every earlier token: a chain of
// reference-counted device blocks shared between slots (KvBlock), each holding [row][attention layer][K | V].
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend.h"
#include "cuda_check.cuh"
#include "device_buffer.cuh"
#include "gemm.cuh"
#include "kernels.cuh"
#include "phase_clock.cuh"
#include "score_batch.h"
#include "weights.h"

namespace mamba {

namespace {

using cuda::ActOut;
using cuda::check_cuda;
using cuda::ConvChunk;
using cuda::DeviceBuffer;

constexpr int kHeadChunkRows = 2048;  // LM-head rows per GEMM (bounds the logits scratch: rows × vocab floats)

/** One layer's weights on the device. Matrices are GemmType elements; everything else fp32. */
struct DeviceLayer {
    bool attention = false;
    int mamba = -1, attn = -1;  // index among the Mamba layers (its ssm state) or among the attention layers (K/V)
    size_t conv_off = 0;        // its conv state within a whole-model conv state, in floats
    const float* norm = nullptr;
    const void* in_proj = nullptr;
    const float* in_bias = nullptr;
    const float* conv_w = nullptr;  // [C×K]
    const float* conv_bias = nullptr;
    const void* x_proj = nullptr;   // Mamba-1
    const void* dt_proj = nullptr;  // Mamba-1
    const float* dt_bias = nullptr; // Mamba-1 [E], Mamba-2 [H]
    const float* A = nullptr;       // −exp(A_log): Mamba-1 [E×N], Mamba-2 [H]
    const float* D = nullptr;
    const float* gate_norm = nullptr;  // Mamba-2 [E]
    const void* out_proj = nullptr;
    const float* out_bias = nullptr;
    const float* norm2 = nullptr;  // GatedMLP (d_intermediate > 0)
    const void* fc1 = nullptr;
    const void* fc2 = nullptr;
};

/** Device buffers of K/V blocks by size, reused before any cudaMalloc (a call may make thousands of blocks). */
class KvPool {
public:
    DeviceBuffer take(size_t bytes) {
        auto& spare = free_[bytes];
        if (spare.empty()) {
            try {
                return DeviceBuffer(bytes);
            } catch (const std::exception&) {
                (void)cudaGetLastError();  // clear the failed cudaMalloc, so the next launch check does not report it
                free_.clear();  // spare blocks of other sizes hold the memory: hand it back and try once more
                return DeviceBuffer(bytes);
            }
        }
        DeviceBuffer buf = std::move(spare.back());
        spare.pop_back();
        return buf;
    }
    void give(DeviceBuffer buf) {
        if (buf.bytes() != 0) free_[buf.bytes()].push_back(std::move(buf));
    }

private:
    std::map<size_t, std::vector<DeviceBuffer>> free_;
};

/**
 * A block of K/V rows of a state's chain: positions [start, start + rows) of the sequence, every attention layer,
 * laid out [row][attention layer][K heads | V heads] (the exchange layout). Shared between slots and child blocks
 * (std::shared_ptr counts them); its buffer goes back to the pool when the last holder lets go.
 */
struct KvBlock {
    std::shared_ptr<KvBlock> parent;  // the rows before `start` (null when start is 0)
    int64_t start = 0, rows = 0, capacity = 0;
    DeviceBuffer buf;
    KvPool* pool = nullptr;

    KvBlock() = default;
    KvBlock(const KvBlock&) = delete;
    KvBlock& operator=(const KvBlock&) = delete;
    ~KvBlock() {
        // Release a long chain of sole-owned ancestors one by one instead of recursively.
        std::shared_ptr<KvBlock> p = std::move(parent);
        while (p && p.use_count() == 1) {
            std::shared_ptr<KvBlock> next = std::move(p->parent);
            p.reset();
            p = std::move(next);
        }
        if (pool != nullptr) pool->give(std::move(buf));
    }
    float* row(int64_t pos, size_t row_floats) const { return buf.as<float>() + size_t(pos - start) * row_floats; }
};

/** A state's K/V rows: positions [0, length) of the chain ending at `tail` (a shared tail may hold more rows). */
struct KvChain {
    std::shared_ptr<KvBlock> tail;
    int64_t length = 0;
};

/** The chain's rows as (block, first position, rows) runs in position order. */
struct KvRun {
    const KvBlock* block;
    int64_t start, rows;
};
std::vector<KvRun> chain_runs(const KvChain& chain) {
    std::vector<KvRun> runs;
    int64_t limit = chain.length;
    for (const KvBlock* b = chain.tail.get(); b != nullptr && limit > 0; b = b->parent.get()) {
        if (limit > b->start) runs.push_back(KvRun{b, b->start, limit - b->start});
        limit = b->start;
    }
    std::reverse(runs.begin(), runs.end());
    return runs;
}

/** A whole-model recurrent state in device memory. */
struct SlotState {
    DeviceBuffer conv;
    DeviceBuffer ssm;
    KvChain kv;
};

/** How one scoring call's segments map onto state buffers and levels (built on the host). */
struct CallPlan {
    std::vector<int32_t> start, length, level;
    std::vector<int32_t> order, parent_pos;  // segments by level, and the position of each one's in-call parent
    std::vector<int32_t> history;            // [n × kMaxConvHistory], see cuda::ConvHistory
    std::vector<float*> init_conv, init_ssm, save_conv, save_ssm, history_state;
    std::vector<std::pair<int, std::unique_ptr<SlotState>>> commits;  // temp buffers → slot, in segment order
    int levels = 0;
    std::vector<int32_t> history_attn;  // the attention conv's history when its taps differ from d_conv
    // Attention: each segment's first position and the chain it starts from; the chain each saving segment leaves
    // (applied to its slot after the call); where each row's K|V goes.
    std::vector<int32_t> pos0;
    std::vector<KvChain> kv_init, kv_saved;
    std::vector<float*> kv_save_row;  // [T]
    std::vector<SlotState*> save_state;  // per segment: the state its save lands in (its slot's, or a fresh one)
};

/** The scratch buffers of one kind of call (grown on demand, never shrunk). */
struct Scratch {
    DeviceBuffer queue_buf_, ints_buf_, ptrs_buf_, resid_buf_, mix_buf_, u_buf_, xz_buf_, xc_buf_, xc_act_buf_, dbc_buf_, dt_buf_,
        dt_low_buf_, y_buf_, y_act_buf_, head_ints_buf_, logprob_buf_, greedy_buf_, hn_buf_, logits_buf_, attn_ints_buf_,
        attn_hist_buf_, attn_ptrs_buf_, qkv_buf_, ctx_buf_, fc1_buf_, mlp_act_buf_, skinny_ws_buf_;
    unsigned epoch = 0;  // counts reallocations: a captured step graph holds the old addresses
};

/**
 * step() for one batch size n as a CUDA graph: the first call with a new n runs eagerly (sizing every step
 * scratch buffer), the next one with the same n captures the kernels and later ones replay them. What changes
 * between calls (tokens, the per-segment state pointers) lives in device tables uploaded before each launch,
 * so the graph's kernel arguments stay valid; a different n drops the graph.
 */
class StepGraph {
public:
    StepGraph() = default;
    StepGraph(const StepGraph&) = delete;
    StepGraph& operator=(const StepGraph&) = delete;
    ~StepGraph() { drop(); }

    /** `epoch`: the step scratch's reallocation count; a graph made before a reallocation is stale. */
    bool ready(int n, unsigned epoch) const { return exec_ != nullptr && n_ == n && epoch_ == epoch; }
    bool warmed(int n, unsigned epoch) const { return warm_n_ == n && warm_epoch_ == epoch; }
    void warm(int n, unsigned epoch) {
        drop();
        warm_n_ = n;
        warm_epoch_ = epoch;
    }
    void drop() noexcept {
        if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
        exec_ = nullptr;
        n_ = -1;
    }
    /** Captures what `enqueue` queues on `stream` into the graph for batch size n. */
    template <typename F>
    void capture(int n, unsigned epoch, cudaStream_t stream, F&& enqueue) {
        drop();
        check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "step graph: begin capture");
        cudaGraph_t graph = nullptr;
        try {
            enqueue();
        } catch (...) {
            cudaStreamEndCapture(stream, &graph);
            if (graph != nullptr) cudaGraphDestroy(graph);
            warm_n_ = -1;
            throw;
        }
        check_cuda(cudaStreamEndCapture(stream, &graph), "step graph: end capture");
        const cudaError_t made = cudaGraphInstantiate(&exec_, graph, 0);
        cudaGraphDestroy(graph);
        if (made != cudaSuccess) {
            exec_ = nullptr;
            check_cuda(made, "step graph: instantiate");
        }
        n_ = n;
        epoch_ = epoch;
    }
    void launch(cudaStream_t stream) const { check_cuda(cudaGraphLaunch(exec_, stream), "step graph: launch"); }

private:
    cudaGraphExec_t exec_ = nullptr;
    int n_ = -1, warm_n_ = -1;
    unsigned epoch_ = 0, warm_epoch_ = 0;
};

std::string slot_str(int slot) { return "slot " + std::to_string(slot); }

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(const ModelSpec& spec)
        : s_(spec), stream_(make_stream()),
          gemm_(spec.weight_type == WeightType::BF16 ? cuda::GemmType::BF16 : cuda::GemmType::F32, stream_) {
        s_.tensors.clear();
        const int64_t E = s_.d_inner, N = s_.d_state, G = s_.n_groups;
        for (int l = 0; l < s_.n_layer; l++) {
            const bool attn = s_.layer_kinds.size() == size_t(s_.n_layer) && s_.layer_kinds[size_t(l)] == kAttentionLayer;
            (attn ? n_attn_ : n_mamba_)++;
        }
        if (n_mamba_ > 0 && (s_.d_conv < 2 || s_.d_conv > 4)) {
            throw std::runtime_error("spec.dConv must be 2, 3 or 4 on the cuda device, got " + std::to_string(s_.d_conv));
        }
        conv_ch_ = s_.family == 1 ? E : E + 2 * G * N;
        in_rows_ = s_.family == 1 ? 2 * E : 2 * E + 2 * G * N + s_.n_heads;
        conv_layer_ = conv_ch_ * (s_.d_conv - 1);
        ssm_layer_ = s_.family == 1 ? E * N : int64_t(s_.n_heads) * s_.head_dim * N;
        if (n_attn_ > 0) {
            a_ = attention_dims(s_);
            if (a_.K == 1 || a_.K > 4) {
                throw std::runtime_error("spec.attnConv must be 0, 2, 3 or 4 on the cuda device, got " + std::to_string(a_.K));
            }
            cuda::check_attention_shape(int(a_.hd));
        }
        bf16_ = s_.weight_type == WeightType::BF16;
        cudaDeviceProp prop{};
        check_cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
        isa_ = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
        device_memory_ = prop.totalGlobalMem;
        upload_weights(spec);
    }

    ~CudaBackend() override {
        slots_.clear();
        spare_.clear();
        if (stream_ != nullptr) cudaStreamDestroy(stream_);
    }

    void score(const ScoreBatch& b, ScoreOutput& out) override {  // b was checked by validate_score_batch (addon.cc)
        check_cuda(cudaSetDevice(0), "cudaSetDevice");
        run(b, out);
    }

    void step(const int32_t* slots, const int32_t* tokens, int n, float* logits_out) override {
        check_cuda(cudaSetDevice(0), "cudaSetDevice");
        if (n <= 0) throw std::runtime_error("step: expected at least one slot");
        ScoreBatch b;
        std::vector<int32_t> seen;
        for (int i = 0; i < n; i++) {
            check_slot_id(slots[i], "step: slots[" + std::to_string(i) + "]");
            if (std::find(seen.begin(), seen.end(), slots[i]) != seen.end()) {
                throw std::runtime_error("step: slot " + std::to_string(slots[i]) + " appears twice");
            }
            seen.push_back(slots[i]);
            b.tokens.push_back(tokens[i]);
            b.seg_offsets.push_back(i);
            b.seg_init.push_back(live(slots[i]) ? slots[i] : -1);  // a slot never written starts from zeros
            b.seg_save.push_back(slots[i]);
            b.logit_rows.push_back(i);
        }
        b.seg_offsets.push_back(n);
        check_tokens(b.tokens, s_.vocab, "step: tokens");
        validate_score_batch(b, s_.vocab, [this](int slot) { return live(slot); });
        struct StepMode {
            bool& flag;
            explicit StepMode(bool& f) : flag(f) { flag = true; }
            ~StepMode() { flag = false; }
        } step_mode(step_mode_);
        if (n > kHeadChunkRows || cuda::PhaseClock::enabled()) {  // the profiler's events need eager launches
            graph_.drop();
            ScoreOutput out;
            run(b, out);
            std::copy(out.logits.begin(), out.logits.end(), logits_out);
            return;
        }
        // Same arithmetic as run() + head(): every row is a logit row, in order, so norm_f + the LM head run on
        // rows 0..n-1 directly; only the queueing differs (eager, captured, or replayed).
        sc_ = &step_scratch_;
        prepare_skinny(n);
        Call c = upload_call(b);
        const int D = s_.d_model, V = s_.vocab;
        void* hn = scratch<char>(sc_->hn_buf_, size_t(n) * D * act_bytes());
        float* logits = scratch<float>(sc_->logits_buf_, size_t(n) * V);
        auto enqueue = [&] {
            forward_layers(c);
            cuda::launch_add_rmsnorm(nullptr, n, sc_->resid_buf_.as<float>(), sc_->mix_buf_.as<float>(), norm_f_, D,
                                     s_.norm_eps, ActOut{hn, bf16_}, stream_);
            project(head_, V, D, hn, D, n, logits, V);
        };
        if (graph_.ready(n, sc_->epoch)) {
            graph_.launch(stream_);
        } else if (graph_.warmed(n, sc_->epoch)) {
            graph_.capture(n, sc_->epoch, stream_, enqueue);
            graph_.launch(stream_);
        } else {
            enqueue();  // sizes every scratch buffer this n needs: the epoch after it is the one to capture at
            graph_.warm(n, sc_->epoch);
        }
        check_cuda(cudaMemcpyAsync(logits_out, logits, size_t(n) * V * sizeof(float), cudaMemcpyDeviceToHost, stream_),
                   "download logits");
        check_cuda(cudaStreamSynchronize(stream_), "step");
        finish_call(c.p);
    }

    void copy_state(int src, int dst) override {
        check_cuda(cudaSetDevice(0), "cudaSetDevice");
        require_live(src, "copyState: source");
        check_slot_id(dst, "copyState: destination");
        if (src == dst) return;
        SlotState& to = allocate(dst);
        const SlotState& from = *slots_.at(src);
        copy_device(to.conv.data(), from.conv.data(), conv_bytes(), "copyState conv");
        copy_device(to.ssm.data(), from.ssm.data(), ssm_bytes(), "copyState ssm");
        to.kv = from.kv;  // the K/V chain is shared, never copied
        check_cuda(cudaStreamSynchronize(stream_), "copyState");
    }

    void free_state(int slot) override {
        check_slot_id(slot, "freeState");
        auto found = slots_.find(slot);
        if (found == slots_.end()) return;
        retire(std::move(found->second));
        slots_.erase(found);
    }

    bool holds_state(int slot) const override { return live(slot); }

    void export_state(int slot, StateData& out) override {
        check_cuda(cudaSetDevice(0), "cudaSetDevice");
        require_live(slot, "exportState");
        out.conv.resize(conv_state_floats());
        out.ssm.resize(ssm_state_floats());
        const SlotState& st = *slots_.at(slot);
        if (conv_bytes() > 0) {
            check_cuda(cudaMemcpy(out.conv.data(), st.conv.data(), conv_bytes(), cudaMemcpyDeviceToHost), "exportState conv");
        }
        if (ssm_bytes() > 0) {
            check_cuda(cudaMemcpy(out.ssm.data(), st.ssm.data(), ssm_bytes(), cudaMemcpyDeviceToHost), "exportState ssm");
        }
        // kv [token][attention layer][K heads | V heads]: each block's rows are already in that layout.
        const size_t per_token = kv_floats_per_token();
        out.kv.resize(size_t(st.kv.length) * per_token);
        for (const KvRun& run : chain_runs(st.kv)) {
            check_cuda(cudaMemcpy(out.kv.data() + size_t(run.start) * per_token, run.block->row(run.start, per_token),
                                  size_t(run.rows) * per_token * sizeof(float), cudaMemcpyDeviceToHost),
                       "exportState kv");
        }
    }

    void import_state(int slot, const StateData& in) override {
        check_cuda(cudaSetDevice(0), "cudaSetDevice");
        check_slot_id(slot, "importState");
        auto check_size = [](const std::vector<float>& v, size_t expected, const char* what) {
            if (v.size() != expected) {
                throw std::runtime_error(std::string("importState: ") + what + " has " + std::to_string(v.size()) +
                                         " floats, expected " + std::to_string(expected));
            }
        };
        check_size(in.conv, conv_state_floats(), "conv");
        check_size(in.ssm, ssm_state_floats(), "ssm");
        const size_t per_token = kv_floats_per_token();
        if (per_token == 0 ? !in.kv.empty() : in.kv.size() % per_token != 0) {
            throw std::runtime_error("importState: kv has " + std::to_string(in.kv.size()) + " floats, expected " +
                                     (per_token == 0 ? std::string("none (the model has no attention layers)")
                                                     : "a multiple of kvFloatsPerToken = " + std::to_string(per_token)));
        }
        auto check_finite = [](const std::vector<float>& v, const char* what) {
            for (size_t i = 0; i < v.size(); i++) {
                if (!std::isfinite(v[i])) {
                    throw std::runtime_error(std::string("importState: ") + what + "[" + std::to_string(i) + "] is not finite");
                }
            }
        };
        check_finite(in.conv, "conv");
        check_finite(in.ssm, "ssm");
        check_finite(in.kv, "kv");
        SlotState& st = allocate(slot);
        check_cuda(cudaStreamSynchronize(stream_), "importState");  // a new state's zeroing runs first (stream_ is not the copies')
        if (conv_bytes() > 0) {
            check_cuda(cudaMemcpy(st.conv.data(), in.conv.data(), conv_bytes(), cudaMemcpyHostToDevice), "importState conv");
        }
        if (ssm_bytes() > 0) {
            check_cuda(cudaMemcpy(st.ssm.data(), in.ssm.data(), ssm_bytes(), cudaMemcpyHostToDevice), "importState ssm");
        }
        st.kv = KvChain{};
        const int64_t rows = per_token == 0 ? 0 : int64_t(in.kv.size() / per_token);
        if (rows > 0) {
            auto block = new_block(nullptr, 0, rows);
            block->rows = rows;
            check_cuda(cudaMemcpy(block->buf.data(), in.kv.data(), in.kv.size() * sizeof(float), cudaMemcpyHostToDevice),
                       "importState kv");
            st.kv = KvChain{std::move(block), rows};
        }
    }

    size_t conv_state_floats() const override { return size_t(conv_total_); }
    size_t ssm_state_floats() const override { return size_t(ssm_layer_) * size_t(n_mamba_); }
    size_t kv_floats_per_token() const override { return n_attn_ == 0 ? 0 : size_t(a_.kv_row) * size_t(n_attn_); }
    size_t weight_bytes() const override { return weight_bytes_; }
    size_t device_memory_bytes() const override { return device_memory_; }
    std::string isa() const override { return isa_; }

private:
    static cudaStream_t make_stream() {
        check_cuda(cudaSetDevice(0), "cudaSetDevice (no usable CUDA device?)");
        cudaStream_t stream = nullptr;
        check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
        return stream;
    }

    size_t conv_bytes() const { return conv_state_floats() * sizeof(float); }
    size_t ssm_bytes() const { return ssm_state_floats() * sizeof(float); }
    size_t act_bytes() const { return bf16_ ? 2 : 4; }

    /**
     * y = x·Wᵀ. score(): cuBLASLt, one algorithm per weight shape whatever T (gemm.cuh). step() with bf16 weights: the
     * skinny tensor-core GEMM (skinny_gemm.cu) on blocks of at most 64 rows, at the memory bandwidth instead of the
     * prefill algorithm's few percent of it. Either way a row's result does not depend on the batch; with bf16 weights
     * step() and score() agree to rounding, with fp32 weights bit for bit.
     */
    void project(const void* w, int N, int K, const void* x, int ldx, int T, float* y, int ldy) {
        if (step_mode_ && bf16_ && cuda::skinny_gemm_fits(K, ldx, w, x)) {
            for (int r0 = 0; r0 < T; r0 += cuda::kMaxSkinnyRows) {
                const int rows = std::min(cuda::kMaxSkinnyRows, T - r0);
                cuda::launch_skinny_gemm(w, N, K, static_cast<const char*>(x) + size_t(r0) * size_t(ldx) * 2, ldx, rows,
                                         y + size_t(r0) * size_t(ldy), ldy, skinny_ws_, stream_);
            }
            return;
        }
        gemm_.run(w, N, K, x, ldx, T, y, ldy);
    }

    /** step(): the skinny GEMM's workspace for blocks of `T` rows, sized before any kernel is queued. */
    void prepare_skinny(int T) {
        if (!bf16_) return;
        size_t per_row = 0;
        auto need = [&](int64_t N, int64_t K) {
            const cuda::SkinnyPlan plan = cuda::skinny_gemm_plan(int(N), int(K));
            if (plan.splits > 1) per_row = std::max(per_row, size_t(plan.splits) * size_t(N));
        };
        need(s_.vocab, s_.d_model);
        if (n_mamba_ > 0) {
            need(in_rows_, s_.d_model);
            need(s_.d_model, s_.d_inner);
            if (s_.family == 1) {
                need(s_.dt_rank + 2 * s_.d_state, s_.d_inner);
                need(s_.d_inner, s_.dt_rank);
            }
        }
        if (n_attn_ > 0) {
            need(a_.in_rows, s_.d_model);
            need(s_.d_model, a_.ctx);
        }
        if (s_.d_intermediate > 0) {
            need(2 * int64_t(s_.d_intermediate), s_.d_model);
            need(s_.d_model, s_.d_intermediate);
        }
        skinny_ws_ = scratch<float>(sc_->skinny_ws_buf_, size_t(std::min(T, cuda::kMaxSkinnyRows)) * per_row);
    }

    void copy_device(void* dst, const void* src, size_t bytes, const char* what) {
        if (bytes > 0) check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), what);
    }

    /**
     * A K/V block for positions from `start`, room for `capacity` rows rounded up to a multiple of 16 (close to what
     * the state budget counts; a block that step() grows doubles its room then).
     */
    std::shared_ptr<KvBlock> new_block(std::shared_ptr<KvBlock> parent, int64_t start, int64_t capacity) {
        const int64_t cap = std::max<int64_t>(16, (capacity + 15) / 16 * 16);
        auto b = std::make_shared<KvBlock>();
        b->parent = std::move(parent);
        b->start = start;
        b->capacity = cap;
        b->pool = &kv_pool_;
        try {
            b->buf = kv_pool_.take(size_t(cap) * kv_floats_per_token() * sizeof(float));
        } catch (const std::runtime_error& e) {
            b->pool = nullptr;
            throw std::runtime_error(std::string(e.what()) + " (allocating K/V rows for " + std::to_string(capacity) +
                                     " tokens; --model_args state_budget_gb=N keeps fewer states on the GPU)");
        }
        return b;
    }

    /** Mamba-2 in score(): the chunked SSD on tensor cores for bf16 weights at supported head sizes. */
    bool use_chunked_ssd() const {
        return bf16_ && !step_mode_ && cuda::mamba2_ssd_chunk_length(s_.head_dim, s_.d_state) > 0;
    }
    bool live(int slot) const { return slots_.count(slot) != 0; }

    void require_live(int slot, const std::string& what) const {
        check_slot_id(slot, what);
        if (!live(slot)) throw std::runtime_error(what + ": " + slot_str(slot) + " holds no state");
    }

    /**
     * Buffers for one whole-model state: a retired one when there is one, else fresh cudaMalloc's. (A run
     * creates and frees tens of thousands of states; cudaMalloc/cudaFree each time cost more than the compute.)
     */
    std::unique_ptr<SlotState> new_state() {
        if (!spare_.empty()) {
            auto st = std::move(spare_.back());
            spare_.pop_back();
            return st;
        }
        auto st = std::make_unique<SlotState>();
        try {
            st->conv.reserve(conv_bytes());
            st->ssm.reserve(ssm_bytes());
        } catch (const std::runtime_error& e) {
            throw std::runtime_error(std::string(e.what()) + " (allocating state slot " + std::to_string(slots_.size() + 1) +
                                     " of " + std::to_string((conv_bytes() + ssm_bytes()) >> 20) +
                                     " MiB; --model_args state_budget_gb=N keeps fewer states on the GPU)");
        }
        return st;
    }

    /** Keeps a state's buffers for reuse (all work queued on them has finished: every call synchronises). */
    void retire(std::unique_ptr<SlotState> st) {
        if (st == nullptr) return;
        st->kv = KvChain{};  // drops this state's reference to its K/V chain
        spare_.push_back(std::move(st));
    }

    /** Replaces the slot's state with `st`, retiring the old one. */
    void commit(int slot, std::unique_ptr<SlotState> st) {
        auto& cur = slots_[slot];
        retire(std::move(cur));
        cur = std::move(st);
    }

    /** The slot's buffers, created zeroed when new. */
    SlotState& allocate(int slot) {
        auto found = slots_.find(slot);
        if (found != slots_.end()) return *found->second;
        auto st = new_state();
        if (conv_bytes() > 0) check_cuda(cudaMemsetAsync(st->conv.data(), 0, conv_bytes(), stream_), "cudaMemset state");
        if (ssm_bytes() > 0) check_cuda(cudaMemsetAsync(st->ssm.data(), 0, ssm_bytes(), stream_), "cudaMemset state");
        return *slots_.emplace(slot, std::move(st)).first->second;
    }

    // ---- weights -------------------------------------------------------------------------------

    const void* upload(const void* host, size_t bytes) {
        DeviceBuffer buf(bytes);
        check_cuda(cudaMemcpy(buf.data(), host, bytes, cudaMemcpyHostToDevice), "upload weights");
        weight_bytes_ += bytes;
        weights_.push_back(std::move(buf));
        return weights_.back().data();
    }
    const void* upload_tensor(const Tensor& t) { return upload(t.data, t.bytes()); }
    const float* upload_vec(const std::vector<float>& v) {
        return static_cast<const float*>(upload(v.data(), v.size() * sizeof(float)));
    }

    void upload_weights(const ModelSpec& spec) {
        const WeightStore w(spec);  // mmap + validation; host copies go away when this returns
        auto matrix = [&](const std::string& name) {
            const Tensor& t = w.get(name);
            const bool is_bf16 = t.dtype == DType::BF16;
            if (is_bf16 != bf16_) throw std::runtime_error("tensor " + name + " is not in the GEMM element type");
            return upload_tensor(t);
        };
        auto vec = [&](const std::string& name) { return static_cast<const float*>(upload_tensor(w.get(name))); };
        auto opt = [&](const std::string& name) { return w.has(name) ? vec(name) : nullptr; };

        emb_ = matrix("backbone.embedding.weight");
        norm_f_ = vec("backbone.norm_f.weight");
        head_ = (!s_.tie_embeddings && w.has("lm_head.weight")) ? matrix("lm_head.weight") : emb_;
        int mamba = 0, attn = 0;
        int64_t conv_at = 0;
        for (int i = 0; i < s_.n_layer; i++) {
            const std::string p = "backbone.layers." + std::to_string(i) + ".";
            DeviceLayer l;
            l.attention = n_attn_ > 0 && s_.layer_kinds[size_t(i)] == kAttentionLayer;
            l.conv_off = size_t(conv_at);
            l.norm = vec(p + "norm.weight");
            if (s_.d_intermediate > 0) {
                l.norm2 = vec(p + "norm2.weight");
                l.fc1 = matrix(p + "mlp.fc1.weight");
                l.fc2 = matrix(p + "mlp.fc2.weight");
            }
            if (l.attention) {  // mamba_ssm's MHA: in_proj [q|k|v|up|gate], optional conv + bias, out_proj
                l.attn = attn++;
                l.in_proj = matrix(p + "mixer.in_proj.weight");
                l.in_bias = opt(p + "mixer.in_proj.bias");
                if (a_.K > 0) {
                    l.conv_w = vec(p + "mixer.conv1d.weight");
                    l.conv_bias = vec(p + "mixer.conv1d.bias");
                    conv_at += (a_.K - 1) * a_.qkv;
                }
                l.out_proj = matrix(p + "mixer.out_proj.weight");
                l.out_bias = opt(p + "mixer.out_proj.bias");
                layers_.push_back(l);
                continue;
            }
            l.mamba = mamba++;
            conv_at += conv_layer_;
            l.in_proj = matrix(p + "mixer.in_proj.weight");
            l.in_bias = opt(p + "mixer.in_proj.bias");
            l.conv_w = vec(p + "mixer.conv1d.weight");
            l.conv_bias = opt(p + "mixer.conv1d.bias");
            l.D = vec(p + "mixer.D");
            l.out_proj = matrix(p + "mixer.out_proj.weight");
            l.out_bias = opt(p + "mixer.out_proj.bias");
            const Tensor& a_log = w.get(p + "mixer.A_log");
            std::vector<float> A(size_t(a_log.rows * a_log.cols));
            for (size_t k = 0; k < A.size(); k++) A[k] = -std::exp(a_log.f32()[k]);
            l.A = upload_vec(A);
            if (s_.family == 1) {
                l.x_proj = matrix(p + "mixer.x_proj.weight");
                l.dt_proj = matrix(p + "mixer.dt_proj.weight");
                l.dt_bias = vec(p + "mixer.dt_proj.bias");
            } else {
                l.dt_bias = vec(p + "mixer.dt_bias");
                l.gate_norm = vec(p + "mixer.norm.weight");
            }
            layers_.push_back(l);
        }
        conv_total_ = conv_at;
    }

    // ---- planning (the batch was checked by validate_score_batch) -----------------------------

    /**
     * Resolves where each segment reads and writes its state. A segment saves straight into its slot when
     * it is the slot's only saver in this call and no other segment reads the slot's old state; otherwise it
     * saves into a fresh buffer that replaces the slot's after the call (later savers win).
     */
    CallPlan plan(const ScoreBatch& b) {
        const size_t n = b.seg_offsets.size() - 1;
        CallPlan p;
        p.start.resize(n);
        p.length.resize(n);
        p.level.assign(n, 0);
        p.init_conv.assign(n, nullptr);
        p.init_ssm.assign(n, nullptr);
        p.save_conv.assign(n, nullptr);
        p.save_ssm.assign(n, nullptr);
        std::map<int, int> savers;                   // slot → how many segments save it
        std::map<int, std::vector<int>> old_readers;  // slot → segments reading its pre-call state
        std::map<int, int> last_saver;
        std::vector<int> source(n, -1);  // earlier segment whose saved state this one starts from
        for (size_t s = 0; s < n; s++) {
            p.start[s] = b.seg_offsets[s];
            p.length[s] = b.seg_offsets[s + 1] - b.seg_offsets[s];
            const int init = b.seg_init[s], save = b.seg_save[s];
            if (init >= 0) {
                auto it = last_saver.find(init);
                if (it != last_saver.end()) {
                    source[s] = it->second;
                    p.level[s] = p.level[size_t(it->second)] + 1;
                } else {
                    old_readers[init].push_back(int(s));
                }
            }
            if (save >= 0) {
                savers[save]++;
                last_saver[save] = int(s);
            }
            p.levels = std::max(p.levels, p.level[s] + 1);
        }
        std::vector<char> has_child(n, 0);
        for (size_t s = 0; s < n; s++) {
            if (source[s] >= 0) has_child[size_t(source[s])] = 1;
        }
        const int K = max_conv_taps();
        p.save_state.assign(n, nullptr);
        for (size_t s = 0; s < n; s++) {
            const int save = b.seg_save[s];
            if (save < 0) continue;
            // Save in place only where no other segment of the call reads the old state: the conv and scan run
            // every level in one launch. A segment may overwrite the state it starts from when one conv thread
            // reads and writes it (one chunk) and no in-call child reaches back into it (history of K−1 rows).
            const auto& readers = old_readers[save];
            const bool self_only = readers.size() == 1 && readers[0] == int(s);
            const bool self_safe = p.length[s] <= cuda::kConvChunkRows && (p.length[s] >= K - 1 || !has_child[s]);
            const bool direct = savers[save] == 1 && (readers.empty() || (self_only && self_safe));
            if (direct) {
                SlotState& st = allocate(save);
                p.save_conv[s] = st.conv.as<float>();
                p.save_ssm[s] = st.ssm.as<float>();
                p.save_state[s] = &st;
            } else {
                auto st = new_state();
                p.save_conv[s] = st->conv.as<float>();
                p.save_ssm[s] = st->ssm.as<float>();
                p.save_state[s] = st.get();
                p.commits.emplace_back(save, std::move(st));
            }
        }
        for (size_t s = 0; s < n; s++) {
            const int init = b.seg_init[s];
            if (init < 0) continue;
            if (source[s] >= 0) {
                p.init_conv[s] = p.save_conv[size_t(source[s])];
                p.init_ssm[s] = p.save_ssm[size_t(source[s])];
            } else {
                const SlotState& st = *slots_.at(init);
                p.init_conv[s] = st.conv.as<float>();
                p.init_ssm[s] = st.ssm.as<float>();
            }
        }
        p.history_state.assign(n, nullptr);
        if (n_mamba_ > 0) plan_history(p, source, s_.d_conv, p.history);
        if (n_attn_ > 0 && a_.K > 0) plan_history(p, source, int(a_.K), n_mamba_ > 0 && a_.K == s_.d_conv ? p.history : p.history_attn);
        plan_order(p, source);
        if (n_attn_ > 0) plan_kv(b, p, source);
        return p;
    }

    /** The most taps of any conv of the model (Mamba d_conv, the attention conv). */
    int max_conv_taps() const {
        int K = n_mamba_ > 0 ? s_.d_conv : 0;
        if (n_attn_ > 0) K = std::max(K, int(a_.K));
        return K;
    }

    /**
     * Each segment's conv history (cuda::ConvHistory) for a conv of K taps: the last K−1 inputs of its chain of in-call
     * ancestors. history_state (the saved state a chain starts from) is the same for every K.
     */
    void plan_history(CallPlan& p, const std::vector<int>& source, int K, std::vector<int32_t>& history) const {
        const size_t n = p.start.size();
        history.assign(n * cuda::kMaxConvHistory, cuda::kHistoryZero);
        for (size_t s = 0; s < n; s++) {
            for (int j = 0; j < K - 1; j++) {
                int cur = int(s), back = (K - 1) - j;  // the input `back` rows before segment cur's first row
                int32_t code = cuda::kHistoryZero;
                for (;;) {
                    const int par = source[size_t(cur)];
                    if (par < 0) {
                        if (p.init_conv[size_t(cur)] != nullptr) {
                            code = cuda::kHistoryState - ((K - 1) - back);
                            p.history_state[s] = p.init_conv[size_t(cur)];
                        }
                        break;
                    }
                    if (back <= p.length[size_t(par)]) {
                        code = p.start[size_t(par)] + p.length[size_t(par)] - back;
                        break;
                    }
                    back -= p.length[size_t(par)];
                    cur = par;
                }
                history[s * cuda::kMaxConvHistory + size_t(j)] = code;
            }
        }
    }

    /**
     * The K/V side of a call: each segment's first position (its starting chain's length) and, for a saving segment,
     * where its rows go. Saving makes a block of the segment's own rows whose parent is the chain it started from;
     * in step() a slot that alone holds its chain's tail grows that block in place instead (a row per step).
     */
    void plan_kv(const ScoreBatch& b, CallPlan& p, const std::vector<int>& source) {
        const size_t n = p.start.size();
        const size_t per_token = kv_floats_per_token();
        p.pos0.assign(n, 0);
        p.kv_init.assign(n, KvChain{});
        p.kv_saved.assign(n, KvChain{});
        p.kv_save_row.assign(b.tokens.size(), nullptr);
        for (size_t s = 0; s < n; s++) {
            const int init = b.seg_init[s], save = b.seg_save[s];
            const int64_t len = p.length[s];
            const bool grows = step_mode_ && init >= 0 && source[s] < 0 && save == init && grow_in_place(slots_.at(init)->kv, len);
            const KvChain from = init < 0 ? KvChain{} : source[s] >= 0 ? p.kv_saved[size_t(source[s])] : slots_.at(init)->kv;
            if (from.length + len > (int64_t(1) << 30)) throw std::runtime_error("score: a sequence is longer than 2^30 tokens");
            p.pos0[s] = int32_t(from.length);
            p.kv_init[s] = from;
            if (save < 0) continue;
            std::shared_ptr<KvBlock> block = grows ? from.tail : new_block(from.tail, from.length, len);
            for (int64_t r = 0; r < len; r++) p.kv_save_row[size_t(p.start[s] + r)] = block->row(from.length + r, per_token);
            block->rows = from.length + len - block->start;
            p.kv_saved[s] = KvChain{std::move(block), from.length + len};
        }
    }

    /**
     * step(): whether the chain's tail can take `rows` more rows in place: this state alone holds it and uses all of
     * its rows (else the step makes a new block). Makes the room: a full tail moves to a buffer twice as large.
     */
    bool grow_in_place(KvChain& chain, int64_t rows) {
        KvBlock* tail = chain.tail.get();
        if (tail == nullptr || chain.tail.use_count() != 1 || tail->rows != chain.length - tail->start) return false;
        const int64_t need = tail->rows + rows;
        if (need <= tail->capacity) return true;
        int64_t cap = tail->capacity;
        while (cap < need) cap *= 2;
        const size_t per_token = kv_floats_per_token();
        DeviceBuffer bigger = kv_pool_.take(size_t(cap) * per_token * sizeof(float));
        copy_device(bigger.data(), tail->buf.data(), size_t(tail->rows) * per_token * sizeof(float), "grow K/V block");
        kv_pool_.give(std::move(tail->buf));  // later work on the stream is queued after this copy
        tail->buf = std::move(bigger);
        tail->capacity = cap;
        return true;
    }

    /** After a call has finished: saved K/V chains into their states, then fresh states into their slots. */
    void finish_call(CallPlan& p) {
        for (size_t s = 0; s < p.kv_saved.size(); s++) {
            if (p.save_state[s] != nullptr) p.save_state[s]->kv = std::move(p.kv_saved[s]);
        }
        for (auto& [slot, st] : p.commits) commit(slot, std::move(st));
    }

    /** Segments by level (stable), and where each one's in-call parent sits in that order (cuda::ScanQueue). */
    static void plan_order(CallPlan& p, const std::vector<int>& source) {
        const size_t n = p.start.size();
        p.order.resize(n);
        for (size_t s = 0; s < n; s++) p.order[s] = int32_t(s);
        std::stable_sort(p.order.begin(), p.order.end(), [&](int32_t a, int32_t b) { return p.level[size_t(a)] < p.level[size_t(b)]; });
        std::vector<int32_t> pos_of(n);
        for (size_t i = 0; i < n; i++) pos_of[size_t(p.order[i])] = int32_t(i);
        p.parent_pos.resize(n);
        for (size_t i = 0; i < n; i++) {
            const int src = source[size_t(p.order[i])];
            p.parent_pos[i] = src >= 0 ? pos_of[size_t(src)] : -1;
        }
    }

    /** Per-level segment lists in device memory (offsets into one int32 buffer). */
    struct LevelLists {
        size_t scan_off, scan_n;
    };

    // ---- the forward pass ----------------------------------------------------------------------

    /** `count` elements of `buf` (grown when short; `headroom`: to twice the need, for tables that grow every step). */
    template <typename T>
    T* scratch(DeviceBuffer& buf, size_t count, bool headroom = false) {
        if (count * sizeof(T) > buf.bytes()) {
            buf.reserve((headroom ? 2 : 1) * std::max<size_t>(count, 1) * sizeof(T));
            ++sc_->epoch;
        }
        return buf.as<T>();
    }

    /** A planned call whose tables are on the device (in the current scratch set). */
    struct Call {
        CallPlan p;
        std::vector<LevelLists> lists;
        size_t chunk_off = 0, chunk_n = 0;  // conv chunks, all levels
        int32_t* d_ints = nullptr;
        cuda::SegTable segs{};
        cuda::ConvHistory hist{};
        cuda::ScanQueue queue{};  // counter == nullptr: one scan launch per level
        int T = 0;
        cuda::ConvHistory hist_attn{};  // the attention conv's history (its own table when its taps differ)
        cuda::AttnCall attn{};
        int attn_items = 0;
        bool kv_saves = false;  // some row's K|V goes into a block
    };

    /** Plans the call and uploads its tables: tokens | start | length | history | order | parent | per-level
     *  scan lists | conv chunks; pointers init_conv | init_ssm | save_conv | save_ssm | history_state. */
    Call upload_call(const ScoreBatch& b) {
        Call c;
        c.T = int(b.tokens.size());
        c.p = plan(b);
        CallPlan& p = c.p;
        const int n_seg = int(p.start.size());

        std::vector<int32_t> ints(b.tokens);
        auto append = [&](const std::vector<int32_t>& v) {
            const size_t off = ints.size();
            ints.insert(ints.end(), v.begin(), v.end());
            return off;
        };
        const size_t start_off = append(p.start), length_off = append(p.length), history_off = append(p.history);
        const size_t order_off = append(p.order), parent_off = append(p.parent_pos);
        std::vector<LevelLists>& lists = c.lists;
        lists.resize(size_t(p.levels));
        for (int lv = 0; lv < p.levels; lv++) {
            LevelLists& L = lists[size_t(lv)];
            L.scan_off = ints.size();
            for (int s = 0; s < n_seg; s++) {
                if (p.level[size_t(s)] == lv) ints.push_back(s);
            }
            L.scan_n = ints.size() - L.scan_off;
        }
        c.chunk_off = ints.size();
        for (int s = 0; s < n_seg; s++) {
            const int end = p.start[size_t(s)] + p.length[size_t(s)];
            for (int r = p.start[size_t(s)]; r < end; r += cuda::kConvChunkRows) {
                ints.push_back(s);
                ints.push_back(r);
                ints.push_back(std::min(r + cuda::kConvChunkRows, end));
            }
        }
        c.chunk_n = (ints.size() - c.chunk_off) / 3;
        std::vector<float*> ptrs;
        for (auto* v : {&p.init_conv, &p.init_ssm, &p.save_conv, &p.save_ssm, &p.history_state}) {
            ptrs.insert(ptrs.end(), v->begin(), v->end());
        }
        int32_t* d_ints = scratch<int32_t>(sc_->ints_buf_, ints.size());
        float** d_ptrs = scratch<float*>(sc_->ptrs_buf_, ptrs.size());
        check_cuda(cudaMemcpyAsync(d_ints, ints.data(), ints.size() * 4, cudaMemcpyHostToDevice, stream_), "upload batch");
        check_cuda(cudaMemcpyAsync(d_ptrs, ptrs.data(), ptrs.size() * sizeof(float*), cudaMemcpyHostToDevice, stream_),
                   "upload state table");
        c.d_ints = d_ints;
        c.segs = cuda::SegTable{d_ints + start_off, d_ints + length_off, d_ptrs, d_ptrs + n_seg, d_ptrs + 2 * n_seg,
                                d_ptrs + 3 * n_seg};
        c.hist = cuda::ConvHistory{d_ints + history_off, d_ptrs + 4 * n_seg};
        c.queue = cuda::ScanQueue{d_ints + order_off, d_ints + parent_off, nullptr, nullptr, 0, 0};
        c.hist_attn = c.hist;
        if (!p.history_attn.empty()) {
            int32_t* d_hist = scratch<int32_t>(sc_->attn_hist_buf_, p.history_attn.size());
            check_cuda(cudaMemcpyAsync(d_hist, p.history_attn.data(), p.history_attn.size() * 4, cudaMemcpyHostToDevice, stream_),
                       "upload attention conv history");
            c.hist_attn.history = d_hist;
        }
        if (p.levels > 1) prepare_queue(c, n_seg);
        if (n_attn_ > 0) upload_attention(c);
        return c;
    }

    /**
     * The attention tables of a planned call (cuda::AttnCall): ints pos [T] | pos0 | query tiles; int64 past offsets;
     * pointers save [T] | past rows of every segment (positions 0 … pos0−1 of its chain, in order).
     */
    void upload_attention(Call& c) {
        const CallPlan& p = c.p;
        const size_t n_seg = p.start.size(), T = size_t(c.T), per_token = kv_floats_per_token();
        std::vector<int32_t> ints(T);
        for (size_t s = 0; s < n_seg; s++) {
            for (int32_t r = 0; r < p.length[s]; r++) ints[size_t(p.start[s] + r)] = p.pos0[s] + r;
        }
        const size_t pos0_off = ints.size();
        ints.insert(ints.end(), p.pos0.begin(), p.pos0.end());
        const size_t items_off = ints.size();
        const int tile_rows = cuda::attention_query_rows(bf16_, int(a_.hd));
        for (size_t s = 0; s < n_seg; s++) {
            for (int32_t r = 0; r < p.length[s]; r += tile_rows) {
                ints.push_back(int32_t(s));
                ints.push_back(p.start[s] + r);
            }
        }
        c.attn_items = int((ints.size() - items_off) / 2);
        std::vector<int64_t> past_off(n_seg);
        std::vector<const float*> ptrs(p.kv_save_row.begin(), p.kv_save_row.end());
        c.kv_saves = std::any_of(p.kv_save_row.begin(), p.kv_save_row.end(), [](float* r) { return r != nullptr; });
        for (size_t s = 0; s < n_seg; s++) {
            past_off[s] = int64_t(ptrs.size() - T);
            for (const KvRun& run : chain_runs(p.kv_init[s])) {
                for (int64_t j = run.start; j < run.start + run.rows; j++) ptrs.push_back(run.block->row(j, per_token));
            }
        }
        int32_t* d_ints = scratch<int32_t>(sc_->attn_ints_buf_, ints.size(), true);
        // Offsets first, then pointers: both start at places that depend only on the segment count, so a step graph
        // captured with these addresses stays right while the chains (and the pointer table) grow between replays.
        const size_t ptr_bytes = ptrs.size() * sizeof(const float*), off_bytes = past_off.size() * sizeof(int64_t);
        char* d_tab = scratch<char>(sc_->attn_ptrs_buf_, off_bytes + ptr_bytes, true);
        check_cuda(cudaMemcpyAsync(d_ints, ints.data(), ints.size() * 4, cudaMemcpyHostToDevice, stream_), "upload attention rows");
        check_cuda(cudaMemcpyAsync(d_tab, past_off.data(), off_bytes, cudaMemcpyHostToDevice, stream_), "upload K/V offsets");
        check_cuda(cudaMemcpyAsync(d_tab + off_bytes, ptrs.data(), ptr_bytes, cudaMemcpyHostToDevice, stream_), "upload K/V rows");
        const auto* d_ptrs = reinterpret_cast<float* const*>(d_tab + off_bytes);
        c.attn = cuda::AttnCall{d_ints, c.segs.start, c.segs.length, d_ints + pos0_off,
                                reinterpret_cast<const int64_t*>(d_tab), d_ptrs + T, d_ptrs, d_ints + items_off};
    }

    /** Blocks per segment of a queued scan launch, or 0 when this model's scan kernel has no queued form. */
    int queue_blocks() const {
        if (n_mamba_ == 0) return 0;
        if (s_.family == 1) return cuda::mamba1_scan_queue_blocks(s_.d_inner, s_.d_state);
        return use_chunked_ssd() ? s_.n_heads : 0;
    }

    /** Counters (one per layer, zeroed for this call) and flags (zeroed when first made) of queued scans. */
    void prepare_queue(Call& c, int n_seg) {
        const int blocks = queue_blocks();
        if (blocks == 0) return;
        const size_t counters = size_t(s_.n_layer), flags = size_t(n_seg) * size_t(blocks);
        const size_t bytes = (counters + flags) * sizeof(unsigned);
        if (bytes > sc_->queue_buf_.bytes()) {
            sc_->queue_buf_.reserve(bytes);
            check_cuda(cudaMemsetAsync(sc_->queue_buf_.data(), 0, bytes, stream_), "zero scan flags");
            queue_epoch_ = 0;
        }
        if (queue_epoch_ > 0xFFFF0000u) {  // the epoch would wrap within a few calls: start the flags over
            check_cuda(cudaMemsetAsync(sc_->queue_buf_.data(), 0, sc_->queue_buf_.bytes(), stream_), "zero scan flags");
            queue_epoch_ = 0;
        }
        unsigned* base = sc_->queue_buf_.as<unsigned>();
        check_cuda(cudaMemsetAsync(base, 0, counters * sizeof(unsigned), stream_), "zero scan counters");
        c.queue.counter = base;
        c.queue.flags = base + counters;
        c.queue.blocks = blocks;
    }

    /** The queue of layer l's scan launch: its own counter and a fresh epoch for the flags. */
    cuda::ScanQueue layer_queue(const Call& c, int l) {
        cuda::ScanQueue q = c.queue;
        q.counter += l;
        q.epoch = ++queue_epoch_;
        return q;
    }

    void run(const ScoreBatch& b, ScoreOutput& out) {
        sc_ = &score_scratch_;
        if (step_mode_) prepare_skinny(int(b.tokens.size()));
        clock_.begin(stream_);
        Call c = upload_call(b);
        forward_layers(c);
        clock_.mark(cuda::kPhaseHead);
        head(b, sc_->resid_buf_.as<float>(), sc_->mix_buf_.as<float>(), out);
        clock_.mark(cuda::kPhaseEnd);
        check_cuda(cudaStreamSynchronize(stream_), "score");
        clock_.report(c.T, long(c.p.start.size()), c.p.levels);
        finish_call(c.p);
    }

    /** The activation buffers of one forward pass, sized once for the largest layer before any kernel is queued. */
    struct Buffers {
        float* resid;   // [T×D] the residual stream
        float* mix;     // [T×D] the last mixer (or MLP) output, added into resid by the next norm
        void* u;        // [T×D] normed input of a mixer / MLP (GEMM element type)
        float* xz;      // [T×in_rows] in_proj output
        float* xc;      // Mamba: [T×C] conv output
        float* y;       // Mamba: [T×E] scan output
        void* y_act;    // Mamba: [T×E] gated output (GEMM element type; y itself for fp32)
        void* xc_copy;  // Mamba-1 bf16: [T×E] conv output for x_proj
        float* qkv;     // attention with a conv: [T×qkv] after conv and rotary
        void* ctx;      // attention: [T×ctx] out_proj input (GEMM element type)
        float* fc1;     // GatedMLP: [T×2·dI]
        void* mlp_act;  // GatedMLP: [T×dI] (GEMM element type)
    };

    Buffers size_buffers(int T) {
        const size_t t = size_t(T), D = size_t(s_.d_model), E = size_t(s_.d_inner), ab = act_bytes();
        size_t in_cols = 0;
        if (n_mamba_ > 0) in_cols = size_t(in_rows_);
        if (n_attn_ > 0) in_cols = std::max(in_cols, size_t(a_.in_rows));
        Buffers b{};
        b.resid = scratch<float>(sc_->resid_buf_, t * D);
        b.mix = scratch<float>(sc_->mix_buf_, t * D);
        b.u = scratch<char>(sc_->u_buf_, t * D * ab);
        b.xz = scratch<float>(sc_->xz_buf_, t * in_cols);
        if (n_mamba_ > 0) {
            b.xc = scratch<float>(sc_->xc_buf_, t * size_t(conv_ch_));
            b.y = scratch<float>(sc_->y_buf_, t * E);
            b.y_act = bf16_ ? scratch<char>(sc_->y_act_buf_, t * E * 2) : static_cast<void*>(b.y);
            b.xc_copy = (s_.family == 1 && bf16_) ? scratch<char>(sc_->xc_act_buf_, t * E * 2) : nullptr;
        }
        if (n_attn_ > 0) {
            b.qkv = a_.K > 0 ? scratch<float>(sc_->qkv_buf_, t * size_t(a_.qkv)) : b.xz;
            b.ctx = scratch<char>(sc_->ctx_buf_, t * size_t(a_.ctx) * ab);
        }
        if (s_.d_intermediate > 0) {
            const size_t dI = size_t(s_.d_intermediate);
            b.fc1 = scratch<float>(sc_->fc1_buf_, t * 2 * dI);
            b.mlp_act = scratch<char>(sc_->mlp_act_buf_, t * dI * ab);
        }
        return b;
    }

    /** Embedding and every layer; leaves h in resid and the last mixer output in mix. Only queues work on the
     *  stream (no host synchronisation, no allocation once the scratch is sized), so step() can capture it. */
    void forward_layers(const Call& c) {
        const int T = c.T, D = s_.d_model;
        const Buffers b = size_buffers(T);
        clock_.mark(cuda::kPhaseEmbed);
        cuda::launch_embed(c.d_ints, T, emb_, bf16_, D, b.resid, stream_);
        for (int l = 0; l < s_.n_layer; l++) {
            const DeviceLayer& L = layers_[size_t(l)];
            clock_.mark(cuda::kPhaseNorm);
            // R += mix (the previous layer's output); u = RMSNorm(R)·w
            cuda::launch_add_rmsnorm(nullptr, T, b.resid, l == 0 ? nullptr : b.mix, L.norm, D, s_.norm_eps, ActOut{b.u, bf16_},
                                     stream_);
            if (L.attention) {
                attention_mixer(L, c, b);
            } else {
                mamba_mixer(L, l, c, b);
            }
            if (L.fc1 != nullptr) gated_mlp(L, T, b);
        }
    }

    /** The Mamba mixer of layer l: in_proj → conv + SiLU → scan (→ gated norm) → out_proj, into mix. */
    void mamba_mixer(const DeviceLayer& L, int l, const Call& c, const Buffers& b) {
        const int T = c.T;
        const int D = s_.d_model, E = s_.d_inner, N = s_.d_state, K = s_.d_conv;
        const int C = int(conv_ch_), IN = int(in_rows_);
        const std::vector<LevelLists>& lists = c.lists;
        const int32_t* d_ints = c.d_ints;
        const cuda::SegTable& segs = c.segs;
        float* xz = b.xz;
        float* xc = b.xc;
        float* y = b.y;
        void* y_act = b.y_act;
        clock_.mark(cuda::kPhaseGemm);
        project(L.in_proj, IN, D, b.u, D, T, xz, IN);
        if (L.in_bias != nullptr) cuda::launch_add_bias(T, IN, xz, IN, L.in_bias, stream_);
        const float* conv_in = s_.family == 1 ? xz : xz + E;
        void* xc_copy = b.xc_copy;
        clock_.mark(cuda::kPhaseConv);
        cuda::launch_conv_silu(reinterpret_cast<const ConvChunk*>(d_ints + c.chunk_off), int(c.chunk_n), segs, c.hist,
                               L.conv_off, conv_in, IN, C, K, L.conv_w, L.conv_bias, xc, ActOut{xc_copy, true}, stream_);
        const int m = L.mamba;  // its SSM state's index; the scan queue's counter is the layer's
        if (s_.family == 1) {
            mamba1_mixer(L, l, c, xz, xc, xc_copy, y_act);
        } else {
            const int G = s_.n_groups, H = s_.n_heads;
            const cuda::Mamba2ScanArgs a{H, s_.head_dim, N, G, xc, xz + 2 * E + 2 * G * N, IN, L.dt_bias, L.A, L.D, y};
            clock_.mark(cuda::kPhaseScan);
            const bool chunked = use_chunked_ssd();
            if (chunked && c.queue.counter != nullptr) {
                cuda::launch_mamba2_ssd_queued(layer_queue(c, l), int(c.p.start.size()), segs, m, a, stream_);
            } else for (const LevelLists& lv : lists) {
                if (chunked) {
                    cuda::launch_mamba2_ssd(d_ints + lv.scan_off, int(lv.scan_n), segs, m, a, stream_);
                } else {
                    cuda::launch_mamba2_scan(d_ints + lv.scan_off, int(lv.scan_n), segs, m, a, step_mode_, stream_);
                }
            }
            clock_.mark(cuda::kPhaseNorm);
            cuda::launch_gated_rmsnorm(T, y, xz, IN, L.gate_norm, E, G, s_.norm_eps, ActOut{y_act, bf16_}, stream_);
        }
        clock_.mark(cuda::kPhaseGemm);
        project(L.out_proj, D, E, y_act, E, T, b.mix, D);
        if (L.out_bias != nullptr) cuda::launch_add_bias(T, D, b.mix, D, L.out_bias, stream_);
    }

    /**
     * An attention layer (mamba_ssm's MHA): [q|k|v|up|gate] = in_proj(u) (+ bias); q|k|v through the causal conv +
     * bias without SiLU (when attnConv > 0); rotary on q and k; the K|V rows of saving segments into their blocks;
     * ctx = causal attention; ctx's MLP columns = up·SiLU(gate); mix = out_proj(ctx) (+ bias).
     */
    void attention_mixer(const DeviceLayer& L, const Call& c, const Buffers& b) {
        const int T = c.T, D = s_.d_model;
        const int IN = int(a_.in_rows), QKV = int(a_.qkv), H = int(a_.H), Hkv = int(a_.Hkv), hd = int(a_.hd);
        const int CTX = int(a_.ctx), kv_row = int(a_.kv_row);
        clock_.mark(cuda::kPhaseGemm);
        project(L.in_proj, IN, D, b.u, D, T, b.xz, IN);
        if (L.in_bias != nullptr) cuda::launch_add_bias(T, IN, b.xz, IN, L.in_bias, stream_);
        clock_.mark(cuda::kPhaseConv);
        float* qkv = b.xz;
        int ld = IN;
        if (a_.K > 0) {
            qkv = b.qkv;
            ld = QKV;
            cuda::launch_conv(reinterpret_cast<const ConvChunk*>(c.d_ints + c.chunk_off), int(c.chunk_n), c.segs, c.hist_attn,
                              L.conv_off, b.xz, IN, QKV, int(a_.K), L.conv_w, L.conv_bias, qkv, stream_);
        }
        clock_.mark(cuda::kPhaseAttention);
        cuda::launch_rotary(T, qkv, ld, c.attn.pos, H + Hkv, hd, int(a_.rd), s_.attn_rotary_base, stream_);
        const size_t layer_off = size_t(L.attn) * size_t(kv_row);
        if (c.kv_saves) cuda::launch_kv_save(T, c.attn.save, layer_off, qkv, ld, H * hd, kv_row, stream_);
        cuda::launch_attention(c.attn_items, c.attn, layer_off, qkv, ld, H, Hkv, hd, float(s_.attn_softmax_scale), bf16_,
                               ActOut{b.ctx, bf16_}, CTX, stream_);
        if (a_.mlp > 0) {
            const int half = int(a_.mlp / 2);
            cuda::launch_gated_product(T, half, b.xz, IN, QKV, QKV + half, ActOut{b.ctx, bf16_}, CTX, H * hd, stream_);
        }
        clock_.mark(cuda::kPhaseGemm);
        project(L.out_proj, D, CTX, b.ctx, CTX, T, b.mix, D);
        if (L.out_bias != nullptr) cuda::launch_add_bias(T, D, b.mix, D, L.out_bias, stream_);
    }

    /** GatedMLP after a mixer: R += mix;  [a, g] = fc1(RMSNorm2(R));  mix = fc2(a · SiLU(g)). */
    void gated_mlp(const DeviceLayer& L, int T, const Buffers& b) {
        const int D = s_.d_model, dI = s_.d_intermediate;
        clock_.mark(cuda::kPhaseNorm);
        cuda::launch_add_rmsnorm(nullptr, T, b.resid, b.mix, L.norm2, D, s_.norm_eps, ActOut{b.u, bf16_}, stream_);
        clock_.mark(cuda::kPhaseGemm);
        project(L.fc1, 2 * dI, D, b.u, D, T, b.fc1, 2 * dI);
        cuda::launch_gated_product(T, dI, b.fc1, 2 * dI, 0, dI, ActOut{b.mlp_act, bf16_}, dI, 0, stream_);
        project(L.fc2, D, dI, b.mlp_act, dI, T, b.mix, D);
    }

    void mamba1_mixer(const DeviceLayer& L, int l, const Call& c, const float* xz, const float* xc, const void* xc_copy,
                      void* y_act) {
        const int T = c.T;
        const int E = s_.d_inner, N = s_.d_state, R = s_.dt_rank, XD = R + 2 * N;
        const size_t t = size_t(T);
        float* dbc = scratch<float>(sc_->dbc_buf_, t * XD);
        float* dt = scratch<float>(sc_->dt_buf_, t * E);
        // [dt_low, B, C] = x_proj(x);  dt = dt_proj(dt_low) (bias and softplus are fused into the scan)
        clock_.mark(cuda::kPhaseGemm);
        project(L.x_proj, XD, E, bf16_ ? xc_copy : xc, E, T, dbc, XD);
        if (bf16_) {
            void* dt_low = scratch<char>(sc_->dt_low_buf_, t * R * 2);
            cuda::launch_copy_cols(T, R, dbc, XD, ActOut{dt_low, true}, stream_);
            project(L.dt_proj, E, R, dt_low, R, T, dt, E);
        } else {
            project(L.dt_proj, E, R, dbc, XD, T, dt, E);
        }
        clock_.mark(cuda::kPhaseScan);
        const cuda::Mamba1ScanArgs a{E, N, R, dt, L.dt_bias, xc, xz + E, int(in_rows_), dbc, L.A, L.D, ActOut{y_act, bf16_}};
        const int m = L.mamba;  // its SSM state's index; the scan queue's counter is the layer's
        if (c.queue.counter != nullptr) {
            cuda::launch_mamba1_scan_queued(layer_queue(c, l), int(c.p.start.size()), c.segs, m, a, stream_);
        } else {
            for (const LevelLists& lv : c.lists) {
                cuda::launch_mamba1_scan(c.d_ints + lv.scan_off, int(lv.scan_n), c.segs, m, a, step_mode_, stream_);
            }
        }
    }

    // norm_f + LM head on the distinct rows of scoreRows ∪ logitRows, kHeadChunkRows at a time; then the
    // fused log-softmax + gather for scored entries and a copy of requested logits.
    void head(const ScoreBatch& b, float* resid, const float* mix, ScoreOutput& out) {
        const int D = s_.d_model, V = s_.vocab;
        std::vector<int32_t> rows(b.score_rows);
        rows.insert(rows.end(), b.logit_rows.begin(), b.logit_rows.end());
        std::sort(rows.begin(), rows.end());
        rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
        auto index_of = [&](int32_t r) { return int(std::lower_bound(rows.begin(), rows.end(), r) - rows.begin()); };

        const size_t n_score = b.score_rows.size();
        out.logprobs.assign(n_score, 0.0);
        out.greedy.assign(n_score, 0);
        out.logits.assign(b.logit_rows.size() * size_t(V), 0.0f);
        const int R = int(rows.size());
        if (R == 0) return;

        // Device inputs: rows | per scored entry (chunk-local row, target), grouped by chunk.
        std::vector<int32_t> ints(rows);
        std::vector<size_t> order;  // entry order on the device → index into scoreRows
        std::vector<size_t> chunk_begin;
        for (int r0 = 0; r0 < R; r0 += kHeadChunkRows) {
            chunk_begin.push_back(order.size());
            for (size_t i = 0; i < n_score; i++) {
                const int idx = index_of(b.score_rows[i]);
                if (idx >= r0 && idx < r0 + kHeadChunkRows) order.push_back(i);
            }
        }
        chunk_begin.push_back(order.size());
        const size_t local_off = ints.size();
        for (size_t i : order) ints.push_back(index_of(b.score_rows[i]) % kHeadChunkRows);
        const size_t target_off = ints.size();
        for (size_t i : order) ints.push_back(b.score_targets[i]);
        int32_t* d_ints = scratch<int32_t>(sc_->head_ints_buf_, ints.size());
        check_cuda(cudaMemcpyAsync(d_ints, ints.data(), ints.size() * 4, cudaMemcpyHostToDevice, stream_), "upload rows");
        double* d_logprob = scratch<double>(sc_->logprob_buf_, std::max<size_t>(order.size(), 1));
        uint8_t* d_greedy = scratch<uint8_t>(sc_->greedy_buf_, std::max<size_t>(order.size(), 1));

        const int chunk = std::min(R, kHeadChunkRows);
        void* hn = scratch<char>(sc_->hn_buf_, size_t(chunk) * D * act_bytes());
        float* logits = scratch<float>(sc_->logits_buf_, size_t(chunk) * V);
        for (int r0 = 0, c = 0; r0 < R; r0 += kHeadChunkRows, c++) {
            const int n = std::min(R - r0, kHeadChunkRows);
            cuda::launch_add_rmsnorm(d_ints + r0, n, resid, mix, norm_f_, D, s_.norm_eps, ActOut{hn, bf16_}, stream_);
            project(head_, V, D, hn, D, n, logits, V);
            const size_t e0 = chunk_begin[size_t(c)], e1 = chunk_begin[size_t(c) + 1];
            cuda::launch_logsoftmax_gather(logits, V, d_ints + local_off + e0, d_ints + target_off + e0, int(e1 - e0),
                                           d_logprob + e0, d_greedy + e0, stream_);
            for (size_t i = 0; i < b.logit_rows.size(); i++) {
                const int idx = index_of(b.logit_rows[i]);
                if (idx < r0 || idx >= r0 + n) continue;
                check_cuda(cudaMemcpyAsync(out.logits.data() + i * size_t(V), logits + size_t(idx - r0) * V,
                                           size_t(V) * sizeof(float), cudaMemcpyDeviceToHost, stream_),
                           "download logits");
            }
            // The logits scratch is reused by the next chunk: finish this one's copies first.
            check_cuda(cudaStreamSynchronize(stream_), "LM head");
        }
        std::vector<double> logprob(order.size());
        std::vector<uint8_t> greedy(order.size());
        if (!order.empty()) {
            check_cuda(cudaMemcpy(logprob.data(), d_logprob, order.size() * sizeof(double), cudaMemcpyDeviceToHost),
                       "download logprobs");
            check_cuda(cudaMemcpy(greedy.data(), d_greedy, order.size(), cudaMemcpyDeviceToHost), "download greedy");
        }
        for (size_t j = 0; j < order.size(); j++) {
            out.logprobs[order[j]] = logprob[j];
            out.greedy[order[j]] = greedy[j];
        }
    }

    ModelSpec s_;
    cudaStream_t stream_;
    cuda::Gemm gemm_;
    cuda::PhaseClock clock_;
    bool bf16_ = false;
    bool step_mode_ = false;  // inside step(): the step scans (a warp or lane group per channel), the skinny GEMM (bf16)
    float* skinny_ws_ = nullptr;  // the skinny GEMM's split-K workspace (prepare_skinny)
    int64_t conv_ch_ = 0, in_rows_ = 0, conv_layer_ = 0, ssm_layer_ = 0;  // of a Mamba layer
    int n_mamba_ = 0, n_attn_ = 0;
    int64_t conv_total_ = 0;  // floats of a whole-model conv state
    AttentionDims a_{};       // of an attention layer
    KvPool kv_pool_;          // declared before the states, so it outlives every block they hold
    unsigned queue_epoch_ = 0;  // the flag value of the last queued scan launch
    std::string isa_;
    size_t weight_bytes_ = 0;
    size_t device_memory_ = 0;  // the GPU's total memory (cudaDeviceProp::totalGlobalMem)
    std::vector<DeviceBuffer> weights_;
    const void* emb_ = nullptr;
    const void* head_ = nullptr;
    const float* norm_f_ = nullptr;
    std::vector<DeviceLayer> layers_;
    std::unordered_map<int, std::unique_ptr<SlotState>> slots_;
    std::vector<std::unique_ptr<SlotState>> spare_;  // retired state buffers, reused before any cudaMalloc
    Scratch score_scratch_, step_scratch_;  // step() keeps its own, so score() never moves a captured graph's buffers
    Scratch* sc_ = &score_scratch_;
    StepGraph graph_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const ModelSpec& spec) {
    validate_spec(spec);
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        throw std::runtime_error("device cuda: no CUDA device is visible to this process");
    }
    return std::make_unique<CudaBackend>(spec);
}

}  // namespace mamba
