// addon.cc — the N-API surface (see src/model/backends/addonTypes.ts): capabilities(), createModel(spec),
// bootstrapResampleSums(values, chunkSize, chunkCount, threads) (synchronous),
// and a NativeModel object whose slow methods run as AsyncWorkers returning Promises.
//
// JS values are read and checked on the main thread and copied into plain C++ data; Execute() touches only
// that data and the Backend; OnOK() converts results back. One call at a time per model: a call made while
// another is running is rejected with a clear message (NativeBackend.ts queues calls, so users never see it).
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "cpu/pyrandom_bootstrap.h"
#include "score_batch.h"

namespace {

using mamba::Backend;

// ---------------------------------------------------------------- argument reading (main thread only)

[[noreturn]] void type_error(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

Napi::Value field(const Napi::Object& o, const char* key) { return o.Get(key); }

double number_field(const Napi::Object& o, const char* key, const std::string& where) {
    Napi::Value v = field(o, key);
    if (!v.IsNumber()) type_error(o.Env(), where + "." + key + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
}

int64_t int_field(const Napi::Object& o, const char* key, const std::string& where, int64_t lo, int64_t hi) {
    double d = number_field(o, key, where);
    if (!std::isfinite(d) || std::floor(d) != d || d < double(lo) || d > double(hi))
        type_error(o.Env(), where + "." + key + " must be an integer in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "], got " + std::to_string(d));
    return int64_t(d);
}

bool bool_field(const Napi::Object& o, const char* key, const std::string& where) {
    Napi::Value v = field(o, key);
    if (!v.IsBoolean()) type_error(o.Env(), where + "." + key + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
}

std::string string_field(const Napi::Object& o, const char* key, const std::string& where) {
    Napi::Value v = field(o, key);
    if (!v.IsString()) type_error(o.Env(), where + "." + key + " must be a string");
    return v.As<Napi::String>().Utf8Value();
}

std::vector<int32_t> int32_array(Napi::Value v, const std::string& what) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        type_error(v.Env(), what + " must be an Int32Array");
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

std::vector<float> float32_array(Napi::Value v, const std::string& what) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        type_error(v.Env(), what + " must be a Float32Array");
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

int slot_arg(const Napi::CallbackInfo& info, size_t i, const std::string& what) {
    if (info.Length() <= i || !info[i].IsNumber()) type_error(info.Env(), what + " must be a slot id (integer)");
    double d = info[i].As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::floor(d) != d || d < 0 || d > 2147483647.0)
        type_error(info.Env(), what + " must be a non-negative integer slot id, got " + std::to_string(d));
    return int(d);
}

bool present(const Napi::Object& o, const char* key) {
    Napi::Value v = field(o, key);
    return !v.IsUndefined() && !v.IsNull();
}

// The hybrid fields (layerKinds, attn*, dIntermediate); all absent = a pure Mamba model. The attention fields are
// read only when some layer is attention.
void read_hybrid_fields(const Napi::Object& o, mamba::ModelSpec& s) {
    Napi::Env env = o.Env();
    const std::string w = "spec";
    const int64_t big = 1 << 30;
    s.layer_kinds.assign(size_t(s.n_layer), mamba::kMambaLayer);
    if (present(o, "layerKinds")) {
        Napi::Value kv = field(o, "layerKinds");
        if (!kv.IsArray()) type_error(env, "spec.layerKinds must be an array of 0 (Mamba) or 1 (attention), one per layer");
        Napi::Array ka = kv.As<Napi::Array>();
        if (ka.Length() != uint32_t(s.n_layer))
            type_error(env, "spec.layerKinds has " + std::to_string(ka.Length()) + " entries, expected nLayer = " +
                                std::to_string(s.n_layer));
        for (uint32_t i = 0; i < ka.Length(); i++) {
            Napi::Value k = ka.Get(i);
            const double d = k.IsNumber() ? k.As<Napi::Number>().DoubleValue() : -1;
            if (d != 0 && d != 1) type_error(env, "spec.layerKinds[" + std::to_string(i) + "] must be 0 (Mamba) or 1 (attention)");
            s.layer_kinds[i] = int(d);
        }
    }
    s.d_intermediate = present(o, "dIntermediate") ? int(int_field(o, "dIntermediate", w, 0, big)) : 0;
    if (std::find(s.layer_kinds.begin(), s.layer_kinds.end(), int(mamba::kAttentionLayer)) == s.layer_kinds.end()) return;
    s.attn_heads = int(int_field(o, "attnHeads", w, 1, big));
    s.attn_heads_kv = int(int_field(o, "attnHeadsKv", w, 1, big));
    s.attn_head_dim = int(int_field(o, "attnHeadDim", w, 1, big));
    s.attn_conv = int(int_field(o, "attnConv", w, 0, big));
    s.attn_rotary_dim = int(int_field(o, "attnRotaryDim", w, 0, big));
    s.attn_rotary_base = number_field(o, "attnRotaryBase", w);
    s.attn_qkv_bias = bool_field(o, "attnQkvBias", w);
    s.attn_out_bias = bool_field(o, "attnOutBias", w);
    s.attn_mlp_dim = int(int_field(o, "attnMlpDim", w, 0, big));
    s.attn_softmax_scale = number_field(o, "attnSoftmaxScale", w);
}

mamba::ModelSpec read_spec(Napi::Value v) {
    Napi::Env env = v.Env();
    if (!v.IsObject()) type_error(env, "createModel: spec must be an object");
    Napi::Object o = v.As<Napi::Object>();
    const std::string w = "spec";
    const int64_t big = 1 << 30;
    mamba::ModelSpec s;
    s.device = string_field(o, "device", w);
    if (s.device != "cpu" && s.device != "cuda") type_error(env, "spec.device must be \"cpu\" or \"cuda\", got \"" + s.device + "\"");
    s.family = int(int_field(o, "family", w, 1, 2));
    s.d_model = int(int_field(o, "dModel", w, 1, big));
    s.n_layer = int(int_field(o, "nLayer", w, 1, big));
    s.vocab = int(int_field(o, "vocab", w, 1, big));
    s.d_state = int(int_field(o, "dState", w, 1, big));
    s.d_conv = int(int_field(o, "dConv", w, 1, big));
    s.d_inner = int(int_field(o, "dInner", w, 1, big));
    s.dt_rank = int(int_field(o, "dtRank", w, 0, big));
    s.n_heads = int(int_field(o, "nHeads", w, 0, big));
    s.head_dim = int(int_field(o, "headDim", w, 0, big));
    s.n_groups = int(int_field(o, "nGroups", w, 0, big));
    s.norm_eps = float(number_field(o, "normEps", w));
    s.conv_bias = bool_field(o, "convBias", w);
    s.proj_bias = bool_field(o, "projBias", w);
    s.tie_embeddings = bool_field(o, "tieEmbeddings", w);
    read_hybrid_fields(o, s);
    s.threads = int(int_field(o, "threads", w, 1, 256));
    const std::string wt = string_field(o, "weightType", w);
    if (wt != "f32" && wt != "bf16") type_error(env, "spec.weightType must be \"f32\" or \"bf16\", got \"" + wt + "\"");
    s.weight_type = wt == "f32" ? mamba::WeightType::F32 : mamba::WeightType::BF16;
    Napi::Value tv = field(o, "tensors");
    if (!tv.IsArray()) type_error(env, "spec.tensors must be an array");
    Napi::Array ta = tv.As<Napi::Array>();
    for (uint32_t i = 0; i < ta.Length(); i++) {
        const std::string tw = "spec.tensors[" + std::to_string(i) + "]";
        Napi::Value e = ta.Get(i);
        if (!e.IsObject()) type_error(env, tw + " must be an object");
        Napi::Object t = e.As<Napi::Object>();
        mamba::TensorSource src;
        src.name = string_field(t, "name", tw);
        const std::string dt = string_field(t, "dtype", tw);
        if (dt == "F32") src.dtype = mamba::DType::F32;
        else if (dt == "F16") src.dtype = mamba::DType::F16;
        else if (dt == "BF16") src.dtype = mamba::DType::BF16;
        else type_error(env, tw + ".dtype must be \"F32\", \"F16\" or \"BF16\" (tensor " + src.name + "), got \"" + dt + "\"");
        Napi::Value sv = field(t, "shape");
        if (!sv.IsArray()) type_error(env, tw + ".shape must be an array (tensor " + src.name + ")");
        Napi::Array sa = sv.As<Napi::Array>();
        for (uint32_t j = 0; j < sa.Length(); j++) {
            Napi::Value d = sa.Get(j);
            double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
            if (!std::isfinite(x) || std::floor(x) != x || x < 0)
                type_error(env, tw + ".shape must hold non-negative integers (tensor " + src.name + ")");
            src.shape.push_back(int64_t(x));
        }
        src.file = string_field(t, "file", tw);
        const int64_t max_safe = (int64_t(1) << 53) - 1;
        src.offset = uint64_t(int_field(t, "offset", tw, 0, max_safe));
        src.byte_length = uint64_t(int_field(t, "byteLength", tw, 0, max_safe));
        s.tensors.push_back(std::move(src));
    }
    return s;
}

std::unique_ptr<Backend> make_backend(const mamba::ModelSpec& spec) {
    if (spec.device == "cuda") {
#ifdef MAMBA_EVAL_CUDA
        return mamba::make_cuda_backend(spec);
#else
        throw std::runtime_error("this build of the addon has no CUDA backend (rebuild with MAMBA_EVAL_CUDA=ON and the CUDA toolkit)");
#endif
    }
    return mamba::make_cpu_backend(spec);
}

// ---------------------------------------------------------------- a Promise-returning worker

// Runs `work` off the main thread, then resolves with `result(env)` or rejects with the exception message.
// `finally` runs on the main thread either way (the model uses it to clear its busy flag).
class PromiseWorker : public Napi::AsyncWorker {
public:
    PromiseWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> result,
                  std::function<void()> finally)
        : Napi::AsyncWorker(env, "mamba_eval"), deferred_(Napi::Promise::Deferred::New(env)),
          work_(std::move(work)), result_(std::move(result)), finally_(std::move(finally)) {}

    Napi::Promise promise() const { return deferred_.Promise(); }

    void Execute() override {
        try {
            work_();
        } catch (const std::exception& e) {
            SetError(e.what());
        } catch (...) {
            SetError("unknown native error");
        }
    }
    void OnOK() override {
        if (finally_) finally_();
        Napi::Value v;
        try {
            v = result_ ? result_(Env()) : Env().Undefined();
        } catch (const Napi::Error& e) {
            deferred_.Reject(e.Value());
            return;
        }
        deferred_.Resolve(v);
    }
    void OnError(const Napi::Error& e) override {
        if (finally_) finally_();
        deferred_.Reject(e.Value());
    }

private:
    Napi::Promise::Deferred deferred_;
    std::function<void()> work_;
    std::function<Napi::Value(Napi::Env)> result_;
    std::function<void()> finally_;
};

// Most bytes of floats one call hands to JS. Node's napi_create_external_arraybuffer goes through node::Buffer::New,
// which refuses more than node::Buffer::kMaxLength bytes (2^32 in Node 20, the version-dependent limit of a Buffer);
// on refusal it calls the finalizer at once (freeing the data) AND reports failure, after which node-addon-api's
// ArrayBuffer::New deletes its finalizer record a second time: the double free past 4 GiB. Staying at or below
// 2^31 - 1 bytes keeps every supported Node far from that path (and from fs.writeSync's 2^31 - 1 limit in JS):
// a larger result is refused before any work, with a message saying to ask for fewer rows per call.
constexpr uint64_t kMaxReturnedFloatBytes = (uint64_t(1) << 31) - 1;

// "" when `rows` rows of `width` floats fit in one returned array, else the refusal message.
std::string too_many_floats(const char* what, uint64_t rows, uint64_t width) {
    const uint64_t bytes = rows * width * sizeof(float);  // rows < 2^31, width < 2^30: no overflow in 64 bits
    if (bytes <= kMaxReturnedFloatBytes) return "";
    return std::string(what) + ": " + std::to_string(rows) + " rows of " + std::to_string(width) + " logits are " +
           std::to_string(bytes) + " bytes, more than one call may return (" + std::to_string(kMaxReturnedFloatBytes) +
           "); ask for fewer rows per call";
}

// A Float32Array that takes over a vector's memory (no copy; freed when JS collects the array). The vector must
// hold at most kMaxReturnedFloatBytes (checked before the work, see too_many_floats; checked again here).
Napi::Float32Array adopt_floats(Napi::Env env, std::vector<float>&& v) {
    if (v.empty()) return Napi::Float32Array::New(env, 0);
    if (uint64_t(v.size()) * sizeof(float) > kMaxReturnedFloatBytes)
        throw Napi::RangeError::New(env, "native result of " + std::to_string(v.size()) + " floats is larger than one call may return");
    auto* owned = new std::vector<float>(std::move(v));
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, owned->data(), owned->size() * sizeof(float),
                                                   [](Napi::Env, void*, std::vector<float>* p) { delete p; }, owned);
    return Napi::Float32Array::New(env, owned->size(), buf, 0);
}

Napi::Promise rejected(Napi::Env env, const std::string& msg) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(Napi::Error::New(env, msg).Value());
    return d.Promise();
}

// ---------------------------------------------------------------- the NativeModel object

struct AddonData {
    Napi::FunctionReference model_ctor;
};

class Model : public Napi::ObjectWrap<Model> {
public:
    static Napi::Function Define(Napi::Env env) {
        return DefineClass(env, "NativeModel",
                           {InstanceMethod<&Model::Info>("info"), InstanceMethod<&Model::Score>("score"),
                            InstanceMethod<&Model::Step>("step"), InstanceMethod<&Model::CopyState>("copyState"),
                            InstanceMethod<&Model::FreeState>("freeState"),
                            InstanceMethod<&Model::ExportState>("exportState"),
                            InstanceMethod<&Model::ImportState>("importState"),
                            InstanceMethod<&Model::Dispose>("dispose")});
    }

    explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
        if (info.Length() < 1 || !info[0].IsExternal())
            type_error(info.Env(), "NativeModel cannot be constructed directly; use createModel(spec)");
        auto* holder = info[0].As<Napi::External<std::pair<std::shared_ptr<Backend>, mamba::ModelSpec>>>().Data();
        backend_ = holder->first;
        device_ = holder->second.device;
        threads_ = holder->second.threads;
        vocab_ = holder->second.vocab;
    }

private:
    // Checks the model is usable and idle; returns an error message or "".
    std::string unavailable(const char* method) const {
        if (!backend_) return std::string(method) + ": the model was disposed";
        if (busy_) return std::string(method) + ": the model is busy with another call; await it before calling again";
        return "";
    }

    // Queues `work` as this model's one running call; the JS object is kept alive until it finishes.
    Napi::Value queue(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> result) {
        busy_ = true;
        Ref();
        auto* w = new PromiseWorker(env, std::move(work), std::move(result), [this] {
            busy_ = false;
            if (dispose_pending_) backend_.reset();
            Unref();
        });
        Napi::Promise p = w->promise();
        w->Queue();
        return p;
    }

    Napi::Value Info(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (!backend_) throw Napi::Error::New(env, "info: the model was disposed");
        Napi::Object o = Napi::Object::New(env);
        o.Set("device", device_);
        o.Set("weightBytes", double(backend_->weight_bytes()));
        o.Set("deviceMemoryBytes", double(backend_->device_memory_bytes()));
        o.Set("convStateFloats", double(backend_->conv_state_floats()));
        o.Set("ssmStateFloats", double(backend_->ssm_state_floats()));
        o.Set("kvFloatsPerToken", double(backend_->kv_floats_per_token()));
        o.Set("threads", threads_);
        o.Set("isa", backend_->isa());
        return o;
    }

    Napi::Value Score(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (auto msg = unavailable("score"); !msg.empty()) return rejected(env, msg);
        if (info.Length() < 1 || !info[0].IsObject()) type_error(env, "score: batch must be an object");
        Napi::Object o = info[0].As<Napi::Object>();
        auto batch = std::make_shared<mamba::ScoreBatch>();
        batch->tokens = int32_array(o.Get("tokens"), "score: batch.tokens");
        batch->seg_offsets = int32_array(o.Get("segOffsets"), "score: batch.segOffsets");
        batch->seg_init = int32_array(o.Get("segInit"), "score: batch.segInit");
        batch->seg_save = int32_array(o.Get("segSave"), "score: batch.segSave");
        batch->score_rows = int32_array(o.Get("scoreRows"), "score: batch.scoreRows");
        batch->score_targets = int32_array(o.Get("scoreTargets"), "score: batch.scoreTargets");
        Napi::Value lr = o.Get("logitRows");
        if (!lr.IsUndefined()) batch->logit_rows = int32_array(lr, "score: batch.logitRows");
        if (auto msg = too_many_floats("score", batch->logit_rows.size(), uint64_t(vocab_)); !msg.empty()) return rejected(env, msg);
        auto out = std::make_shared<mamba::ScoreOutput>();
        std::shared_ptr<Backend> be = backend_;
        const int vocab = vocab_;
        return queue(
            env,
            [be, batch, out, vocab] {
                mamba::validate_score_batch(*batch, vocab, [&be](int slot) { return be->holds_state(slot); });
                be->score(*batch, *out);
            },
            [out](Napi::Env env) -> Napi::Value {
                Napi::Object r = Napi::Object::New(env);
                auto lp = Napi::Float64Array::New(env, out->logprobs.size());
                std::copy(out->logprobs.begin(), out->logprobs.end(), lp.Data());
                auto gr = Napi::Uint8Array::New(env, out->greedy.size());
                std::copy(out->greedy.begin(), out->greedy.end(), gr.Data());
                r.Set("logprobs", lp);
                r.Set("greedy", gr);
                r.Set("logits", adopt_floats(env, std::move(out->logits)));
                return r;
            });
    }

    Napi::Value Step(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (auto msg = unavailable("step"); !msg.empty()) return rejected(env, msg);
        if (info.Length() < 2) type_error(env, "step: expected (slots: Int32Array, tokens: Int32Array)");
        auto slots = std::make_shared<std::vector<int32_t>>(int32_array(info[0], "step: slots"));
        auto tokens = std::make_shared<std::vector<int32_t>>(int32_array(info[1], "step: tokens"));
        if (slots->size() != tokens->size())
            type_error(env, "step: slots and tokens differ in length (" + std::to_string(slots->size()) + " vs " +
                                std::to_string(tokens->size()) + ")");
        if (slots->empty()) type_error(env, "step: slots must not be empty");
        if (auto msg = too_many_floats("step", slots->size(), uint64_t(vocab_)); !msg.empty()) return rejected(env, msg);
        auto logits = std::make_shared<std::vector<float>>(slots->size() * size_t(vocab_));
        std::shared_ptr<Backend> be = backend_;
        return queue(
            env, [be, slots, tokens, logits] { be->step(slots->data(), tokens->data(), int(slots->size()), logits->data()); },
            [logits](Napi::Env env) -> Napi::Value { return adopt_floats(env, std::move(*logits)); });
    }

    Napi::Value CopyState(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (auto msg = unavailable("copyState"); !msg.empty()) return rejected(env, msg);
        const int src = slot_arg(info, 0, "copyState: src"), dst = slot_arg(info, 1, "copyState: dst");
        std::shared_ptr<Backend> be = backend_;
        return queue(env, [be, src, dst] { be->copy_state(src, dst); }, nullptr);
    }

    Napi::Value FreeState(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (auto msg = unavailable("freeState"); !msg.empty()) throw Napi::Error::New(env, msg);
        const int slot = slot_arg(info, 0, "freeState: slot");
        try {
            backend_->free_state(slot);
        } catch (const std::exception& e) {
            throw Napi::Error::New(env, e.what());
        }
        return env.Undefined();
    }

    Napi::Value ExportState(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (auto msg = unavailable("exportState"); !msg.empty()) return rejected(env, msg);
        const int slot = slot_arg(info, 0, "exportState: slot");
        auto state = std::make_shared<mamba::StateData>();
        std::shared_ptr<Backend> be = backend_;
        return queue(
            env, [be, slot, state] { be->export_state(slot, *state); },
            [state](Napi::Env env) -> Napi::Value {
                Napi::Object r = Napi::Object::New(env);
                auto copy = [&](const std::vector<float>& v) {
                    auto a = Napi::Float32Array::New(env, v.size());
                    std::copy(v.begin(), v.end(), a.Data());
                    return a;
                };
                r.Set("conv", copy(state->conv));
                r.Set("ssm", copy(state->ssm));
                r.Set("kv", copy(state->kv));
                return r;
            });
    }

    Napi::Value ImportState(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (auto msg = unavailable("importState"); !msg.empty()) return rejected(env, msg);
        const int slot = slot_arg(info, 0, "importState: slot");
        if (info.Length() < 2 || !info[1].IsObject()) type_error(env, "importState: state must be an object {conv, ssm, kv}");
        Napi::Object o = info[1].As<Napi::Object>();
        auto state = std::make_shared<mamba::StateData>();
        state->conv = float32_array(o.Get("conv"), "importState: state.conv");
        state->ssm = float32_array(o.Get("ssm"), "importState: state.ssm");
        if (present(o, "kv")) state->kv = float32_array(o.Get("kv"), "importState: state.kv");
        std::shared_ptr<Backend> be = backend_;
        return queue(env, [be, slot, state] { be->import_state(slot, *state); }, nullptr);
    }

    Napi::Value Dispose(const Napi::CallbackInfo& info) {
        if (busy_)
            dispose_pending_ = true;  // freed when the running call finishes
        else
            backend_.reset();
        return info.Env().Undefined();
    }

    std::shared_ptr<Backend> backend_;
    std::string device_;
    int threads_ = 1;
    int vocab_ = 0;
    bool busy_ = false;
    bool dispose_pending_ = false;
};

// ---------------------------------------------------------------- module functions

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    __builtin_cpu_init();
    Napi::Object o = Napi::Object::New(env);
#ifdef MAMBA_EVAL_CUDA
    o.Set("cuda", true);
#else
    o.Set("cuda", false);
#endif
    o.Set("avx2", bool(__builtin_cpu_supports("avx2")));
    o.Set("fma", bool(__builtin_cpu_supports("fma")));
    o.Set("hardwareThreads", double(std::thread::hardware_concurrency()));
    return o;
}

// bootstrapResampleSums(values, chunkSize, chunkCount, threads): chunkCount·chunkSize resample sums, chunk c
// drawn by random.Random(c) (cpu/pyrandom_bootstrap.h). Synchronous: the caller's API is, and it takes ~50 ms.
Napi::Value BootstrapResampleSums(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string fn = "bootstrapResampleSums: ";
    auto integer_arg = [&](size_t i, const char* name, double lo, double hi) -> int64_t {
        const bool given = info.Length() > i && info[i].IsNumber();
        double d = given ? info[i].As<Napi::Number>().DoubleValue() : NAN;
        if (!std::isfinite(d) || std::floor(d) != d || d < lo || d > hi)
            type_error(env, fn + name + " must be an integer in [" + std::to_string(int64_t(lo)) + ", " +
                                std::to_string(int64_t(hi)) + "], got " +
                                (given ? info[i].ToString().Utf8Value() : std::string("a non-number")));
        return int64_t(d);
    };
    const double max_length = 2147483647.0;
    if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
        type_error(env, fn + "values must be a Float64Array");
    Napi::Float64Array values = info[0].As<Napi::Float64Array>();
    if (double(values.ElementLength()) > max_length)
        type_error(env, fn + "values must hold at most 2147483647 numbers, got " + std::to_string(values.ElementLength()));
    const int64_t chunk_size = integer_arg(1, "chunkSize", 0, max_length);
    const int64_t chunk_count = integer_arg(2, "chunkCount", 0, max_length);
    const int threads = int(integer_arg(3, "threads", 1, 256));
    if (double(chunk_size) * double(chunk_count) > max_length)
        type_error(env, fn + "chunkSize·chunkCount must be at most 2147483647, got " + std::to_string(chunk_size) +
                            "·" + std::to_string(chunk_count));
    Napi::Float64Array sums = Napi::Float64Array::New(env, size_t(chunk_size * chunk_count));
    mamba::bootstrap_resample_sums(values.Data(), int64_t(values.ElementLength()), chunk_size, chunk_count, threads,
                                   sums.Data());
    return sums;
}

Napi::Value CreateModel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1) type_error(env, "createModel: expected a spec object");
    auto spec = std::make_shared<mamba::ModelSpec>(read_spec(info[0]));
    auto backend = std::make_shared<std::shared_ptr<Backend>>();
    auto* w = new PromiseWorker(
        env, [spec, backend] { *backend = std::shared_ptr<Backend>(make_backend(*spec)); },
        [spec, backend](Napi::Env env) -> Napi::Value {
            spec->tensors.clear();
            std::pair<std::shared_ptr<Backend>, mamba::ModelSpec> holder{*backend, *spec};
            auto ext = Napi::External<decltype(holder)>::New(env, &holder);
            return env.GetInstanceData<AddonData>()->model_ctor.New({ext});
        },
        nullptr);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
    auto* data = new AddonData();
    data->model_ctor = Napi::Persistent(Model::Define(env));
    env.SetInstanceData<AddonData>(data);
    exports.Set("capabilities", Napi::Function::New<Capabilities>(env, "capabilities"));
    exports.Set("createModel", Napi::Function::New<CreateModel>(env, "createModel"));
    exports.Set("bootstrapResampleSums", Napi::Function::New<BootstrapResampleSums>(env, "bootstrapResampleSums"));
    return exports;
}

}  // namespace

NODE_API_MODULE(mamba_eval, Init)
