#include "core/linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <vector>

#include "core/kernels.h"

namespace vmae {

namespace {
// Output rows per unit of parallel work: a multiple of every kernel's row block (6 and 4), small
// enough to spread a 1568-token clip over many threads, big enough to reuse each panel from L2.
constexpr int64_t kRowChunk = 96;
}  // namespace

torch::Tensor PackLinearWeight(const torch::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2 && weight.device().is_cpu() && weight.scalar_type() == torch::kFloat32,
              "PackLinearWeight: expected a 2-D CPU float32 weight, got ", weight.sizes(), " ",
              weight.scalar_type());
  const auto& kernel = kernels::SelectCpuKernels().linear;
  auto w = weight.contiguous();
  const int64_t n = w.size(0), k = w.size(1);
  const int64_t panels = (n + kernel.panel - 1) / kernel.panel;
  auto packed = at::empty({panels, k, kernel.panel}, w.options());
  TORCH_INTERNAL_ASSERT(packed.numel() == kernel.packed_size(n, k));
  kernel.pack(w.data_ptr<float>(), n, k, packed.data_ptr<float>());
  return packed;
}

torch::Tensor PackedLinear(const torch::Tensor& x_in, const torch::Tensor& packed,
                           const c10::optional<torch::Tensor>& bias_in,
                           const c10::optional<torch::Tensor>& residual_in, int64_t activation, int64_t n) {
  const auto& kernel = kernels::SelectCpuKernels().linear;
  TORCH_CHECK(x_in.device().is_cpu() && x_in.scalar_type() == torch::kFloat32 && x_in.dim() >= 1,
              "vmae::linear: expected CPU float32 input, got ", x_in.scalar_type(), " on ", x_in.device());
  TORCH_CHECK(packed.dim() == 3 && packed.size(2) == kernel.panel && packed.is_contiguous() &&
                  packed.size(0) * kernel.panel >= n && x_in.size(-1) == packed.size(1),
              "vmae::linear: the packed weight ", packed.sizes(), " does not fit input ", x_in.sizes(),
              " and ", n, " outputs");
  TORCH_CHECK(activation == kernels::kLinearNone || activation == kernels::kLinearGelu,
              "vmae::linear: unknown activation ", activation);
  const int64_t k = packed.size(1);
  auto x = x_in.contiguous();
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = n;
  auto y = at::empty(out_shape, x.options());
  const int64_t m = k == 0 ? 0 : x.numel() / k;
  if (m == 0) return y;

  torch::Tensor bias, residual;
  if (bias_in && bias_in->defined()) {
    bias = bias_in->to(torch::kFloat32).contiguous();
    TORCH_CHECK(bias.numel() == n, "vmae::linear: bias of ", bias.numel(), " values for ", n, " outputs");
  }
  bool add_later = false;
  if (residual_in && residual_in->defined()) {
    // Fused only when no broadcasting is involved; otherwise added the ordinary way below.
    if (residual_in->sizes() == y.sizes() && residual_in->scalar_type() == torch::kFloat32) {
      residual = residual_in->contiguous();
    } else {
      add_later = true;
    }
  }
  kernels::LinearArgs a;
  a.x = x.data_ptr<float>();
  a.packed = packed.data_ptr<float>();
  a.bias = bias.defined() ? bias.data_ptr<float>() : nullptr;
  a.residual = residual.defined() ? residual.data_ptr<float>() : nullptr;
  a.y = y.data_ptr<float>();
  a.ldx = k;
  a.ldr = n;
  a.ldy = n;
  a.m = m;
  a.n = n;
  a.k = k;
  a.activation = static_cast<int>(activation);
  const int64_t panels = (n + kernel.panel - 1) / kernel.panel;
  const int64_t chunks = (m + kRowChunk - 1) / kRowChunk;
  // Panel-major units: consecutive units on one thread reuse the same panel of W from L2. The
  // grain keeps small products (a classifier head, a tiny model) on one thread.
  const int64_t unit_flops = 2 * std::min(m, kRowChunk) * k * kernel.panel;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, unit_flops));
  at::parallel_for(0, panels * chunks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t p = u / chunks, c = u % chunks;
      kernel.run(a, c * kRowChunk, std::min(m, (c + 1) * kRowChunk), p, p + 1);
    }
  });
  if (add_later) y = y + *residual_in;
  return y;
}

void RegisterLinearOp() {
  // A function-local static: see RegisterAttentionOp.
  static const auto registry = torch::RegisterOperators().op(
      "vmae::linear(Tensor x, Tensor packed, Tensor? bias, Tensor? residual, int activation, int n) -> Tensor",
      &PackedLinear);
  (void)registry;
}

}  // namespace vmae
