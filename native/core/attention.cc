#include "core/attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/kernels.h"

namespace vmae {

namespace {

// Query rows per tile: a tile's score rows (rows x N floats) stay in L2 through softmax and P*V.
int64_t TileRows() {
  static const int64_t rows = [] {
    const char* env = std::getenv("VIDEOMAE_ATTENTION_TILE");
    const int64_t v = env ? std::atoll(env) : 0;
    return v >= 1 && v <= 4096 ? v : int64_t{48};
  }();
  return rows;
}

// Units of parallel work per task so that each task has at least ~1 MFLOP (or element moves).
int64_t GrainFor(int64_t work_per_unit) {
  constexpr int64_t kMinWork = int64_t{1} << 20;
  return std::max<int64_t>(1, kMinWork / std::max<int64_t>(1, work_per_unit));
}

bool CanFuseOnCpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  if (!q.device().is_cpu() || !k.device().is_cpu() || !v.device().is_cpu()) return false;
  if (q.scalar_type() != torch::kFloat32 || k.scalar_type() != torch::kFloat32 ||
      v.scalar_type() != torch::kFloat32) {
    return false;
  }
  if (q.dim() != 4 || k.sizes() != q.sizes() || v.sizes() != q.sizes()) return false;
  return q.size(2) > 0 && q.size(3) > 0 && !q.requires_grad() && !k.requires_grad() && !v.requires_grad();
}

torch::Tensor FusedCpu(torch::Tensor q, torch::Tensor k, torch::Tensor v) {
  // The kernel needs the head dimension contiguous; the exported q/k/v views of qkv already are.
  if (q.stride(3) != 1) q = q.contiguous();
  if (k.stride(3) != 1) k = k.contiguous();
  if (v.stride(3) != 1) v = v.contiguous();
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), D = q.size(3);
  const auto& kernel = kernels::SelectCpuKernels().attention;
  auto out = at::empty({B, N, H, D}, q.options());
  const int64_t packed_size = kernel.packed_size(N, D);
  auto packed = at::empty({B * H, packed_size}, q.options());

  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  float* op = out.data_ptr<float>();
  float* pp = packed.data_ptr<float>();
  auto head = [&](int64_t bh) {
    const int64_t b = bh / H, h = bh % H;
    kernels::AttentionHead a;
    a.q = qp + b * q.stride(0) + h * q.stride(1);
    a.k = kp + b * k.stride(0) + h * k.stride(1);
    a.v = vp + b * v.stride(0) + h * v.stride(1);
    a.out = op + (b * N * H + h) * D;
    a.q_stride = q.stride(2);
    a.k_stride = k.stride(2);
    a.v_stride = v.stride(2);
    a.out_stride = H * D;
    a.n = N;
    a.d = D;
    return a;
  };

  // Grains keep tiny problems on one thread, where waking the others costs more than the work.
  at::parallel_for(0, B * H, GrainFor(2 * N * D), [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) kernel.pack(head(bh), pp + bh * packed_size);
  });
  const int64_t tile = std::min(TileRows(), N);
  const int64_t tiles = (N + tile - 1) / tile;
  const int64_t scratch_size = kernel.scratch_size(N, D, tile);
  at::parallel_for(0, B * H * tiles, GrainFor(4 * tile * N * D), [&](int64_t begin, int64_t end) {
    auto scratch = at::empty({scratch_size}, at::TensorOptions().dtype(at::kFloat));
    float* sp = scratch.data_ptr<float>();
    for (int64_t u = begin; u < end; ++u) {
      const int64_t bh = u / tiles, t = u % tiles;
      const int64_t row0 = t * tile;
      kernel.tile(head(bh), pp + bh * packed_size, row0, std::min(tile, N - row0), tile, sp);
    }
  });
  return out.permute({0, 2, 1, 3});
}

#if VMAE_HAS_SDPA
// at::scaled_dot_product_attention with scale 1: the exporter folded 1/sqrt(d) into q.
torch::Tensor Sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false, 1.0);
}
#endif

}  // namespace

CpuAttention CpuAttentionFor(torch::ScalarType dtype) {
  // Read at every load, so that one process can compare the choices (bench/ab.js).
  const char* forced = std::getenv("VIDEOMAE_CPU_ATTENTION");
  if (forced != nullptr) {
    if (std::strcmp(forced, "unfused") == 0) return CpuAttention::kUnfused;
    if (std::strcmp(forced, "fused") == 0) return CpuAttention::kFused;
#if VMAE_HAS_SDPA
    if (std::strcmp(forced, "sdpa") == 0) return CpuAttention::kSdpa;
#endif
  }
  if (dtype == torch::kFloat32) return CpuAttention::kFused;
  if (dtype != torch::kBFloat16 && dtype != torch::kHalf) return CpuAttention::kUnfused;
#if VMAE_HAS_SDPA
  // With AMX, libtorch's flash kernel runs its GEMMs on the tiles. Without, its bfloat16 path is
  // no faster than float32 (docs/PERFORMANCE.md), and our float32 kernel beats both.
  if (dtype == torch::kBFloat16 ? kernels::CpuHasAmxBf16() : kernels::CpuHasAmxFp16()) return CpuAttention::kSdpa;
#endif
  return CpuAttention::kFused;
}

const char* CpuAttentionName(CpuAttention a) {
  switch (a) {
    case CpuAttention::kFused: return "vmae";
    case CpuAttention::kSdpa: return "sdpa";
    default: return "aten";
  }
}

torch::Tensor UnfusedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return at::matmul(at::softmax(at::matmul(q, k.transpose(-2, -1)), -1), v);
}

torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  if (CanFuseOnCpu(q, k, v)) return FusedCpu(q, k, v);
  const auto dtype = q.scalar_type();
  if (q.device().is_cpu() && (dtype == torch::kBFloat16 || dtype == torch::kHalf) && k.scalar_type() == dtype &&
      v.scalar_type() == dtype) {
    // The float32 kernel on a float32 copy of q, k, v (a few MB): faster than any bfloat16
    // attention libtorch has on a CPU without AMX.
    auto q32 = q.to(torch::kFloat32), k32 = k.to(torch::kFloat32), v32 = v.to(torch::kFloat32);
    if (CanFuseOnCpu(q32, k32, v32)) return FusedCpu(q32, k32, v32).to(dtype);
  }
#if VMAE_HAS_SDPA
  // Flash / memory-efficient kernels.
  if (q.is_cuda() && q.dim() == 4 && k.dim() == 4 && v.dim() == 4) return Sdpa(q, k, v);
#endif
  return UnfusedAttention(q, k, v);
}

void RegisterAttentionOp() {
  // A function-local static, not a static initializer: this object file sits in a static library,
  // where an unreferenced initializer would be dropped by the linker.
  static const auto registry = torch::RegisterOperators().op(
      "vmae::attention(Tensor q, Tensor k, Tensor v) -> Tensor", &Attention);
  (void)registry;
#if VMAE_HAS_SDPA
  static const auto sdpa = torch::RegisterOperators().op("vmae::sdpa(Tensor q, Tensor k, Tensor v) -> Tensor", &Sdpa);
  (void)sdpa;
#endif
}

const char* CpuKernelIsa() { return kernels::SelectCpuKernels().isa; }

}  // namespace vmae
