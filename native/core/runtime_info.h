// What this build of the addon was compiled against and what it can see at run time.
#pragma once

#include <string>

namespace vmae {

struct RuntimeInfo {
  std::string libtorch_version;  // TORCH_VERSION of the headers this was built with
  bool cuda_compiled = false;    // the libtorch found at build time has CUDA
  bool cuda_available = false;   // a CUDA device is usable now
  int cuda_device_count = 0;
  int num_threads = 0;           // libtorch's default intra-op thread count
  bool cpu_bfloat16 = false;     // dtype bfloat16 is allowed on the CPU: libtorch runs it natively
};

// Sync. Never throws.
RuntimeInfo GetRuntimeInfo();

}  // namespace vmae
