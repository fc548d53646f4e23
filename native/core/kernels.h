// The CPU kernels behind the fused operators (vmae::attention, vmae::linear), in plain C++ with no
// libtorch types. They are compiled once per instruction set (kernels_{avx512,avx2,generic}.cc,
// each with its own -m flags, see CMakeLists.txt) and SelectCpuKernels() picks one at run time.
// Those files include no libtorch or standard-library templates, so no inline function compiled
// for AVX-512 can leak into code that runs on a CPU without it. All kernels are single-threaded;
// the callers split the work over libtorch's intra-op threads.
#pragma once

#include <cstdint>

namespace vmae {
namespace kernels {

// --- attention: softmax(Q K^T) V for one (batch, head) -------------------------------------------

// Rows are tokens; the head dimension is contiguous (stride 1).
struct AttentionHead {
  const float* q;  // [n, d], row stride q_stride (floats); the softmax scale is already in q
  const float* k;  // [n, d], row stride k_stride
  const float* v;  // [n, d], row stride v_stride
  float* out;      // [n, d], row stride out_stride
  int64_t q_stride, k_stride, v_stride, out_stride;
  int64_t n, d;
};

// Sizes are in floats; every buffer must be 64-byte aligned.
struct AttentionKernel {
  // The per-head buffer that pack fills (K and V in the layout tile reads), and tile's scratch.
  int64_t (*packed_size)(int64_t n, int64_t d);
  int64_t (*scratch_size)(int64_t n, int64_t d, int64_t tile_rows);
  // Packs one head's K and V into `packed`.
  void (*pack)(const AttentionHead& head, float* packed);
  // Output rows [row0, row0 + rows) of one head, rows <= tile_rows.
  void (*tile)(const AttentionHead& head, const float* packed, int64_t row0, int64_t rows,
               int64_t tile_rows, float* scratch);
};

// --- linear: y = act(x W^T + bias) (+ residual) with W packed once ------------------------------

enum LinearActivation : int { kLinearNone = 0, kLinearGelu = 1 };  // GELU: the exact (erf) one

struct LinearArgs {
  const float* x;         // [m, k], row stride ldx
  const float* packed;    // W [n, k] as packed by LinearKernel::pack
  const float* bias;      // [n] or null
  const float* residual;  // [m, n] (row stride ldr) added after the activation, or null
  float* y;               // [m, n], row stride ldy
  int64_t ldx, ldr, ldy;
  int64_t m, n, k;
  int activation;
};

struct LinearKernel {
  int64_t panel;  // output columns per packed panel
  // Floats of W [n, k] once packed: ceil(n / panel) panels of [k, panel], zero-padded.
  int64_t (*packed_size)(int64_t n, int64_t k);
  void (*pack)(const float* w, int64_t n, int64_t k, float* packed);
  // Rows [m0, m1) x panels [p0, p1) of y.
  void (*run)(const LinearArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
};

struct CpuKernels {
  const char* isa;  // "avx512", "avx2" or "generic"
  AttentionKernel attention;
  LinearKernel linear;
};

// Sync. The kernels for this CPU: the widest instruction set it supports, unless the environment
// variable VIDEOMAE_CPU_ISA names a narrower one ("avx2", "generic"). Chosen once per process.
// Never throws.
const CpuKernels& SelectCpuKernels();

// Sync. The kernels for an instruction set by name; null when this build or this CPU lacks it.
const CpuKernels* FindCpuKernels(const char* isa);

// Sync, never throws. Whether the CPU has AMX tiles with bfloat16 / float16 (cpuid), where
// oneDNN's and libtorch's own bfloat16 kernels (scaled_dot_product_attention) are fastest.
bool CpuHasAmxBf16();
bool CpuHasAmxFp16();

// Sync, never throws. AVX-512 F, BW, VL and DQ: what libtorch 1.x asks of a CPU before its oneDNN
// runs bfloat16 matrix work natively (mkldnn_bf16_device_check); without them it emulates it.
bool CpuHasAvx512Core();

// The tables defined by kernels_{avx512,avx2,generic}.cc. Call them only after checking the CPU
// (FindCpuKernels does).
const CpuKernels* Avx512Kernels();
const CpuKernels* Avx2Kernels();
const CpuKernels* GenericKernels();

}  // namespace kernels
}  // namespace vmae
