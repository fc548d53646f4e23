// A linear layer with its weight packed once at load time for the CPU kernel (core/kernels.h), and
// its bias, exact GELU and residual add done while the output is stored. Registered as the
// TorchScript operator vmae::linear, which the load-time graph rewrite (core/graph_passes.h) puts
// in place of aten::linear (+ aten::gelu, + aten::add) in a frozen CPU float32 graph.
#pragma once

#include <torch/types.h>
#include <torch/version.h>

// oneDNN's pre-packed linear with fused epilogues (mkldnn::_linear_pointwise and
// mkldnn::_reorder_linear_weight, what TorchInductor uses on the CPU) from libtorch 2.1 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define VMAE_HAS_ONEDNN_LINEAR 1
#else
#define VMAE_HAS_ONEDNN_LINEAR 0
#endif

namespace vmae {

// Sync. W [n, k] float32 (any device-less CPU tensor) -> the packed layout the kernel reads,
// [ceil(n / panel), k, panel]. Throws c10::Error unless W is a 2-D CPU float32 tensor.
torch::Tensor PackLinearWeight(const torch::Tensor& weight);

// Sync. x [..., k] float32 on the CPU, packed from PackLinearWeight (n output features), bias [n]
// or undefined, residual [..., n] or undefined, activation 0 (none) or 1 (exact GELU).
// Returns act(x W^T + bias) + residual, [..., n] float32, parallel over the intra-op threads.
// Throws c10::Error on mismatched shapes.
torch::Tensor PackedLinear(const torch::Tensor& x, const torch::Tensor& packed, const c10::optional<torch::Tensor>& bias,
                           const c10::optional<torch::Tensor>& residual, int64_t activation, int64_t n);

// Sync. Whether oneDNN's packed linear can run `dtype` here: libtorch >= 2.1 built with oneDNN
// (mkldnn), and for bfloat16 / float16 a CPU that oneDNN supports for it. Never throws.
bool OneDnnLinearAvailable(torch::ScalarType dtype);

// Sync, never throws. Whether libtorch runs bfloat16 matrix work on this CPU with the CPU's own
// instructions: oneDNN's check on libtorch >= 2.1 (AVX-512 BW/VL/DQ, AVX2-VNNI-2 or AMX), AVX-512
// BW/VL/DQ before. Elsewhere libtorch emulates bfloat16, several times slower than float32.
bool CpuRunsBfloat16();

// Sync. W [n, k] (float32, bfloat16 or float16, CPU) -> oneDNN's packed (opaque) weight for
// inputs of about `rows` rows. Throws c10::Error where OneDnnLinearAvailable is false.
torch::Tensor PackOneDnnLinearWeight(const torch::Tensor& weight, int64_t rows);

// Sync. The oneDNN counterpart of PackedLinear: act(x W^T + bias) + residual, in x's dtype, with
// the activation and the residual add done in the GEMM's epilogue (the add only when `residual`
// has the output's shape and dtype; otherwise it is added afterwards). Throws c10::Error.
torch::Tensor OneDnnLinear(const torch::Tensor& x, const torch::Tensor& packed,
                           const c10::optional<torch::Tensor>& bias,
                           const c10::optional<torch::Tensor>& residual, int64_t activation);

// Sync. Non-overlapping patches of x [B, C, T, H, W] (any strides) as GEMM rows:
// [B, (T/kt)(H/kh)(W/kw), C*kt*kh*kw], patches in (t, h, w) order, each in (c, t, h, w) order, so
// that conv3d(x, w, b, stride = kernel) flattened over (t, h, w) and transposed equals
// linear(patchify(x), w.reshape(O, -1), b). Throws c10::Error unless the sizes divide.
torch::Tensor Patchify(const torch::Tensor& x, int64_t kt, int64_t kh, int64_t kw);

// Sync, thread-safe, idempotent. Registers
// vmae::linear(Tensor x, Tensor packed, Tensor? bias, Tensor? residual, int activation, int n) -> Tensor.
// Also vmae::patchify(Tensor x, int kt, int kh, int kw) -> Tensor and, on libtorch >= 2.1,
// vmae::onednn_linear(Tensor x, Tensor packed, Tensor? bias, Tensor? residual, int activation).
void RegisterLinearOp();

}  // namespace vmae
