#include "addon/convert.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/errors.h"

namespace vmae {

namespace {

// Refuses anything above this many bytes per request before allocating it (64 GiB).
constexpr int64_t kMaxRequestBytes = int64_t{64} << 30;

std::string Describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return std::to_string(v.As<Napi::Number>().DoubleValue()) + " of type number";
  if (v.IsString()) return "'" + v.As<Napi::String>().Utf8Value() + "' of type string";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsArray()) return "an array";
  if (v.IsTypedArray()) return "a typed array";
  if (v.IsFunction()) return "a function";
  return "an object";
}

[[noreturn]] void Invalid(const std::string& expected, const Napi::Value& v) {
  throw CoreError(codes::kInvalidInput, "Expected " + expected + " but received " + Describe(v));
}

// `buffer` is the ArrayBuffer or SharedArrayBuffer behind a view; only the former can be detached.
void ThrowIfDetached(napi_env env, napi_value buffer) {
  bool is_array_buffer = false;
  if (napi_is_arraybuffer(env, buffer, &is_array_buffer) != napi_ok || !is_array_buffer) return;
  if (Napi::ArrayBuffer(env, buffer).IsDetached()) {
    throw CoreError(codes::kInvalidInput,
                    "Expected a live buffer but received a detached (transferred) ArrayBuffer");
  }
}

}  // namespace

int64_t ToInt(const Napi::Value& value, const char* what, int64_t min, int64_t max) {
  if (!value.IsNumber()) Invalid(std::string("an integer for ") + what, value);
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min) ||
      d > static_cast<double>(max)) {
    Invalid(std::string("an integer in ") + std::to_string(min) + ".." + std::to_string(max) + " for " +
                what,
            value);
  }
  return static_cast<int64_t>(d);
}

std::string ToString(const Napi::Value& value, const char* what) {
  if (!value.IsString()) Invalid(std::string("a string for ") + what, value);
  return value.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> ToShape(const Napi::Value& value, const char* what) {
  if (!value.IsArray()) Invalid(std::string("an array of dimensions for ") + what, value);
  auto arr = value.As<Napi::Array>();
  if (arr.Length() == 0 || arr.Length() > 8) Invalid(std::string("1 to 8 dimensions for ") + what, value);
  std::vector<int64_t> shape;
  int64_t numel = 1;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const int64_t d = ToInt(arr.Get(i), what, 1, int64_t{1} << 31);
    if (numel > kMaxRequestBytes / d) {
      throw CoreError(codes::kInvalidInput, std::string("The shape given for ") + what + " is too large");
    }
    numel *= d;
    shape.push_back(d);
  }
  return shape;
}

torch::Tensor CopyToTensor(const Napi::Value& value, torch::ScalarType dtype,
                           const std::vector<int64_t>& shape, StagingPool& pool) {
  const void* data = nullptr;
  size_t bytes = 0;
  // The views' data pointers come from the napi_get_*_info calls, which (unlike Napi::ArrayBuffer)
  // also accept views over a SharedArrayBuffer; they already include the byte offset.
  napi_env env = value.Env();
  if (value.IsTypedArray()) {
    napi_typedarray_type type;
    size_t length = 0;
    size_t offset = 0;
    void* base = nullptr;
    napi_value buffer = nullptr;
    if (napi_get_typedarray_info(env, value, &type, &length, &base, &buffer, &offset) != napi_ok) {
      Invalid("a readable TypedArray", value);
    }
    ThrowIfDetached(env, buffer);
    data = base;
    bytes = value.As<Napi::TypedArray>().ByteLength();
  } else if (value.IsDataView()) {
    size_t length = 0;
    size_t offset = 0;
    void* base = nullptr;
    napi_value buffer = nullptr;
    if (napi_get_dataview_info(env, value, &length, &base, &buffer, &offset) != napi_ok) {
      Invalid("a readable DataView", value);
    }
    ThrowIfDetached(env, buffer);
    data = base;
    bytes = length;
  } else if (value.IsArrayBuffer()) {
    auto ab = value.As<Napi::ArrayBuffer>();
    ThrowIfDetached(env, ab);
    data = ab.Data();
    bytes = ab.ByteLength();
  } else {
    Invalid("a TypedArray, DataView or ArrayBuffer", value);
  }
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const int64_t expected = numel * static_cast<int64_t>(c10::elementSize(dtype));
  if (static_cast<int64_t>(bytes) != expected) {
    throw CoreError(codes::kInvalidInput, "Expected a buffer of " + std::to_string(expected) +
                                              " bytes for shape " + c10::str(c10::IntArrayRef(shape)) +
                                              " but received " + std::to_string(bytes) + " bytes");
  }
  return TranslateErrors("copying the input", codes::kRuntime, [&] {
    auto tensor = pool.Empty(shape, dtype);
    if (bytes > 0) std::memcpy(tensor.data_ptr(), data, bytes);
    return tensor;
  });
}

PreprocessParams ToPreprocessParams(const Napi::Value& value) {
  if (!value.IsObject()) Invalid("preprocessing parameters", value);
  auto o = value.As<Napi::Object>();
  PreprocessParams p;
  p.shortest_edge = ToInt(o.Get("shortestEdge"), "shortestEdge", 1, 8192);
  p.crop_size = ToInt(o.Get("cropSize"), "cropSize", 1, 8192);
  auto rescale = o.Get("rescaleFactor");
  if (!rescale.IsNumber()) Invalid("a number for rescaleFactor", rescale);
  p.rescale_factor = rescale.As<Napi::Number>().DoubleValue();
  for (const char* key : {"mean", "std"}) {
    auto arr = o.Get(key);
    if (!arr.IsArray() || arr.As<Napi::Array>().Length() != 3) Invalid(std::string("3 numbers for ") + key, arr);
    for (uint32_t i = 0; i < 3; ++i) {
      auto v = arr.As<Napi::Array>().Get(i);
      if (!v.IsNumber()) Invalid(std::string("numbers in ") + key, v);
      (std::strcmp(key, "mean") == 0 ? p.mean : p.std)[i] = v.As<Napi::Number>().DoubleValue();
    }
  }
  ValidatePreprocessParams(p);
  return p;
}

Napi::Float32Array ToFloat32Array(Napi::Env env, const torch::Tensor& tensor) {
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(tensor.numel()));
  // (an encoder-only model's logits are [B, 0]: no data pointer to copy from)
  if (tensor.numel() > 0) std::memcpy(out.Data(), tensor.data_ptr<float>(), tensor.numel() * sizeof(float));
  return out;
}

Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  auto error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

}  // namespace vmae
