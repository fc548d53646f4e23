// NativeClassifier, the ObjectWrap that lib/classifier.ts drives (typed in binding.d.ts).
// It converts and validates arguments, queues requests on the classifier's own inference thread,
// and settles each request's promise back on the JS thread through one thread-safe function.
#pragma once

#include <napi.h>

#include <memory>

#include "addon/inference_thread.h"
#include "core/staging_pool.h"

namespace vmae {

// A request whose result becomes a JS promise. Result() runs on the JS thread.
struct JsRequest : Request {
  explicit JsRequest(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  virtual Napi::Value Result(Napi::Env env) = 0;
  Napi::Promise::Deferred deferred;
};

class ClassifierWrap : public Napi::ObjectWrap<ClassifierWrap> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new NativeClassifier({ threads, maxBatchSize, maxBatchDelayMs, rejectNonFinite }). Starts the thread.
  explicit ClassifierWrap(const Napi::CallbackInfo& info);
  ~ClassifierWrap() override;
  void Finalize(Napi::Env env) override;

  // Sync. stopAll(): stops the inference thread of every classifier of the calling environment,
  // waiting for a running forward to finish; their pending promises never settle. For process
  // 'exit': process.exit() and uncaught exceptions end the process through exit() without running
  // env cleanup hooks, and exit() destroys libtorch's statics under a running forward.
  static Napi::Value StopAll(const Napi::CallbackInfo& info);

 private:
  static void CallJs(Napi::Env env, Napi::Function, ClassifierWrap* self, JsRequest* request);
  using Tsfn = Napi::TypedThreadSafeFunction<ClassifierWrap, JsRequest, &ClassifierWrap::CallJs>;

  // Each of these returns a promise; bad arguments reject it with VMAE_INVALID_INPUT.
  Napi::Value Load(const Napi::CallbackInfo& info);           // (id, path, {device, dtype})
  Napi::Value Warmup(const Napi::CallbackInfo& info);         // (id, shape) -> {labels, embeddingSize}
  // These two resolve with { logits, embedding } from one forward (embedding null: logits-only file).
  Napi::Value Forward(const Napi::CallbackInfo& info);        // (id, data, dtype, shape)
  Napi::Value ForwardFrames(const Napi::CallbackInfo& info);  // (id, frames, shape, params, T, crops)
  Napi::Value Preprocess(const Napi::CallbackInfo& info);     // (id, frames, shape, params, crops)
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // Sync. (id, code, message) -> whether a queued request was found and rejected.
  Napi::Value Cancel(const Napi::CallbackInfo& info);

  // JS thread. Queues `request` and returns its promise.
  Napi::Value Submit(std::unique_ptr<JsRequest> request);
  // JS thread. Settles a finished request.
  void Complete(Napi::Env env, std::unique_ptr<JsRequest> request);
  void Settle(Napi::Env env, JsRequest& request);
  static void CleanupHook(void* self);
  // JS thread. Stops the thread and releases the thread-safe function; idempotent.
  void Stop();
  // Destructor. Stop(), and forget this object in the cleanup hook and the StopAll registry.
  void Shutdown();

  std::unique_ptr<InferenceThread> thread_;
  // Input buffers, reused across requests (core/staging_pool.h): up to 96 MB idle, ten 16x224x224
  // float32 clips; none after dispose().
  std::shared_ptr<StagingPool> staging_ = StagingPool::Create(96 << 20);
  Tsfn tsfn_;
  int pending_ = 0;
  bool disposed_ = false;
  bool shut_down_ = false;
  bool hook_added_ = false;
  bool reject_non_finite_ = false;  // forward() refuses NaN/Infinity, checked on the worker thread
  int64_t external_bytes_ = 0;
  napi_env env_ = nullptr;
};

}  // namespace vmae
