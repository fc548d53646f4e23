#include "core/classifier.h"

#include <torch/version.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "core/device.h"
#include "core/errors.h"
#include "core/graph_passes.h"
#include "core/linear.h"

namespace vmae {

namespace {

std::string DeviceName(const torch::Device& d) { return d.str(); }

// True when `version` ("2.5.1+cu124", "1.13.0a0+git7c98e70") names a later major.minor than this
// libtorch. Patch levels and local suffixes do not change which operators exist.
bool IsNewerTorch(const std::string& version) {
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &major, &minor) != 2) return false;
  return std::make_pair(major, minor) > std::make_pair(TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR);
}

// A load failure that mentions the exporting torch when it is newer than this libtorch: the usual
// cause is then an operator or schema this libtorch lacks.
[[noreturn]] void ThrowLoadFailure(const LoadOptions& o, const ArchiveInfo& a, const std::string& what) {
  std::string msg = "Failed to load TorchScript model '" + o.path + "': " + what;
  if (IsNewerTorch(a.torch_version)) {
    msg += " (the file was exported by torch " + a.torch_version + "; this libtorch is " TORCH_VERSION
           ". A file exported by a newer torch may need a newer libtorch: re-export it with the "
           "same or an older torch, or install a newer libtorch with `npx videomae setup`)";
  }
  throw CoreError(codes::kModelLoadFailed, msg);
}

// Whether any of `n` values has all exponent bits set (NaN or +-Infinity), for an unsigned
// integer view of a float type whose exponent bits are `mask`. Blocks without early exit inside
// let the compiler vectorize the loop.
template <typename Bits>
bool AnySpecial(const Bits* p, int64_t n, Bits mask) {
  constexpr int64_t kBlock = 4096;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    bool special = false;
    for (int64_t i = start; i < end; ++i) special |= (p[i] & mask) == mask;
    if (special) return true;
  }
  return false;
}

}  // namespace

bool AllFinite(const torch::Tensor& t) {
  const auto x = t.contiguous();
  const int64_t n = x.numel();
  switch (x.scalar_type()) {
    case torch::kFloat:
      return !AnySpecial(static_cast<const uint32_t*>(x.data_ptr()), n, uint32_t{0x7f800000});
    case torch::kDouble:
      return !AnySpecial(static_cast<const uint64_t*>(x.data_ptr()), n, uint64_t{0x7ff0000000000000});
    case torch::kHalf:
      return !AnySpecial(static_cast<const uint16_t*>(x.data_ptr()), n, uint16_t{0x7c00});
    case torch::kBFloat16:
      return !AnySpecial(static_cast<const uint16_t*>(x.data_ptr()), n, uint16_t{0x7f80});
    default:
      return true;  // integer tensors hold no NaN or Infinity
  }
}

std::unique_ptr<Classifier> Classifier::Load(const LoadOptions& options) {
  const torch::Device device = ParseDevice(options.device);
  const torch::ScalarType dtype = ParseModelDtype(options.dtype);
  if (device.is_cpu() && dtype == torch::kHalf && !OneDnnLinearAvailable(torch::kHalf)) {
    // libtorch's own float16 CPU kernels are slow fallbacks (1.13 lacks some: conv3d), so refuse.
    throw CoreError(codes::kInvalidInput,
                    "Expected dtype 'float32' or 'bfloat16' on this CPU but received 'float16': float16 on the "
                    "CPU needs libtorch 2.1 or newer and a CPU with AVX512-FP16 or AMX-FP16 (this libtorch is " TORCH_VERSION
                    "). Use 'bfloat16' for a fast low-precision mode, or device 'cuda'");
  }
  if (device.is_cpu() && dtype == torch::kBFloat16 && !CpuRunsBfloat16()) {
    // Emulated bfloat16 is several times slower than float32 (docs/PERFORMANCE.md): a trap, not a mode.
    throw CoreError(codes::kInvalidInput,
                    "Expected dtype 'float32' on this CPU but received 'bfloat16': this CPU has no bfloat16 "
                    "instructions that libtorch " TORCH_VERSION " uses (AVX-512 or AMX), so bfloat16 would be "
                    "emulated, several times slower than float32. Use 'float32' here (npx videomae doctor "
                    "checks the CPU)");
  }
  ArchiveInfo archive = ReadArchive(options.path);
  // On CUDA, first make the device and the model's own stream current on this (the inference)
  // thread, so that the weights are uploaded on that stream too.
  std::unique_ptr<CudaPath> cuda;
  if (device.is_cuda()) cuda = CudaPath::Create(device, CudaOptionsFromEnv());

  torch::jit::Module module;
  try {
    module = torch::jit::load(options.path, device);
  } catch (const c10::Error& e) {
    ThrowLoadFailure(options, archive, e.what_without_backtrace());
  } catch (const std::exception& e) {
    ThrowLoadFailure(options, archive, e.what());
  }
  return TranslateErrors("moving the model to its device and dtype", codes::kModelLoadFailed, [&] {
    module.eval();
    module.to(device, dtype);
    ModelInfo info;
    info.archive = std::move(archive);
    for (const auto& p : module.parameters()) info.parameter_bytes += p.numel() * p.element_size();
    for (const auto& b : module.buffers()) info.parameter_bytes += b.numel() * b.element_size();
    info.device = DeviceName(device);
    info.dtype = DtypeName(dtype);
    if (options.optimize) {
      OptimizeReport report;
      module = OptimizeForInference(std::move(module), device, dtype, &report);
      info.fused_attention = report.fused_attention;
      info.fused_linear = report.fused_linear;
    }
    return std::unique_ptr<Classifier>(
        new Classifier(std::move(module), device, dtype, std::move(info), std::move(cuda)));
  });
}

Classifier::Classifier(torch::jit::Module module, torch::Device device, torch::ScalarType dtype,
                       ModelInfo info, std::unique_ptr<CudaPath> cuda)
    : module_(std::move(module)), device_(device), dtype_(dtype), info_(std::move(info)), cuda_(std::move(cuda)) {}

Classifier::~Classifier() = default;

torch::Tensor Classifier::Upload(const torch::Tensor& host) {
  if (!cuda_) return host;
  return cuda_->Upload(host);
}

ModelOutput Classifier::Run(const torch::Tensor& pixel_values) {
  // Both outputs leave the device as one tensor: one copy, and one static output for a replayed
  // CUDA graph (a replay does not call `forward` again, hence the members).
  auto forward = [this](const torch::Tensor& x) {
    auto out = module_.forward({x});
    if (out.isTensor()) {
      has_embedding_ = false;
      return out.toTensor();
    }
    if (out.isTuple()) {
      const auto& e = out.toTuple()->elements();
      if (e.size() == 2 && e[0].isTensor() && e[1].isTensor()) {
        const auto& logits = e[0].toTensor();
        const auto& embedding = e[1].toTensor();
        if (logits.dim() != 2 || embedding.dim() != 2 || logits.size(0) != embedding.size(0)) {
          throw CoreError(codes::kRuntime, "The model returned outputs of shapes " + c10::str(logits.sizes()) +
                                               " and " + c10::str(embedding.sizes()) +
                                               ", expected [batch, labels] and [batch, embedding]");
        }
        has_embedding_ = true;
        num_logits_ = logits.size(1);
        return torch::cat({logits, embedding.to(logits.scalar_type())}, 1);
      }
    }
    throw CoreError(codes::kRuntime, "The model returned neither a tensor nor a (logits, embedding) pair");
  };
  auto x = pixel_values.to(dtype_);
  auto y = cuda_ ? cuda_->Run(x, forward) : forward(x);
  if (y.dim() != 2 || y.size(0) != pixel_values.size(0)) {
    throw CoreError(codes::kRuntime, "The model returned logits of shape " +
                                         c10::str(y.sizes()) + ", expected [batch, labels]");
  }
  y = y.to(torch::kCPU, torch::kFloat32).contiguous();
  if (!has_embedding_) return {y, torch::Tensor()};
  return {y.narrow(1, 0, num_logits_).contiguous(), y.narrow(1, num_logits_, y.size(1) - num_logits_).contiguous()};
}

ModelOutput Classifier::Forward(const torch::Tensor& pixel_values) {
  return TranslateErrors("running the model", codes::kRuntime,
                         [&] { return Run(Upload(pixel_values)); });
}

ModelOutput Classifier::ForwardFrames(const torch::Tensor& frames, const PreprocessParams& params,
                                      int64_t num_frames, int64_t crops) {
  if (num_frames <= 0 || frames.size(0) % num_frames != 0) {
    throw CoreError(codes::kInvalidInput, "Expected a multiple of " + std::to_string(num_frames) +
                                              " frames but received " + std::to_string(frames.size(0)));
  }
  auto x = Preprocess(Upload(frames), params, crops, dtype_);  // [C, K*T, 3, S, S]
  return TranslateErrors("running the model", codes::kRuntime, [&] {
    const int64_t clips = frames.size(0) / num_frames;
    // Clip-major order: view (k, c) is row k * crops + c.
    auto batch = x.view({crops, clips, num_frames, x.size(2), x.size(3), x.size(4)})
                     .transpose(0, 1)
                     .reshape({clips * crops, num_frames, x.size(2), x.size(3), x.size(4)});
    return Run(batch);
  });
}

torch::Tensor Classifier::PreprocessFrames(const torch::Tensor& frames, const PreprocessParams& params,
                                           int64_t crops) {
  auto x = Preprocess(Upload(frames), params, crops, torch::kFloat32);
  return TranslateErrors("copying preprocessed frames", codes::kRuntime,
                         [&] { return x.to(torch::kCPU).contiguous(); });
}

ModelOutput Classifier::Warmup(const std::vector<int64_t>& shape) {
  return TranslateErrors("warming up the model", codes::kModelLoadFailed, [&] {
    auto x = torch::zeros(shape, torch::TensorOptions().dtype(dtype_).device(device_));
    return Run(x);
  });
}

}  // namespace vmae
