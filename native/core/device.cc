#include "core/device.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include <cctype>

#include "core/errors.h"

namespace vmae {

namespace {
bool AllDigits(const std::string& s) {
  if (s.empty() || s.size() > 3) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}
}  // namespace

torch::Device ParseDevice(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  int index = 0;
  if (name == "cuda") {
    index = 0;
  } else if (name.rfind("cuda:", 0) == 0 && AllDigits(name.substr(5))) {
    index = std::stoi(name.substr(5));
  } else {
    throw CoreError(codes::kInvalidInput,
                    "Expected device 'cpu', 'cuda' or 'cuda:N' but received '" + name + "'");
  }
  if (!torch::cuda::is_available()) {
    throw CoreError(codes::kDeviceUnavailable,
                    "Device '" + name + "' was requested, but this libtorch (" TORCH_VERSION
                    ") has no usable CUDA: it is a CPU-only build or no GPU/driver is visible. "
                    "Use device 'cpu', or install a CUDA libtorch with `npx videomae setup --cuda auto`");
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    throw CoreError(codes::kDeviceUnavailable, "Device '" + name + "' was requested, but only " +
                                                   std::to_string(count) + " CUDA device(s) are visible");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

torch::ScalarType ParseModelDtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  throw CoreError(codes::kInvalidInput,
                  "Expected dtype 'float32', 'float16' or 'bfloat16' but received '" + name + "'");
}

torch::ScalarType ParseTensorDtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float64") return torch::kFloat64;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "uint8") return torch::kUInt8;
  throw CoreError(codes::kInvalidInput, "Unknown tensor dtype '" + name + "'");
}

std::string DtypeName(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "float32";
    case torch::kFloat64: return "float64";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kUInt8: return "uint8";
    default: return c10::toString(type);
  }
}

}  // namespace vmae
