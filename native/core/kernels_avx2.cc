// The CPU kernels for AVX2 + FMA (compiled with -mavx2 -mfma); see CMakeLists.txt for the flags.
#define VMAE_KERNEL_ISA "avx2"
#define VMAE_KERNEL_GETTER Avx2Kernels
#define VMAE_W 8
#define VMAE_SR 6  // attention scores: rows x vectors held in registers
#define VMAE_SC 2
#define VMAE_PR 6  // attention P*V
#define VMAE_PC 2
#define VMAE_LR 6  // linear: rows x vectors held in registers
#define VMAE_LC 2
#include "core/kernels_impl.h"
