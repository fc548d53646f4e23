// Errors that cross the core boundary. Every failure in native/core surfaces as a CoreError whose
// code is one of the stable strings below; the addon turns it into a JS VideoMAEError.
#pragma once

#include <stdexcept>
#include <string>

namespace vmae {

namespace codes {
inline constexpr const char* kInvalidInput = "VMAE_INVALID_INPUT";
inline constexpr const char* kModelLoadFailed = "VMAE_MODEL_LOAD_FAILED";
inline constexpr const char* kDeviceUnavailable = "VMAE_DEVICE_UNAVAILABLE";
inline constexpr const char* kOutOfMemory = "VMAE_OUT_OF_MEMORY";
inline constexpr const char* kDisposed = "VMAE_DISPOSED";
inline constexpr const char* kRuntime = "VMAE_RUNTIME";
inline constexpr const char* kBusy = "VMAE_BUSY";
inline constexpr const char* kAborted = "VMAE_ABORTED";
}  // namespace codes

// A failure with a stable code. Thrown by every core function.
class CoreError : public std::runtime_error {
 public:
  CoreError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Runs fn and rethrows any libtorch error as a CoreError: out-of-memory becomes
// VMAE_OUT_OF_MEMORY, anything else `fallback_code`. `doing` names the step for the message.
template <typename Fn>
auto TranslateErrors(const char* doing, const char* fallback_code, Fn&& fn) -> decltype(fn());

}  // namespace vmae

#include "core/errors_inl.h"
