#include "core/cuda_path.h"

#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/errors.h"

#ifdef VMAE_CUDA
#include <ATen/Context.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace vmae {

namespace {
bool EnvFlag(const char* name, bool dflt) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return dflt;
  return !(std::strcmp(v, "0") == 0 || std::strcmp(v, "false") == 0 || std::strcmp(v, "off") == 0);
}
}  // namespace

CudaOptions CudaOptionsFromEnv() {
  CudaOptions o;
  o.allow_tf32 = EnvFlag("VIDEOMAE_CUDA_TF32", true);
  o.graphs = EnvFlag("VIDEOMAE_CUDA_GRAPHS", false);
  return o;
}

#ifdef VMAE_CUDA

namespace {

// One captured forward: replaying `graph` reads `input` and writes `output`, both fixed buffers.
struct Captured {
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  torch::Tensor input;
  torch::Tensor output;
};

using ShapeKey = std::pair<std::vector<int64_t>, int>;

constexpr size_t kMaxGraphs = 8;

ShapeKey KeyOf(const torch::Tensor& x) {
  return {x.sizes().vec(), static_cast<int>(x.scalar_type())};
}

}  // namespace

struct CudaPath::Impl {
  Impl(torch::Device d, c10::cuda::CUDAStream s, CudaOptions o) : device(d), stream(s), options(o) {}
  torch::Device device;
  c10::cuda::CUDAStream stream;
  CudaOptions options;
  torch::Tensor staging;  // pinned bytes, grown on demand
  std::map<ShapeKey, Captured> graphs;
  bool graphs_failed = false;
};

bool CudaPath::Compiled() { return true; }

CudaPath::CudaPath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaPath::~CudaPath() = default;

std::unique_ptr<CudaPath> CudaPath::Create(const torch::Device& device, const CudaOptions& options) {
  return TranslateErrors("setting up the CUDA stream", codes::kRuntime, [&] {
    c10::cuda::set_device(device.index());
    // A stream of our own: the model's copies and kernels never queue behind other work on the
    // device's default stream (another classifier, or the host application's own libtorch use).
    auto stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    if (options.allow_tf32) {
      // Process-wide, as torch.backends.cuda.matmul.allow_tf32 is; it only affects float32 math.
      at::globalContext().setAllowTF32CuBLAS(true);
      at::globalContext().setAllowTF32CuDNN(true);
    }
    auto path = std::unique_ptr<CudaPath>(new CudaPath(std::make_unique<Impl>(device, stream, options)));
    path->MakeCurrent();
    return path;
  });
}

void CudaPath::MakeCurrent() const {
  // Both are thread-local: this is the device guard of the inference thread.
  c10::cuda::set_device(impl_->device.index());
  c10::cuda::setCurrentCUDAStream(impl_->stream);
}

torch::Tensor CudaPath::Upload(const torch::Tensor& host) {
  return TranslateErrors("copying the input to the GPU", codes::kRuntime, [&] {
    MakeCurrent();
    auto src = host.contiguous();
    const int64_t bytes = static_cast<int64_t>(src.nbytes());
    // The previous upload out of the staging buffer must be finished before it is overwritten.
    // Every request ends with a device-to-host copy of its result, so this rarely waits.
    impl_->stream.synchronize();
    if (!impl_->staging.defined() || impl_->staging.numel() < bytes) {
      impl_->staging = at::empty({bytes}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
    }
    std::memcpy(impl_->staging.data_ptr(), src.data_ptr(), static_cast<size_t>(bytes));
    auto pinned = impl_->staging.narrow(0, 0, bytes).view(src.scalar_type()).view(src.sizes());
    return pinned.to(impl_->device, /*non_blocking=*/true);
  });
}

torch::Tensor CudaPath::Run(const torch::Tensor& x,
                            const std::function<torch::Tensor(const torch::Tensor&)>& forward) {
  MakeCurrent();
  if (!impl_->options.graphs || impl_->graphs_failed) return forward(x);
  const auto key = KeyOf(x);
  auto it = impl_->graphs.find(key);
  if (it == impl_->graphs.end()) {
    // Each graph keeps its own memory pool: capture the few batch buckets, run odd shapes eagerly.
    if (impl_->graphs.size() >= kMaxGraphs) return forward(x);
    Captured c;
    c.input = x.clone();
    // The profiling executor specializes the graph over its first runs: settle it before capture.
    for (int i = 0; i < 3; ++i) forward(c.input);
    impl_->stream.synchronize();
    c.graph = std::make_unique<at::cuda::CUDAGraph>();
    try {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
      // Thread-local capture: another classifier's thread may allocate meanwhile.
      c.graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
#else
      c.graph->capture_begin();
#endif
      c.output = forward(c.input);
      c.graph->capture_end();
    } catch (const std::exception&) {
      // End a capture left open by the failure, so the stream is usable again, and never retry.
      cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
      if (cudaStreamIsCapturing(impl_->stream.stream(), &status) == cudaSuccess &&
          status != cudaStreamCaptureStatusNone) {
        cudaGraph_t g = nullptr;
        cudaStreamEndCapture(impl_->stream.stream(), &g);
        if (g != nullptr) cudaGraphDestroy(g);
      }
      cudaGetLastError();
      impl_->graphs_failed = true;
      impl_->graphs.clear();
      return forward(x);
    }
    it = impl_->graphs.emplace(key, std::move(c)).first;
  }
  it->second.input.copy_(x, /*non_blocking=*/true);
  it->second.graph->replay();
  return it->second.output;
}

void CudaPath::Synchronize() const { impl_->stream.synchronize(); }

int CudaPath::captured_graphs() const { return static_cast<int>(impl_->graphs.size()); }

#else  // !VMAE_CUDA

struct CudaPath::Impl {};

bool CudaPath::Compiled() { return false; }
CudaPath::CudaPath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaPath::~CudaPath() = default;

std::unique_ptr<CudaPath> CudaPath::Create(const torch::Device& device, const CudaOptions&) {
  throw CoreError(codes::kDeviceUnavailable, "Device '" + device.str() +
                                                 "' was requested, but this build of videomae-node has no CUDA "
                                                 "path (it was compiled against a CPU-only libtorch)");
}

void CudaPath::MakeCurrent() const {}
torch::Tensor CudaPath::Upload(const torch::Tensor& host) { return host; }
torch::Tensor CudaPath::Run(const torch::Tensor& x,
                            const std::function<torch::Tensor(const torch::Tensor&)>& forward) {
  return forward(x);
}
void CudaPath::Synchronize() const {}
int CudaPath::captured_graphs() const { return 0; }

#endif  // VMAE_CUDA

}  // namespace vmae
