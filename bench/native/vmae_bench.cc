// A plain C++ libtorch benchmark, for comparisons without Node:
//
//   vmae_bench model MODEL.pt [--device cpu|cuda[:N]] [--dtype float32|float16|bfloat16]
//              [--batch B] [--iters I] [--warmup W] [--threads N] [--fused 0|1 (the addon's load-time rewrites)]
//              [--tf32 0|1] [--profile FILE]
//     torch::jit::load + module.to + forward in a loop, as a minimal C++ program would (no
//     graph rewrite unless --fused 1). Prints one JSON line: load_ms, first_call_ms, lat_ms[].
//   vmae_bench attention [--tokens N] [--heads H] [--dim D] [--batch B] [--iters I] [--threads N]
//     The attention alone on q/k/v views of one fused qkv tensor: unfused ATen ops vs
//     vmae::Attention; min and median wall and process-CPU ms, and the largest difference.
//   vmae_bench linear [--rows M] [--in K] [--out N] [--gelu 0|1] [--iters I] [--threads N]
//     aten::linear (+ gelu) vs vmae::linear with a packed weight.
//
// Built by CMake as the optional target `vmae_bench` (not part of `all`).

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>
#include <torch/version.h>

#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define VMAE_HAS_LEGACY_PROFILER 1
#endif

#ifdef VMAE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/attention.h"
#include "core/device.h"
#include "core/graph_passes.h"
#include "core/linear.h"

namespace {

double NowMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

std::map<std::string, std::string> Flags(int argc, char** argv, int first) {
  std::map<std::string, std::string> f;
  for (int i = first; i + 1 < argc; i += 2) f[std::string(argv[i]).substr(2)] = argv[i + 1];
  return f;
}

std::string Get(const std::map<std::string, std::string>& f, const char* k, const char* dflt) {
  auto it = f.find(k);
  return it == f.end() ? dflt : it->second;
}

std::string Json(const std::vector<double>& xs) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < xs.size(); ++i) o << (i ? "," : "") << xs[i];
  o << "]";
  return o.str();
}

void Sync(const torch::Device& d) {
#ifdef VMAE_CUDA
  if (d.is_cuda()) c10::cuda::getCurrentCUDAStream(d.index()).synchronize();
#else
  (void)d;
#endif
}

int ModelBench(const std::string& path, const std::map<std::string, std::string>& f) {
  const auto device = vmae::ParseDevice(Get(f, "device", "cpu"));
  const auto dtype = vmae::ParseModelDtype(Get(f, "dtype", "float32"));
  const int batch = std::stoi(Get(f, "batch", "1"));
  const int iters = std::stoi(Get(f, "iters", "10"));
  const int warmup = std::stoi(Get(f, "warmup", "2"));
  const bool fused = Get(f, "fused", "0") == "1";
  if (Get(f, "tf32", "0") == "1") {
    at::globalContext().setAllowTF32CuBLAS(true);
    at::globalContext().setAllowTF32CuDNN(true);
  }
  const int shape_t = std::stoi(Get(f, "frames", "16"));
  const int size = std::stoi(Get(f, "size", "224"));
  c10::InferenceMode guard;
  double t = NowMs();
  auto module = torch::jit::load(path, device);
  module.eval();
  module.to(device, dtype);
  vmae::OptimizeReport report;
  if (fused) module = vmae::OptimizeForInference(module, device, dtype, &report);
  Sync(device);
  const double load_ms = NowMs() - t;
  auto host = torch::randn({batch, shape_t, 3, size, size});
  if (device.is_cuda()) host = host.pin_memory();
  auto run = [&] {
    auto x = host.to(device, /*non_blocking=*/true).to(dtype);
    auto out = module.forward({x});  // logits, or (logits, embedding) since videomae-node/2
    auto y = (out.isTuple() ? out.toTuple()->elements()[0].toTensor() : out.toTensor()).to(torch::kCPU, torch::kFloat32);
    return y;
  };
  t = NowMs();
  run();
  const double first_ms = NowMs() - t;
  for (int i = 1; i < warmup; ++i) run();
  std::vector<double> lat, cpu;
  for (int i = 0; i < iters; ++i) {
    t = NowMs();
    const double c = CpuMs();
    run();
    lat.push_back(NowMs() - t);
    cpu.push_back(CpuMs() - c);
  }
  const std::string trace = Get(f, "profile", "");
  if (!trace.empty()) {
#ifdef VMAE_HAS_LEGACY_PROFILER
    // A chrome://tracing file of one more forward, per ATen op.
    torch::autograd::profiler::RecordProfile profile(trace);
    run();
#else
    std::fprintf(stderr, "vmae_bench: --profile needs the legacy autograd profiler, absent from this libtorch\n");
#endif
  }
  std::printf("{\"runtime\":\"cpp-libtorch\",\"libtorch\":\"%s\",\"device\":\"%s\",\"batch\":%d,"
              "\"fused_attention\":%d,\"fused_linear\":%d,\"threads\":%d,\"load_ms\":%.3f,\"first_call_ms\":%.3f,\"lat_ms\":%s,"
              "\"cpu_ms\":%s}\n",
              TORCH_VERSION, device.str().c_str(), batch, report.fused_attention, report.fused_linear,
              at::get_num_threads(), load_ms,
              first_ms, Json(lat).c_str(), Json(cpu).c_str());
  return 0;
}

int AttentionBench(const std::map<std::string, std::string>& f) {
  const int64_t n = std::stoll(Get(f, "tokens", "1568"));
  const int64_t h = std::stoll(Get(f, "heads", "12"));
  const int64_t d = std::stoll(Get(f, "dim", "64"));
  const int64_t b = std::stoll(Get(f, "batch", "1"));
  const int iters = std::stoi(Get(f, "iters", "10"));
  c10::InferenceMode guard;
  torch::manual_seed(0);
  // The exporter's layout: qkv [B, N, 3, H, D] permuted to [3, B, H, N, D]; q carries the scale.
  auto qkv = torch::randn({b, n, 3, h, d}).permute({2, 0, 3, 1, 4});
  auto q = qkv[0] * (1.0 / std::sqrt(static_cast<double>(d))) * 2.0;
  q = qkv[0].copy_(q);
  auto k = qkv[1], v = qkv[2];
  auto ref = vmae::UnfusedAttention(q.to(torch::kFloat64), k.to(torch::kFloat64), v.to(torch::kFloat64));
  auto time = [&](auto&& fn, const char* name) {
    std::vector<double> wall, cpu;
    torch::Tensor out;
    for (int i = 0; i < iters + 1; ++i) {
      const double w0 = NowMs(), c0 = CpuMs();
      out = fn();
      if (i > 0) {
        wall.push_back(NowMs() - w0);
        cpu.push_back(CpuMs() - c0);
      }
    }
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    const double diff = (out.to(torch::kFloat64) - ref).abs().max().item<double>();
    std::printf("{\"op\":\"%s\",\"tokens\":%lld,\"heads\":%lld,\"dim\":%lld,\"batch\":%lld,\"threads\":%d,"
                "\"wall_min_ms\":%.3f,\"wall_p50_ms\":%.3f,\"cpu_min_ms\":%.3f,\"cpu_p50_ms\":%.3f,"
                "\"max_abs_diff_vs_f64\":%.3g,\"isa\":\"%s\"}\n",
                name, (long long)n, (long long)h, (long long)d, (long long)b, at::get_num_threads(),
                wall.front(), wall[wall.size() / 2], cpu.front(), cpu[cpu.size() / 2], diff,
                vmae::CpuKernelIsa());
  };
  time([&] { return vmae::UnfusedAttention(q, k, v); }, "unfused");
  time([&] { return vmae::Attention(q, k, v); }, "fused");
  return 0;
}

int LinearBench(const std::map<std::string, std::string>& f) {
  const int64_t m = std::stoll(Get(f, "rows", "1568"));
  const int64_t k = std::stoll(Get(f, "in", "768"));
  const int64_t n = std::stoll(Get(f, "out", "3072"));
  const int64_t act = std::stoll(Get(f, "gelu", "0"));
  const int iters = std::stoi(Get(f, "iters", "10"));
  c10::InferenceMode guard;
  torch::manual_seed(0);
  auto x = torch::randn({m, k});
  auto w = torch::randn({n, k}) * 0.05;
  auto b = torch::randn({n});
  auto packed = vmae::PackLinearWeight(w);
  auto ref_fn = [&] { auto y = torch::linear(x, w, b); return act ? torch::gelu(y) : y; };
  auto ref = ref_fn();
  auto time = [&](auto&& fn, const char* name) {
    std::vector<double> wall, cpu;
    torch::Tensor out;
    for (int i = 0; i < iters + 1; ++i) {
      const double w0 = NowMs(), c0 = CpuMs();
      out = fn();
      if (i > 0) {
        wall.push_back(NowMs() - w0);
        cpu.push_back(CpuMs() - c0);
      }
    }
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    const double gflop = 2.0 * m * k * n / 1e9;
    std::printf("{\"op\":\"%s\",\"rows\":%lld,\"in\":%lld,\"out\":%lld,\"gelu\":%lld,\"threads\":%d,"
                "\"wall_min_ms\":%.3f,\"cpu_min_ms\":%.3f,\"gflops_per_cpu_s\":%.1f,\"max_abs_diff\":%.3g,\"isa\":\"%s\"}\n",
                name, (long long)m, (long long)k, (long long)n, (long long)act, at::get_num_threads(), wall.front(),
                cpu.front(), gflop / (cpu.front() / 1e3), (out - ref).abs().max().item<double>(), vmae::CpuKernelIsa());
  };
  time(ref_fn, "aten");
  time([&] { return vmae::PackedLinear(x, packed, b, c10::nullopt, act, n); }, "vmae");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: vmae_bench model MODEL.pt [--flags] | vmae_bench attention [--flags]\n");
    return 2;
  }
  const std::string mode = argv[1];
  try {
    if (mode == "attention") {
      auto f = Flags(argc, argv, 2);
      if (f.count("threads")) at::set_num_threads(std::stoi(f["threads"]));
      return AttentionBench(f);
    }
    if (mode == "linear") {
      auto f = Flags(argc, argv, 2);
      if (f.count("threads")) at::set_num_threads(std::stoi(f["threads"]));
      return LinearBench(f);
    }
    if (mode == "model" && argc >= 3) {
      auto f = Flags(argc, argv, 3);
      if (f.count("threads")) at::set_num_threads(std::stoi(f["threads"]));
      return ModelBench(argv[2], f);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmae_bench: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: vmae_bench model MODEL.pt [--flags] | vmae_bench attention [--flags]\n");
  return 2;
}
