// A linear layer with its weight packed once at load time for the CPU kernel (core/kernels.h), and
// its bias, exact GELU and residual add done while the output is stored. Registered as the
// TorchScript operator vmae::linear, which the load-time graph rewrite (core/graph_passes.h) puts
// in place of aten::linear (+ aten::gelu, + aten::add) in a frozen CPU float32 graph.
#pragma once

#include <torch/types.h>

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

// Sync, thread-safe, idempotent. Registers
// vmae::linear(Tensor x, Tensor packed, Tensor? bias, Tensor? residual, int activation, int n) -> Tensor.
void RegisterLinearOp();

}  // namespace vmae
