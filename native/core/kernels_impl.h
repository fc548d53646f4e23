// The CPU kernels (core/kernels.h), written once with GCC/Clang vector extensions and compiled once
// per instruction set. The including file defines:
//   VMAE_KERNEL_ISA      "avx512" | "avx2" | "generic"
//   VMAE_KERNEL_GETTER   the name of the function that returns the table
//   VMAE_W               floats per vector register (16, 8, 4)
//   VMAE_SR, VMAE_SC     attention scores: rows x vectors of keys held in registers
//   VMAE_PR, VMAE_PC     attention P*V: rows x vectors of the head dimension held in registers
//   VMAE_LR, VMAE_LC     linear: rows x vectors of output columns held in registers
// Everything but the getter has internal linkage, and nothing here instantiates a library
// template, so code built with -mavx512f never serves a caller on another CPU.

#include <cstdint>
#include <cstring>

#include "core/kernels.h"

#if !defined(__GNUC__)
#error "core/kernels_impl.h needs GCC or Clang vector extensions"
#endif

namespace vmae {
namespace kernels {
namespace {

constexpr int64_t W = VMAE_W;

typedef float vf __attribute__((vector_size(W * 4)));
typedef int32_t vi __attribute__((vector_size(W * 4)));
typedef float vf_u __attribute__((vector_size(W * 4), aligned(4), may_alias));

inline int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
inline vf Load(const float* p) { return *reinterpret_cast<const vf_u*>(p); }
inline void Store(float* p, vf x) { *reinterpret_cast<vf_u*>(p) = x; }
inline vf Splat(float x) {
  // x - 0 (unlike x + 0) is exactly x for every x, -0 included, so this folds to one broadcast.
  const vf zero = {};
  return x - zero;
}
// mask ? a : b, lane by lane, for a mask from a vector comparison (all ones or all zeros per
// lane). Bitwise, because Clang does not take vector operands in `?:` as GCC does.
inline vf Select(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
inline vf Max(vf a, vf b) { return Select(a > b, a, b); }
inline float ReduceMax(vf a) {
  float m = a[0];
  for (int64_t i = 1; i < W; ++i) m = a[i] > m ? a[i] : m;
  return m;
}
inline float ReduceSum(vf a) {
  float s = 0;
  for (int64_t i = 0; i < W; ++i) s += a[i];
  return s;
}

// exp(x) for x <= 0 (Cephes expf: range reduction by ln 2, degree-6 polynomial), within 2 ulp;
// below -87 it returns about 1.6e-38 instead of a denormal, which no caller can notice.
inline vf Exp(vf x) {
  const vf lo = Splat(-87.0f);
  x = Select(x < lo, lo, x);
  const vf magic = Splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  vf n = (x * 1.44269504088896341f + magic) - magic;
  vf r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = Splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  return p * (vf)e;  // a vector cast reinterprets the bits: 2^n
}

#include "core/attention_kernel_impl.h"
#include "core/linear_kernel_impl.h"

const CpuKernels kKernels = {
    VMAE_KERNEL_ISA,
    {AttnPackedSize, AttnScratchSize, AttnPack, AttnTile},
    {LNR, LinearPackedSize, LinearPack, LinearRun},
};

}  // namespace

const CpuKernels* VMAE_KERNEL_GETTER() { return &kKernels; }

}  // namespace kernels
}  // namespace vmae
