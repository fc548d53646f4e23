#include "core/kernels.h"

#include <cstdlib>
#include <cstring>

#if defined(VMAE_KERNELS_X86)
#include <cpuid.h>
#endif

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

namespace {
// cpuid leaf 7: subleaf 0 EDX bit 22 = AMX-BF16, bit 24 = AMX-TILE; subleaf 1 EAX bit 21 = AMX-FP16.
bool CpuidBit(unsigned subleaf, int reg, int bit) {
#if defined(VMAE_KERNELS_X86)
  unsigned r[4] = {0, 0, 0, 0};
  if (!__get_cpuid_count(7, subleaf, &r[0], &r[1], &r[2], &r[3])) return false;
  return (r[reg] >> bit) & 1u;
#else
  (void)subleaf, (void)reg, (void)bit;
  return false;
#endif
}
constexpr int kEax = 0, kEdx = 3;
}  // namespace

bool CpuHasAmxBf16() { return CpuidBit(0, kEdx, 24) && CpuidBit(0, kEdx, 22); }
bool CpuHasAmxFp16() { return CpuidBit(0, kEdx, 24) && CpuidBit(1, kEax, 21); }

bool CpuHasAvx512Core() {
#if defined(VMAE_KERNELS_X86)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

}  // namespace kernels
}  // namespace vmae
