// A loaded VideoMAE TorchScript module on one device, in one dtype. Not thread-safe: the addon
// calls it from a single inference thread, which must hold a c10::InferenceMode guard.
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "core/cuda_path.h"
#include "core/metadata.h"
#include "core/preprocess.h"

namespace vmae {

struct LoadOptions {
  std::string path;
  std::string device = "cpu";    // "cpu" | "cuda" | "cuda:N"
  std::string dtype = "float32"; // "float32" | "float16" | "bfloat16"
  // Load-time graph rewrites (core/graph_passes.h): the fused attention operator, and on the CPU
  // in float32 a frozen graph with packed linear layers. The environment variables
  // VIDEOMAE_DISABLE_FUSED_ATTENTION=1 and VIDEOMAE_DISABLE_FUSED_LINEAR=1 turn each one off.
  bool optimize = true;
};

struct ModelInfo {
  ArchiveInfo archive;
  int64_t parameter_bytes = 0;  // parameters and buffers, for external-memory accounting
  std::string device;           // canonical, e.g. "cuda:0"
  std::string dtype;
  int fused_attention = 0;      // attention calls rewritten to vmae::attention (0: unfused)
  int fused_linear = 0;         // linear calls rewritten to vmae::linear (0: none)
};

// The outputs of one forward, float32 on the CPU.
struct ModelOutput {
  torch::Tensor logits;     // [B, L]; L is 0 for an encoder-only model
  torch::Tensor embedding;  // [B, D]; undefined for a file exported before embeddings (logits only)
};

// Sync. True when no element of `x`, a floating tensor on the CPU, is NaN or +-Infinity: one pass
// over the exponent bits.
bool AllFinite(const torch::Tensor& x);

class Classifier {
 public:
  // Sync, slow (reads and casts the weights). Loads a file made by export_videomae.py, moves it to
  // the device and dtype, and puts it in eval mode. Throws CoreError VMAE_MODEL_LOAD_FAILED,
  // VMAE_DEVICE_UNAVAILABLE, VMAE_INVALID_INPUT or VMAE_OUT_OF_MEMORY.
  static std::unique_ptr<Classifier> Load(const LoadOptions& options);
  ~Classifier();

  const ModelInfo& info() const { return info_; }
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }

  // Sync. pixel_values [B,T,C,H,W] of any floating dtype on the CPU. Returns the float32 logits
  // [B,L] and embedding [B,D] of one forward, on the CPU. Throws CoreError VMAE_RUNTIME or
  // VMAE_OUT_OF_MEMORY.
  ModelOutput Forward(const torch::Tensor& pixel_values);

  // Sync. uint8 frames [K*T,H,W,3] on the CPU, K clips of T = num_frames frames each, all
  // preprocessed on the model's device with `crops` crops. Returns float32 logits [K*crops, L]
  // and embeddings [K*crops, D] on the CPU, clip-major. Throws CoreError.
  ModelOutput ForwardFrames(const torch::Tensor& frames, const PreprocessParams& params,
                            int64_t num_frames, int64_t crops);

  // Sync. Preprocessing alone: returns float32 [crops, N, 3, S, S] on the CPU. Throws CoreError.
  torch::Tensor PreprocessFrames(const torch::Tensor& frames, const PreprocessParams& params,
                                 int64_t crops);

  // Sync. One forward on zeros of `shape`; returns its outputs, whose widths are the number of
  // labels and the embedding size.
  ModelOutput Warmup(const std::vector<int64_t>& shape);

 private:
  Classifier(torch::jit::Module module, torch::Device device, torch::ScalarType dtype, ModelInfo info,
             std::unique_ptr<CudaPath> cuda);

  // Sends host data to the model's device: on CUDA through pinned staging, asynchronously on the
  // model's own stream (core/cuda_path.h).
  torch::Tensor Upload(const torch::Tensor& host);
  ModelOutput Run(const torch::Tensor& pixel_values);

  torch::jit::Module module_;
  torch::Device device_;
  torch::ScalarType dtype_;
  ModelInfo info_;
  std::unique_ptr<CudaPath> cuda_;  // null on the CPU
  // What the module returns, seen by its forward: a (logits, embedding) pair (files exported
  // since videomae-node/2), which travels as one [B, L + D] tensor with L = num_logits_, or logits only.
  bool has_embedding_ = false;
  int64_t num_logits_ = 0;
};

}  // namespace vmae
