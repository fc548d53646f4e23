// The CUDA side of one classifier: its own stream and device made current on the inference thread,
// pinned host staging with asynchronous uploads on that stream, TF32 for float32 math, and
// optional CUDA-graph replay per input shape (batch bucket). Compiled with real CUDA calls only
// when the libtorch found at build time has CUDA (VMAE_CUDA); otherwise Create() throws.
#pragma once

#include <torch/types.h>

#include <functional>
#include <memory>

namespace vmae {

struct CudaOptions {
  // Let cuBLAS/cuDNN use TF32 tensor cores for float32 (process-wide; about 1e-3 relative error).
  // VIDEOMAE_CUDA_TF32=0 turns it off.
  bool allow_tf32 = true;
  // Capture one CUDA graph per input shape and replay it. Experimental, off unless
  // VIDEOMAE_CUDA_GRAPHS=1; any capture failure falls back to plain forwards for good.
  bool graphs = false;
};

class CudaPath {
 public:
  // Sync. True when this build has the CUDA path (a CUDA libtorch at build time).
  static bool Compiled();

  // Sync, on the inference thread. Creates the model's stream on `device` (cuda:N) and makes
  // the device and the stream current on the calling thread. Throws CoreError
  // VMAE_DEVICE_UNAVAILABLE when the build has no CUDA, VMAE_RUNTIME on CUDA errors.
  static std::unique_ptr<CudaPath> Create(const torch::Device& device, const CudaOptions& options);
  ~CudaPath();

  // Sync. Makes the device and the stream current on the calling thread; the worker calls it
  // before each request, so nothing else on that thread can leave another stream current.
  void MakeCurrent() const;

  // Sync. CPU tensor -> the device: copied into a pinned staging buffer owned by this object,
  // then sent with a non-blocking copy on the model's stream. Returns the device tensor.
  torch::Tensor Upload(const torch::Tensor& host);

  // Sync. forward(x) for x on the device. With graphs on, the first call per shape and dtype
  // warms up and captures a CUDA graph; later calls copy x into its static input and replay it.
  // The returned tensor is overwritten by the next replay: copy it off before calling again.
  torch::Tensor Run(const torch::Tensor& x, const std::function<torch::Tensor(const torch::Tensor&)>& forward);

  // Sync. Waits until the model's stream is idle.
  void Synchronize() const;

  // The number of shapes replayed from captured graphs (0 when graphs are off or failed).
  int captured_graphs() const;

 private:
  struct Impl;
  explicit CudaPath(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Sync. The CudaOptions from the environment (VIDEOMAE_CUDA_TF32, VIDEOMAE_CUDA_GRAPHS).
CudaOptions CudaOptionsFromEnv();

}  // namespace vmae
