// Module registration: the NativeClassifier class and runtimeInfo().
#include <napi.h>

#include "addon/classifier_wrap.h"
#include "core/runtime_info.h"

namespace {

Napi::Value RuntimeInfo(const Napi::CallbackInfo& info) {
  const auto r = vmae::GetRuntimeInfo();
  auto o = Napi::Object::New(info.Env());
  o.Set("libtorchVersion", r.libtorch_version);
  o.Set("libtorchSource", VMAE_LIBTORCH_SOURCE);
  o.Set("cudaCompiled", r.cuda_compiled);
  o.Set("cudaAvailable", r.cuda_available);
  o.Set("cudaDeviceCount", r.cuda_device_count);
  o.Set("defaultThreads", r.num_threads);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeClassifier", vmae::ClassifierWrap::Define(env));
  exports.Set("runtimeInfo", Napi::Function::New<RuntimeInfo>(env, "runtimeInfo"));
  return exports;
}

}  // namespace

NODE_API_MODULE(videomae, Init)
