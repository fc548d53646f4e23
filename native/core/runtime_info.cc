#include "core/runtime_info.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "core/linear.h"

namespace vmae {

RuntimeInfo GetRuntimeInfo() {
  RuntimeInfo info;
  info.libtorch_version = TORCH_VERSION;
#ifdef VMAE_CUDA
  info.cuda_compiled = true;
#endif
  try {
    info.cuda_available = torch::cuda::is_available();
    info.cuda_device_count = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (...) {
    info.cuda_available = false;
  }
  info.num_threads = at::get_num_threads();
  info.cpu_bfloat16 = CpuRunsBfloat16();
  return info;
}

}  // namespace vmae
