// Conversions between JS values and core structs. Every function validates what it reads and
// throws CoreError VMAE_INVALID_INPUT with an "Expected ... but received ..." message.
#pragma once

#include <napi.h>
#include <torch/types.h>

#include <string>
#include <vector>

#include "core/preprocess.h"
#include "core/staging_pool.h"

namespace vmae {

// Sync. An array of positive integers, the product of which fits comfortably in memory.
std::vector<int64_t> ToShape(const Napi::Value& value, const char* what);

// Sync. Copies a TypedArray / DataView / ArrayBuffer into a CPU tensor of `dtype` and `shape`
// from `pool`. The copy is taken now, so the caller may reuse, transfer or detach the buffer
// as soon as this returns.
torch::Tensor CopyToTensor(const Napi::Value& value, torch::ScalarType dtype,
                           const std::vector<int64_t>& shape, StagingPool& pool);

// Sync. { shortestEdge, cropSize, rescaleFactor, mean: [3], std: [3] }.
PreprocessParams ToPreprocessParams(const Napi::Value& value);

// Sync. A positive integer within [min, max].
int64_t ToInt(const Napi::Value& value, const char* what, int64_t min, int64_t max);

// Sync. A string property of an options object, or `fallback` when it is undefined.
std::string ToString(const Napi::Value& value, const char* what);

// Sync. A new Float32Array holding a copy of a contiguous float32 CPU tensor.
Napi::Float32Array ToFloat32Array(Napi::Env env, const torch::Tensor& tensor);

// Sync. An Error with a `code` property, as lib/errors.ts expects.
Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message);

}  // namespace vmae
