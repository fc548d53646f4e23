// Implementation of TranslateErrors (a template, so it lives in a header).
#pragma once

#include <c10/util/Exception.h>

#include <new>

namespace vmae {

namespace detail {
inline bool LooksLikeOutOfMemory(const std::string& what) {
  return what.find("out of memory") != std::string::npos ||
         what.find("DefaultCPUAllocator: can't allocate memory") != std::string::npos ||
         what.find("CUDA out of memory") != std::string::npos;
}
}  // namespace detail

template <typename Fn>
auto TranslateErrors(const char* doing, const char* fallback_code, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const CoreError&) {
    throw;
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    if (detail::LooksLikeOutOfMemory(what)) {
      throw CoreError(codes::kOutOfMemory, std::string("Out of memory while ") + doing + ": " + what);
    }
    throw CoreError(fallback_code, std::string("Failed while ") + doing + ": " + what);
  } catch (const std::bad_alloc&) {
    throw CoreError(codes::kOutOfMemory, std::string("Out of memory while ") + doing);
  } catch (const std::exception& e) {
    throw CoreError(fallback_code, std::string("Failed while ") + doing + ": " + e.what());
  }
}

}  // namespace vmae
