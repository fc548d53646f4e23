// Module registration: the NativeClassifier class, runtimeInfo(), stopAll() and spawnProcess().
#include <dlfcn.h>
#include <napi.h>

#include <cstdlib>

#include "addon/classifier_wrap.h"
#include "addon/spawn.h"
#include "core/attention.h"
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
  o.Set("cpuKernels", vmae::CpuKernelIsa());
  o.Set("cpuBfloat16", r.cpu_bfloat16);
  return o;
}

// OpenBLAS's pthread build (Debian's libopenblas0-pthread, which libtorch uses through libblas.so.3)
// tears its thread pool down in a pthread_atfork handler. A fork -- child_process.spawn, so every
// ffmpeg that classifyVideo starts -- while an inference thread is inside a multi-threaded GEMM
// then leaves that GEMM spinning forever on workers that are gone. Keep OpenBLAS on the calling
// thread (libtorch parallelizes around it) unless the user set OPENBLAS_NUM_THREADS.
void KeepOpenBlasSingleThreaded() {
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) return;
  using SetThreads = void (*)(int);
  // By name, with RTLD_NOLOAD: Node dlopens addons RTLD_LOCAL, so RTLD_DEFAULT cannot see the
  // libraries that came in with this one.
  for (const char* lib : {"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libblas.so.3"}) {
    void* handle = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    auto set = reinterpret_cast<SetThreads>(dlsym(handle, "openblas_set_num_threads"));
    dlclose(handle);  // drops the reference RTLD_NOLOAD took; the library stays loaded
    if (set != nullptr) {
      set(1);
      return;
    }
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  KeepOpenBlasSingleThreaded();
  exports.Set("NativeClassifier", vmae::ClassifierWrap::Define(env));
  exports.Set("runtimeInfo", Napi::Function::New<RuntimeInfo>(env, "runtimeInfo"));
  exports.Set("spawnProcess", Napi::Function::New<vmae::SpawnProcess>(env, "spawnProcess"));
  auto stop_all = Napi::Function::New<vmae::ClassifierWrap::StopAll>(env, "stopAll");
  exports.Set("stopAll", stop_all);
  // process.exit() and uncaught exceptions end the process through exit() without running env
  // cleanup hooks, and exit() destroys libtorch's statics under a running forward: stop the
  // inference threads on 'exit' instead. (Worker environments also get their cleanup hooks.)
  auto process = env.Global().Get("process");
  if (process.IsObject()) {
    auto once = process.As<Napi::Object>().Get("once");
    if (once.IsFunction()) once.As<Napi::Function>().Call(process, {Napi::String::New(env, "exit"), stop_all});
  }
  return exports;
}

}  // namespace

NODE_API_MODULE(videomae, Init)
