// Device and dtype names as users write them ("cpu", "cuda", "cuda:1"; "float32", "bfloat16").
#pragma once

#include <torch/types.h>

#include <string>

namespace vmae {

// Sync. Parses "cpu", "cuda" or "cuda:N". Throws CoreError VMAE_INVALID_INPUT for anything else,
// and VMAE_DEVICE_UNAVAILABLE when CUDA is asked for but this libtorch has none or N is too big.
torch::Device ParseDevice(const std::string& name);

// Sync. Parses "float32" | "float16" | "bfloat16". Throws CoreError VMAE_INVALID_INPUT.
torch::ScalarType ParseModelDtype(const std::string& name);

// Sync. Parses a tensor element type name ("float32", "float64", "float16", "bfloat16", "uint8").
// Throws CoreError VMAE_INVALID_INPUT.
torch::ScalarType ParseTensorDtype(const std::string& name);

// Sync. The name ParseTensorDtype accepts for `type`.
std::string DtypeName(torch::ScalarType type);

}  // namespace vmae
