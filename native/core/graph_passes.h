// Load-time rewrites of a loaded TorchScript module. The file on disk stays plain, portable
// TorchScript (Python loads it as is); only the in-memory graphs change.
#pragma once

#include <torch/script.h>

namespace vmae {

struct OptimizeReport {
  bool frozen = false;
  int fused_attention = 0;  // attention calls now made through vmae::attention
  int fused_linear = 0;     // linear calls now made through vmae::linear
};

// Sync. The load-time rewrites, for a module in eval mode already on its device and dtype:
//  - on the CPU in float32: Freeze, FuseAttention, FuseLinear;
//  - elsewhere: FuseAttention (on CUDA it maps to scaled_dot_product_attention, libtorch >= 2.1).
// VIDEOMAE_DISABLE_FUSED_ATTENTION=1 and VIDEOMAE_DISABLE_FUSED_LINEAR=1 (the latter also skips
// freezing) turn each off. Returns the module to run; fills `report` when given. Throws c10::Error.
torch::jit::Module OptimizeForInference(torch::jit::Module module, const torch::Device& device,
                                        torch::ScalarType dtype, OptimizeReport* report);

// Sync. Replaces every attention written as
//   softmax(matmul(q, transpose(k, -2, -1)), -1) -> matmul(., v)
// in every method of `module` and of its submodules by one vmae::attention(q, k, v) call
// (core/attention.h). Returns the number of attention calls the module's instances now make
// (0 when nothing matched). Throws c10::Error.
int FuseAttention(torch::jit::Module& module);

// Sync. torch::jit::freeze of a module in eval mode: forward inlined, parameters turned into
// constants (the frozen graph optimizations run too). Only the in-memory copy is frozen. Throws
// c10::Error.
torch::jit::Module Freeze(const torch::jit::Module& module);

// Sync. In a frozen module's forward, replaces every aten::linear whose weight is a constant 2-D
// CPU float32 tensor by vmae::linear (core/linear.h) with that weight packed once, absorbing the
// exact aten::gelu that follows it, or the aten::add (alpha 1) of a residual. The original weight
// constants are dropped as they are replaced, so memory does not double. Returns the number of
// linear calls rewritten. Throws c10::Error.
int FuseLinear(torch::jit::Module& frozen);

}  // namespace vmae
