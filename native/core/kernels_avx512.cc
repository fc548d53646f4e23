// The CPU kernels for AVX-512 (compiled with -mavx512f -mavx512dq -mfma); see CMakeLists.txt for the flags.
#define VMAE_KERNEL_ISA "avx512"
#define VMAE_KERNEL_GETTER Avx512Kernels
#define VMAE_W 16
#define VMAE_SR 6  // attention scores: rows x vectors held in registers
#define VMAE_SC 4
#define VMAE_PR 6  // attention P*V
#define VMAE_PC 4
#define VMAE_LR 6  // linear: rows x vectors held in registers
#define VMAE_LC 4
#include "core/kernels_impl.h"
