// Load-time rewrites of a loaded TorchScript module. The file on disk stays plain, portable
// TorchScript (Python loads it as is); only the in-memory graphs change.
#pragma once

#include <torch/script.h>

namespace vmae {

// How linear layers run on the CPU, per dtype (docs/PERFORMANCE.md has the measurements):
//  kVmae    our packed kernel with fused epilogues (vmae::linear, float32 only);
//  kOneDnn  oneDNN's pre-packed linear with fused epilogues (vmae::onednn_linear, libtorch >= 2.1);
//  kAten    aten::linear as exported (no freezing).
enum class CpuLinear { kVmae, kOneDnn, kAten };
enum class LinearBackend { kVmae, kOneDnn };

// Sync, never throws. float32 -> kVmae; bfloat16 / float16 -> kOneDnn where OneDnnLinearAvailable,
// else kAten. VIDEOMAE_DISABLE_FUSED_LINEAR=1 -> kAten; VIDEOMAE_CPU_LINEAR=vmae|onednn|aten
// overrides the choice where that backend supports the dtype (read at each call).
CpuLinear CpuLinearFor(torch::ScalarType dtype);

// "vmae", "onednn" or "aten".
const char* CpuLinearName(CpuLinear l);

struct OptimizeReport {
  bool frozen = false;
  int patch_embedding = 0;  // conv3d patch embeddings rewritten as patchify + linear
  int fused_attention = 0;  // attention calls now made through vmae::attention
  int fused_linear = 0;     // linear calls now made through vmae::linear
};

// Sync. The load-time rewrites, for a module in eval mode already on its device and dtype:
//  - on the CPU, unless CpuLinearFor(dtype) is kAten: Freeze, PatchEmbeddingAsLinear, then
//    FuseLinear with that backend; and FuseAttention with the op CpuAttentionFor(dtype) names;
//  - elsewhere: FuseAttention with vmae::attention (on CUDA: SDPA, libtorch >= 2.1).
// VIDEOMAE_DISABLE_FUSED_ATTENTION=1 and VIDEOMAE_DISABLE_FUSED_LINEAR=1 (the latter also skips
// freezing) turn each off. Returns the module to run; fills `report` when given. Throws c10::Error.
torch::jit::Module OptimizeForInference(torch::jit::Module module, const torch::Device& device,
                                        torch::ScalarType dtype, OptimizeReport* report);

// Sync. Replaces every attention written as
//   softmax(matmul(q, transpose(k, -2, -1)), -1) -> matmul(., v)
// in every method of `module` and of its submodules by one call of `op`: vmae::attention(q, k, v)
// or vmae::sdpa(q, k, v) (core/attention.h). Returns the number of attention calls the module's
// instances now make (0 when nothing matched). Throws c10::Error.
int FuseAttention(torch::jit::Module& module, const std::string& op = "vmae::attention");

// Sync. torch::jit::freeze of a module in eval mode: forward inlined, parameters turned into
// constants (the frozen graph optimizations run too). Only the in-memory copy is frozen. Throws
// c10::Error.
torch::jit::Module Freeze(const torch::jit::Module& module);

// Sync. In a frozen module's forward, replaces every aten::linear whose weight is a constant 2-D
// CPU tensor (float32 for kVmae) by vmae::linear or vmae::onednn_linear (core/linear.h) with that
// weight packed once, absorbing the exact aten::gelu that follows it, or the aten::add (alpha 1)
// of a residual. The original weight constants are dropped as they are replaced, so memory does
// not double. Returns the number of linear calls rewritten. Throws c10::Error.
int FuseLinear(torch::jit::Module& frozen, LinearBackend backend = LinearBackend::kVmae);

// Sync. In a frozen module's forward, replaces conv3d(x, W, b) with stride = kernel and no padding
// followed by flatten(2).transpose(1, 2) (the tubelet embedding) by
// linear(vmae::patchify(x), W.reshape(O, -1), b), which FuseLinear then packs like any other
// linear layer. Returns the number rewritten. Throws c10::Error.
int PatchEmbeddingAsLinear(torch::jit::Module& frozen);

}  // namespace vmae
