#include "core/linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <string>
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

torch::Tensor Patchify(const torch::Tensor& x, int64_t kt, int64_t kh, int64_t kw) {
  TORCH_CHECK(x.dim() == 5 && kt > 0 && kh > 0 && kw > 0 && x.size(2) % kt == 0 && x.size(3) % kh == 0 &&
                  x.size(4) % kw == 0,
              "vmae::patchify: expected [B, C, T, H, W] divisible by (", kt, ", ", kh, ", ", kw, "), got ",
              x.sizes());
  const int64_t b = x.size(0), c = x.size(1), t = x.size(2) / kt, h = x.size(3) / kh, w = x.size(4) / kw;
  // Splitting dimensions is always a view; the permuted reshape is the one copy.
  return x.view({b, c, t, kt, h, kh, w, kw})
      .permute({0, 2, 4, 6, 1, 3, 5, 7})
      .reshape({b, t * h * w, c * kt * kh * kw});
}

#if VMAE_HAS_ONEDNN_LINEAR
namespace {

c10::OperatorHandle OneDnnOp(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

}  // namespace

bool OneDnnLinearAvailable(torch::ScalarType dtype) {
  try {
    if (!at::hasMKLDNN()) return false;
    OneDnnOp("mkldnn::_linear_pointwise", "");
    OneDnnOp("mkldnn::_reorder_linear_weight", "");
    if (dtype == torch::kFloat32) return true;
    const char* check = dtype == torch::kBFloat16 ? "mkldnn::_is_mkldnn_bf16_supported"
                        : dtype == torch::kHalf   ? "mkldnn::_is_mkldnn_fp16_supported"
                                                  : nullptr;
    if (check == nullptr) return false;
    torch::jit::Stack stack;
    OneDnnOp(check, "").callBoxed(&stack);
    return stack.size() == 1 && stack[0].toBool();
  } catch (const std::exception&) {
    return false;
  }
}

torch::Tensor PackOneDnnLinearWeight(const torch::Tensor& weight, int64_t rows) {
  TORCH_CHECK(weight.dim() == 2 && weight.device().is_cpu(), "PackOneDnnLinearWeight: expected a 2-D CPU weight, got ",
              weight.sizes());
  torch::jit::Stack stack{weight.contiguous(), c10::IValue(rows)};
  OneDnnOp("mkldnn::_reorder_linear_weight", "").callBoxed(&stack);
  return stack.at(0).toTensor();
}

torch::Tensor OneDnnLinear(const torch::Tensor& x_in, const torch::Tensor& packed,
                           const c10::optional<torch::Tensor>& bias,
                           const c10::optional<torch::Tensor>& residual, int64_t activation) {
  static const auto unary = OneDnnOp("mkldnn::_linear_pointwise", "");
  static const auto binary = OneDnnOp("mkldnn::_linear_pointwise", "binary");
  TORCH_CHECK(activation == kernels::kLinearNone || activation == kernels::kLinearGelu,
              "vmae::onednn_linear: unknown activation ", activation);
  auto x = x_in.contiguous();
  c10::IValue b = bias && bias->defined() ? c10::IValue(*bias) : c10::IValue();
  torch::jit::Stack stack;
  bool add_later = false;
  if (residual && residual->defined()) {
    std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
    out_shape.back() = packed.size(0);
    if (activation == kernels::kLinearNone && residual->sizes() == c10::IntArrayRef(out_shape) &&
        residual->scalar_type() == x.scalar_type()) {
      stack = {x, residual->contiguous(), packed, b, std::string("add")};
      binary.callBoxed(&stack);
      return stack.at(0).toTensor();
    }
    add_later = true;
  }
  c10::impl::GenericList scalars(c10::OptionalType::create(c10::NumberType::get()));
  const bool gelu = activation == kernels::kLinearGelu;
  stack = {x, packed, b, std::string(gelu ? "gelu" : "none"), scalars,
           gelu ? c10::IValue(std::string("none")) : c10::IValue()};
  unary.callBoxed(&stack);
  auto y = stack.at(0).toTensor();
  if (add_later) y = y + *residual;
  return y;
}

bool CpuRunsBfloat16() { return OneDnnLinearAvailable(torch::kBFloat16); }
#else
bool OneDnnLinearAvailable(torch::ScalarType) { return false; }

bool CpuRunsBfloat16() { return kernels::CpuHasAvx512Core(); }

torch::Tensor PackOneDnnLinearWeight(const torch::Tensor&, int64_t) {
  TORCH_CHECK(false, "oneDNN's packed linear needs libtorch >= 2.1");
}

torch::Tensor OneDnnLinear(const torch::Tensor&, const torch::Tensor&, const c10::optional<torch::Tensor>&,
                           const c10::optional<torch::Tensor>&, int64_t) {
  TORCH_CHECK(false, "oneDNN's packed linear needs libtorch >= 2.1");
}
#endif

void RegisterLinearOp() {
  // A function-local static: see RegisterAttentionOp.
  static const auto registry =
      torch::RegisterOperators()
          .op("vmae::linear(Tensor x, Tensor packed, Tensor? bias, Tensor? residual, int activation, int n) -> Tensor",
              &PackedLinear)
          .op("vmae::patchify(Tensor x, int kt, int kh, int kw) -> Tensor", &Patchify);
  (void)registry;
#if VMAE_HAS_ONEDNN_LINEAR
  static const auto onednn = torch::RegisterOperators().op(
      "vmae::onednn_linear(Tensor x, Tensor packed, Tensor? bias, Tensor? residual, int activation) -> Tensor",
      &OneDnnLinear);
  (void)onednn;
#endif
}

}  // namespace vmae
