// Attention for the exported VideoMAE blocks: softmax(Q K^T) V, the 1/sqrt(d) scale already folded
// into Q by the exporter. Registered as the TorchScript operator vmae::attention, which the
// load-time graph rewrite (core/graph_passes.h) puts in place of matmul -> softmax -> matmul.
#pragma once

#include <torch/types.h>
#include <torch/version.h>

// at::scaled_dot_product_attention with a `scale` argument exists from libtorch 2.1 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define VMAE_HAS_SDPA 1
#else
#define VMAE_HAS_SDPA 0
#endif

namespace vmae {

// How vmae::attention computes on the CPU, per dtype (docs/PERFORMANCE.md has the measurements):
//  kFused    our tiled float32 kernel (bfloat16 / float16 inputs are cast to float32 around it);
//  kSdpa     at::scaled_dot_product_attention (libtorch >= 2.1: its flash kernel);
//  kUnfused  matmul -> softmax -> matmul, as exported.
enum class CpuAttention { kFused, kSdpa, kUnfused };

// Sync, never throws. The choice for `dtype`, made by the load-time rewrite (core/graph_passes.h):
// float32 -> kFused; bfloat16 and float16 -> kSdpa on libtorch >= 2.1 with AMX (bf16 / fp16
// tiles), else kFused (the float32 kernel on float32 copies of q, k and v).
// VIDEOMAE_CPU_ATTENTION=fused|sdpa|unfused overrides it where that implementation supports the
// dtype (read at each call).
CpuAttention CpuAttentionFor(torch::ScalarType dtype);

// "vmae", "sdpa" or "aten".
const char* CpuAttentionName(CpuAttention a);

// Sync. q, k, v: [..., N, D] with equal leading dimensions. Returns softmax(q k^T, -1) v.
//  - CPU float32 (bfloat16 / float16: cast to float32 and back), 4-D [B, H, N, D], same N and D
//    for q, k and v: the fused tiled kernel
//    (core/kernels.h), parallel over (batch, head, query tile) on the intra-op threads.
//    The result is a [B, H, N, D] view of a [B, N, H, D] buffer, so the block's following
//    transpose(1, 2).reshape(B, N, H*D) is free.
//  - CUDA with libtorch >= 2.1: at::scaled_dot_product_attention with scale 1.
//  - anything else: the unfused ATen ops, exactly as exported.
// Throws c10::Error on shape mismatches (from ATen).
torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// Sync. The same computation with the unfused ATen ops, for comparisons.
torch::Tensor UnfusedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// Sync, thread-safe, idempotent. Registers vmae::attention(Tensor q, Tensor k, Tensor v) -> Tensor
// and, on libtorch >= 2.1, vmae::sdpa(q, k, v): at::scaled_dot_product_attention with scale 1.
void RegisterAttentionOp();

// Sync. The instruction set of the CPU kernels this process uses (attention and linear):
// "avx512", "avx2" or "generic" (VIDEOMAE_CPU_ISA may narrow it). Never throws.
const char* CpuKernelIsa();

}  // namespace vmae
