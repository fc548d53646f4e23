// Implementation of TranslateErrors (a template, so it lives in a header).
#pragma once

#include <c10/util/Exception.h>

#include <new>

namespace vmae {

namespace detail {
// TorchScript wraps the failing op's message in two tracebacks; the last line is the error itself.
inline std::string Summary(const std::string& what) {
  if (what.find("Traceback of TorchScript") == std::string::npos) return what;
  size_t end = what.find_last_not_of("\n ");
  if (end == std::string::npos) return what;
  size_t start = what.find_last_of('\n', end);
  std::string last = what.substr(start == std::string::npos ? 0 : start + 1, end - start);
  for (const char* prefix : {"builtins.RuntimeError: ", "RuntimeError: "}) {
    if (last.rfind(prefix, 0) == 0) last = last.substr(std::string(prefix).size());
  }
  return last;
}

inline bool LooksLikeOutOfMemory(const std::string& what) {
  return what.find("out of memory") != std::string::npos ||
         what.find("DefaultCPUAllocator: can't allocate memory") != std::string::npos ||
         what.find("CUDA out of memory") != std::string::npos;
}
[[noreturn]] inline void Rethrow(const char* doing, const char* fallback_code, const std::string& what) {
  const std::string summary = Summary(what);
  if (LooksLikeOutOfMemory(summary)) {
    throw CoreError(codes::kOutOfMemory, std::string("Out of memory while ") + doing + ": " + summary);
  }
  throw CoreError(fallback_code, std::string("Failed while ") + doing + ": " + summary);
}

}  // namespace detail

template <typename Fn>
auto TranslateErrors(const char* doing, const char* fallback_code, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const CoreError&) {
    throw;
  } catch (const c10::Error& e) {
    detail::Rethrow(doing, fallback_code, e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    throw CoreError(codes::kOutOfMemory, std::string("Out of memory while ") + doing);
  } catch (const std::exception& e) {
    // torch::jit::JITException (errors raised inside TorchScript) is a std::runtime_error.
    detail::Rethrow(doing, fallback_code, e.what());
  }
}

}  // namespace vmae
