// Attention for the exported VideoMAE blocks: softmax(Q K^T) V, the 1/sqrt(d) scale already folded
// into Q by the exporter. Registered as the TorchScript operator vmae::attention, which the
// load-time graph rewrite (core/graph_passes.h) puts in place of matmul -> softmax -> matmul.
#pragma once

#include <torch/types.h>

namespace vmae {

// Sync. q, k, v: [..., N, D] with equal leading dimensions. Returns softmax(q k^T, -1) v.
//  - CPU float32, 4-D [B, H, N, D], same N and D for q, k and v: the fused tiled kernel
//    (core/kernels.h), parallel over (batch, head, query tile) on the intra-op threads.
//    The result is a [B, H, N, D] view of a [B, N, H, D] buffer, so the block's following
//    transpose(1, 2).reshape(B, N, H*D) is free.
//  - CUDA with libtorch >= 2.1: at::scaled_dot_product_attention with scale 1.
//  - anything else: the unfused ATen ops, exactly as exported.
// Throws c10::Error on shape mismatches (from ATen).
torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// Sync. The same computation with the unfused ATen ops, for comparisons.
torch::Tensor UnfusedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// Sync, thread-safe, idempotent. Registers vmae::attention(Tensor q, Tensor k, Tensor v) -> Tensor.
void RegisterAttentionOp();

// Sync. The instruction set of the CPU kernels this process uses (attention and linear):
// "avx512", "avx2" or "generic" (VIDEOMAE_CPU_ISA may narrow it). Never throws.
const char* CpuKernelIsa();

}  // namespace vmae
