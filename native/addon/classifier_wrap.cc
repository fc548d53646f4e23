#include "addon/classifier_wrap.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "addon/convert.h"
#include "core/device.h"
#include "core/errors.h"

namespace vmae {

namespace {

Classifier& Loaded(WorkerState& state) {
  if (!state.classifier) throw CoreError(codes::kRuntime, "No model is loaded");
  return *state.classifier;
}

struct LoadRequest : JsRequest {
  using JsRequest::JsRequest;
  LoadOptions options;
  ModelInfo info;
  void Execute(WorkerState& state) override {
    if (state.classifier) throw CoreError(codes::kInvalidInput, "A model is already loaded");
    state.classifier = Classifier::Load(options);
    info = state.classifier->info();
  }
  Napi::Value Result(Napi::Env env) override {
    auto o = Napi::Object::New(env);
    o.Set("metadata", info.archive.metadata_json);
    o.Set("config", info.archive.config_json);
    o.Set("fileVersion", static_cast<double>(info.archive.file_version));
    o.Set("parameterBytes", static_cast<double>(info.parameter_bytes));
    o.Set("device", info.device);
    o.Set("dtype", info.dtype);
    o.Set("fusedAttention", info.fused_attention);
    o.Set("fusedLinear", info.fused_linear);
    return o;
  }
};

// { logits: Float32Array, embedding: Float32Array | null } (null: a file with logits only).
Napi::Value OutputsToJs(Napi::Env env, const ModelOutput& output) {
  auto o = Napi::Object::New(env);
  o.Set("logits", ToFloat32Array(env, output.logits));
  o.Set("embedding", output.embedding.defined() ? ToFloat32Array(env, output.embedding) : env.Null());
  return o;
}

struct WarmupRequest : JsRequest {
  using JsRequest::JsRequest;
  std::vector<int64_t> shape;
  ModelOutput output;
  void Execute(WorkerState& state) override { output = Loaded(state).Warmup(shape); }
  Napi::Value Result(Napi::Env env) override {
    auto o = Napi::Object::New(env);
    o.Set("labels", static_cast<double>(output.logits.size(1)));
    o.Set("embeddingSize", output.embedding.defined() ? Napi::Value(Napi::Number::New(env, static_cast<double>(output.embedding.size(1))))
                                                      : env.Null());
    return o;
  }
};

// The result of the request types that return a float32 tensor.
struct TensorRequest : JsRequest {
  using JsRequest::JsRequest;
  torch::Tensor output;
  Napi::Value Result(Napi::Env env) override { return ToFloat32Array(env, output); }
};

// The result of the request types that run the model: both of its outputs.
struct OutputRequest : JsRequest {
  using JsRequest::JsRequest;
  ModelOutput output;
  Napi::Value Result(Napi::Env env) override { return OutputsToJs(env, output); }
};

struct ForwardRequest : OutputRequest {
  using OutputRequest::OutputRequest;
  torch::Tensor input;  // [B,T,C,H,W], owned copy
  bool reject_non_finite = false;
  bool Batchable() const override { return input.size(0) == 1; }
  // Worker thread: the scan reads every element, so it stays off the JS thread.
  void CheckInput() const {
    if (reject_non_finite && !AllFinite(input)) {
      throw CoreError(codes::kInvalidInput, "pixel_values contain NaN or Infinity (pass rejectNonFinite: false to allow them)");
    }
  }
  void Execute(WorkerState& state) override {
    CheckInput();
    output = Loaded(state).Forward(input);
  }
};

struct FramesRequest : OutputRequest {
  using OutputRequest::OutputRequest;
  torch::Tensor frames;  // [K*T,H,W,3] uint8, owned copy
  PreprocessParams params;
  int64_t num_frames = 0;
  int64_t crops = 1;
  void Execute(WorkerState& state) override {
    output = Loaded(state).ForwardFrames(frames, params, num_frames, crops);
  }
};

struct PreprocessRequest : TensorRequest {
  using TensorRequest::TensorRequest;
  torch::Tensor frames;
  PreprocessParams params;
  int64_t crops = 1;
  void Execute(WorkerState& state) override {
    output = Loaded(state).PreprocessFrames(frames, params, crops);
  }
};

struct DisposeRequest : JsRequest {
  using JsRequest::JsRequest;
  void Execute(WorkerState& state) override { state.classifier.reset(); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }
};

// The smallest batch bucket (1, 2, 4, ... up to max) that holds n clips. Fixed buckets keep the
// set of shapes the model sees small, so the allocator's pools and any captured graphs are reused.
int64_t Bucket(int64_t n, int64_t max) {
  int64_t b = 1;
  while (b < n) b *= 2;
  return std::min(b, max);
}

// Runs several single-clip ForwardRequests as one forward, padding to a bucket.
void RunForwardBatch(WorkerState& state, std::vector<Request*>& all, int64_t max_batch) {
  auto& classifier = Loaded(state);
  // A clip refused by its own input check fails alone, before the others are batched.
  std::vector<Request*> batch;
  for (auto* r : all) {
    try {
      static_cast<ForwardRequest*>(r)->CheckInput();
      batch.push_back(r);
    } catch (const CoreError& e) {
      r->error_code = e.code();
      r->error_message = e.what();
    }
  }
  if (batch.empty()) return;
  std::vector<torch::Tensor> inputs;
  for (auto* r : batch) inputs.push_back(static_cast<ForwardRequest*>(r)->input.to(torch::kFloat32));
  const bool same_shape = std::all_of(inputs.begin(), inputs.end(),
                                      [&](const torch::Tensor& t) { return t.sizes() == inputs[0].sizes(); });
  // Each request on its own, each with its own outcome.
  auto one_by_one = [&] {
    for (auto* r : batch) {
      try {
        r->Execute(state);
      } catch (const CoreError& e) {
        r->error_code = e.code();
        r->error_message = e.what();
      }
    }
  };
  if (!same_shape) return one_by_one();
  const int64_t n = static_cast<int64_t>(inputs.size());
  const int64_t padded = Bucket(n, max_batch);
  if (padded > n) inputs.push_back(torch::zeros_like(inputs[0]).expand({padded - n, -1, -1, -1, -1}));
  ModelOutput out;
  try {
    out = classifier.Forward(torch::cat(inputs));
  } catch (const CoreError&) {
    // One bad clip must not fail the clips that happened to be batched with it: rerun them alone,
    // so that only the request that really fails gets the error.
    return one_by_one();
  }
  for (int64_t i = 0; i < n; ++i) {
    auto& output = static_cast<ForwardRequest*>(batch[i])->output;
    output.logits = out.logits.narrow(0, i, 1);
    if (out.embedding.defined()) output.embedding = out.embedding.narrow(0, i, 1);
  }
}

// Every live ClassifierWrap of every environment (workers have their own), for StopAll. Never
// destroyed, so that it outlives the static destructors that run at exit().
std::mutex* live_mutex = new std::mutex;
std::set<ClassifierWrap*>* live = new std::set<ClassifierWrap*>;

Napi::Value RejectedPromise(Napi::Env env, const std::string& code, const std::string& message) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(MakeError(env, code, message).Value());
  return deferred.Promise();
}

// Runs `body`, turning any validation failure into a rejected promise rather than a throw.
template <typename Fn>
Napi::Value Guard(Napi::Env env, Fn&& body) {
  try {
    return body();
  } catch (const CoreError& e) {
    return RejectedPromise(env, e.code(), e.what());
  } catch (const Napi::Error& e) {
    return RejectedPromise(env, codes::kInvalidInput, e.Message());
  } catch (const std::exception& e) {
    return RejectedPromise(env, codes::kRuntime, e.what());
  }
}

}  // namespace

Napi::Function ClassifierWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeClassifier",
                     {InstanceMethod<&ClassifierWrap::Load>("load"),
                      InstanceMethod<&ClassifierWrap::Warmup>("warmup"),
                      InstanceMethod<&ClassifierWrap::Forward>("forward"),
                      InstanceMethod<&ClassifierWrap::ForwardFrames>("forwardFrames"),
                      InstanceMethod<&ClassifierWrap::Preprocess>("preprocess"),
                      InstanceMethod<&ClassifierWrap::Cancel>("cancel"),
                      InstanceMethod<&ClassifierWrap::Dispose>("dispose")});
}

ClassifierWrap::ClassifierWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ClassifierWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  ThreadOptions options;
  try {
    if (info.Length() > 0 && info[0].IsObject()) {
      auto o = info[0].As<Napi::Object>();
      if (!o.Get("threads").IsUndefined()) options.threads = static_cast<int>(ToInt(o.Get("threads"), "threads", 0, 1024));
      if (!o.Get("maxBatchSize").IsUndefined()) {
        options.max_batch_size = static_cast<int>(ToInt(o.Get("maxBatchSize"), "maxBatchSize", 1, 64));
      }
      if (!o.Get("maxBatchDelayMs").IsUndefined()) {
        options.max_batch_delay_ms = static_cast<double>(ToInt(o.Get("maxBatchDelayMs"), "maxBatchDelayMs", 0, 10000));
      }
      if (!o.Get("rejectNonFinite").IsUndefined()) {
        if (!o.Get("rejectNonFinite").IsBoolean()) throw CoreError(codes::kInvalidInput, "Expected a boolean for rejectNonFinite");
        reject_non_finite_ = o.Get("rejectNonFinite").As<Napi::Boolean>().Value();
      }
    }
  } catch (const CoreError& e) {
    MakeError(env, e.code(), e.what()).ThrowAsJavaScriptException();
    return;
  }
  tsfn_ = Tsfn::New(env, "videomae-inference", 0, 1, this);
  tsfn_.Unref(env);  // only pending requests keep the process alive
  const int64_t max_batch = options.max_batch_size;
  auto tsfn = tsfn_;
  thread_ = std::make_unique<InferenceThread>(
      options,
      [tsfn](std::unique_ptr<Request> r) mutable {
        auto* request = static_cast<JsRequest*>(r.release());
        // napi_closing means the environment is going away: nobody is left to settle it.
        if (tsfn.NonBlockingCall(request) != napi_ok) delete request;
      },
      [max_batch](WorkerState& state, std::vector<Request*>& batch) {
        RunForwardBatch(state, batch, max_batch);
      });
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hook_added_ = true;
  std::lock_guard<std::mutex> lock(*live_mutex);
  live->insert(this);
}

ClassifierWrap::~ClassifierWrap() { Shutdown(); }

Napi::Value ClassifierWrap::StopAll(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  std::vector<ClassifierWrap*> mine;
  {
    std::lock_guard<std::mutex> lock(*live_mutex);
    for (auto* w : *live) {
      if (w->env_ == env) mine.push_back(w);
    }
  }
  // Only this environment's JS thread (this one) destroys these objects, so they stay valid here.
  for (auto* w : mine) w->Stop();
  return info.Env().Undefined();
}

void ClassifierWrap::Finalize(Napi::Env env) {
  if (external_bytes_ != 0 && !shut_down_) {
    int64_t ignored;
    napi_adjust_external_memory(env, -external_bytes_, &ignored);
    external_bytes_ = 0;
  }
}

void ClassifierWrap::Stop() {
  if (shut_down_) return;
  shut_down_ = true;
  if (thread_) thread_->Stop();  // joins; the worker frees the model
  if (tsfn_) tsfn_.Release();
}

void ClassifierWrap::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(*live_mutex);
    live->erase(this);
  }
  Stop();
  if (hook_added_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
}

void ClassifierWrap::CleanupHook(void* data) {
  // The environment is exiting (worker termination, or the end of the main script): stop the
  // thread now, while the thread-safe function is still valid. Pending promises can no longer be
  // settled. Node forgets a hook once it ran.
  auto* self = static_cast<ClassifierWrap*>(data);
  self->hook_added_ = false;
  self->Stop();
}

void ClassifierWrap::CallJs(Napi::Env env, Napi::Function, ClassifierWrap* self, JsRequest* request) {
  std::unique_ptr<JsRequest> owned(request);
  if (env == nullptr || self == nullptr) return;  // torn down: drop it
  // This runs from libuv, outside any JS call: an exception escaping it would abort the process.
  // N-API calls fail (and throw, with NAPI_CPP_EXCEPTIONS) while a worker is being terminated;
  // nobody is left to settle the promise then, so the request is dropped.
  try {
    self->Complete(env, std::move(owned));
  } catch (const Napi::Error&) {
  } catch (const std::exception&) {
  }
}

void ClassifierWrap::Settle(Napi::Env env, JsRequest& request) {
  Napi::HandleScope scope(env);
  if (!request.error_code.empty()) {
    request.deferred.Reject(MakeError(env, request.error_code, request.error_message).Value());
    return;
  }
  try {
    request.deferred.Resolve(request.Result(env));
  } catch (const Napi::Error& e) {
    request.deferred.Reject(MakeError(env, codes::kRuntime, e.Message()).Value());
  }
}

void ClassifierWrap::Complete(Napi::Env env, std::unique_ptr<JsRequest> request) {
  if (auto* load = dynamic_cast<LoadRequest*>(request.get()); load && request->error_code.empty()) {
    external_bytes_ = load->info.parameter_bytes;
    int64_t ignored;
    napi_adjust_external_memory(env, external_bytes_, &ignored);
  }
  const bool dispose = dynamic_cast<DisposeRequest*>(request.get()) != nullptr;
  if (dispose && external_bytes_ != 0) {
    int64_t ignored;
    napi_adjust_external_memory(env, -external_bytes_, &ignored);
    external_bytes_ = 0;
  }
  Settle(env, *request);
  if (--pending_ == 0) tsfn_.Unref(env);
  Unref();
  if (dispose) thread_->Stop();
}

Napi::Value ClassifierWrap::Submit(std::unique_ptr<JsRequest> request) {
  Napi::Env env = Env();
  auto promise = request->deferred.Promise();
  if (disposed_ || shut_down_) {
    request->deferred.Reject(MakeError(env, codes::kDisposed, "The classifier has been disposed").Value());
    return promise;
  }
  if (pending_++ == 0) tsfn_.Ref(env);
  Ref();  // keep this object (and so the thread) alive while the request is in flight
  thread_->Push(std::move(request));
  return promise;
}

Napi::Value ClassifierWrap::Load(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto r = std::make_unique<LoadRequest>(info.Env());
    r->id = static_cast<uint32_t>(ToInt(info[0], "request id", 0, UINT32_MAX));
    r->options.path = ToString(info[1], "path");
    if (!info[2].IsObject()) throw CoreError(codes::kInvalidInput, "Expected load options");
    auto o = info[2].As<Napi::Object>();
    r->options.device = ToString(o.Get("device"), "device");
    r->options.dtype = ToString(o.Get("dtype"), "dtype");
    if (o.Has("optimize") && !o.Get("optimize").IsUndefined()) {
      if (!o.Get("optimize").IsBoolean()) throw CoreError(codes::kInvalidInput, "Expected a boolean for optimize");
      r->options.optimize = o.Get("optimize").As<Napi::Boolean>().Value();
    }
    ParseModelDtype(r->options.dtype);  // reject early, on the caller's stack
    return Submit(std::move(r));
  });
}

Napi::Value ClassifierWrap::Warmup(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto r = std::make_unique<WarmupRequest>(info.Env());
    r->id = static_cast<uint32_t>(ToInt(info[0], "request id", 0, UINT32_MAX));
    r->shape = ToShape(info[1], "warm-up shape");
    return Submit(std::move(r));
  });
}

Napi::Value ClassifierWrap::Forward(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto r = std::make_unique<ForwardRequest>(info.Env());
    r->id = static_cast<uint32_t>(ToInt(info[0], "request id", 0, UINT32_MAX));
    const auto dtype = ParseTensorDtype(ToString(info[2], "dtype"));
    const auto shape = ToShape(info[3], "pixel_values");
    if (shape.size() != 5) throw CoreError(codes::kInvalidInput, "Expected pixel_values of rank 5 [B,T,C,H,W]");
    if (dtype == torch::kUInt8) throw CoreError(codes::kInvalidInput, "Expected floating pixel_values, not uint8");
    r->input = CopyToTensor(info[1], dtype, shape, *staging_);
    r->reject_non_finite = reject_non_finite_;
    return Submit(std::move(r));
  });
}

Napi::Value ClassifierWrap::ForwardFrames(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto r = std::make_unique<FramesRequest>(info.Env());
    r->id = static_cast<uint32_t>(ToInt(info[0], "request id", 0, UINT32_MAX));
    const auto shape = ToShape(info[2], "frames");
    if (shape.size() != 4 || shape[3] != 3) throw CoreError(codes::kInvalidInput, "Expected frames of shape [N,H,W,3]");
    r->params = ToPreprocessParams(info[3]);
    r->num_frames = ToInt(info[4], "numFrames", 1, 4096);
    r->crops = ToInt(info[5], "crops", 1, 16);
    r->frames = CopyToTensor(info[1], torch::kUInt8, shape, *staging_);
    return Submit(std::move(r));
  });
}

Napi::Value ClassifierWrap::Preprocess(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto r = std::make_unique<PreprocessRequest>(info.Env());
    r->id = static_cast<uint32_t>(ToInt(info[0], "request id", 0, UINT32_MAX));
    const auto shape = ToShape(info[2], "frames");
    if (shape.size() != 4 || shape[3] != 3) throw CoreError(codes::kInvalidInput, "Expected frames of shape [N,H,W,3]");
    r->params = ToPreprocessParams(info[3]);
    r->crops = ToInt(info[4], "crops", 1, 16);
    r->frames = CopyToTensor(info[1], torch::kUInt8, shape, *staging_);
    return Submit(std::move(r));
  });
}

Napi::Value ClassifierWrap::Cancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsString() || !info[2].IsString() || shut_down_) {
    return Napi::Boolean::New(env, false);
  }
  auto request = thread_->Cancel(info[0].As<Napi::Number>().Uint32Value());
  if (!request) return Napi::Boolean::New(env, false);
  auto* js = static_cast<JsRequest*>(request.get());
  js->error_code = info[1].As<Napi::String>().Utf8Value();
  js->error_message = info[2].As<Napi::String>().Utf8Value();
  Complete(env, std::unique_ptr<JsRequest>(static_cast<JsRequest*>(request.release())));
  return Napi::Boolean::New(env, true);
}

Napi::Value ClassifierWrap::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto r = std::make_unique<DisposeRequest>(env);
  if (disposed_ || shut_down_) {
    r->deferred.Resolve(env.Undefined());
    return r->deferred.Promise();
  }
  staging_->Drain();
  // Reject what has not started; the running request finishes first, then the model is freed.
  for (auto& queued : thread_->TakeQueued()) {
    auto* js = static_cast<JsRequest*>(queued.get());
    js->error_code = codes::kDisposed;
    js->error_message = "The classifier was disposed before this request ran";
    Complete(env, std::unique_ptr<JsRequest>(static_cast<JsRequest*>(queued.release())));
  }
  auto promise = Submit(std::move(r));
  disposed_ = true;
  return promise;
}

}  // namespace vmae
