// The CPU kernels for any CPU (the compiler's baseline: SSE2 on x86-64, NEON on arm64); see CMakeLists.txt for the flags.
#define VMAE_KERNEL_ISA "generic"
#define VMAE_KERNEL_GETTER GenericKernels
#define VMAE_W 4
#define VMAE_SR 4  // attention scores: rows x vectors held in registers
#define VMAE_SC 2
#define VMAE_PR 4  // attention P*V
#define VMAE_PC 2
#define VMAE_LR 4  // linear: rows x vectors held in registers
#define VMAE_LC 2
#include "core/kernels_impl.h"
