#include "core/kernels.h"

#include <cstdlib>
#include <cstring>

namespace vmae {
namespace kernels {

const CpuKernels* FindCpuKernels(const char* isa) {
  if (std::strcmp(isa, "generic") == 0) return GenericKernels();
#if defined(VMAE_KERNELS_X86)
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx512") == 0 && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma")) {
    return Avx512Kernels();
  }
  if (std::strcmp(isa, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return Avx2Kernels();
  }
#endif
  return nullptr;
}

const CpuKernels& SelectCpuKernels() {
  static const CpuKernels* selected = [] {
    const char* wanted = std::getenv("VIDEOMAE_CPU_ISA");
    const char* order[] = {"avx512", "avx2", "generic"};
    bool allowed = wanted == nullptr || *wanted == '\0';
    for (const char* isa : order) {
      if (!allowed && std::strcmp(isa, wanted) == 0) allowed = true;
      if (!allowed) continue;
      if (const CpuKernels* k = FindCpuKernels(isa)) return k;
    }
    return GenericKernels();
  }();
  return *selected;
}

}  // namespace kernels
}  // namespace vmae
