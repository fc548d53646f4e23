#include "core/staging_pool.h"

#include <sys/mman.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "core/errors.h"

namespace vmae {
namespace {

constexpr size_t kHugePage = 2 << 20;

// Buffers of 2 MB or more are aligned to, and advised into, transparent huge pages: the first copy
// into a fresh buffer then takes one fault per 2 MB instead of one per 4 KB page (a 9.6 MB clip:
// 4-7 ms instead of 17-24 ms on this project's 2-core VM, where every fault exits to the hypervisor,
// when the kernel has huge pages free).
void* Allocate(size_t bytes) {
  const bool huge = bytes >= kHugePage;
  void* data = nullptr;
  if (posix_memalign(&data, huge ? kHugePage : 64, bytes) != 0) {
    throw CoreError(codes::kOutOfMemory, "Out of memory while copying an input of " + std::to_string(bytes) + " bytes");
  }
#ifdef MADV_HUGEPAGE
  if (huge) madvise(data, bytes & ~(kHugePage - 1), MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
  return data;
}

}  // namespace

std::shared_ptr<StagingPool> StagingPool::Create(size_t max_idle_bytes) {
  return std::shared_ptr<StagingPool>(new StagingPool(max_idle_bytes));
}

StagingPool::~StagingPool() {
  for (const auto& [bytes, data] : idle_) std::free(data);
}

torch::Tensor StagingPool::Empty(c10::IntArrayRef shape, torch::ScalarType dtype) {
  const auto options = torch::TensorOptions().dtype(dtype).device(torch::kCPU);
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(shape)) * c10::elementSize(dtype);
  void* data = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = idle_.find(bytes);
    if (it != idle_.end()) {
      data = it->second;
      idle_.erase(it);
      idle_bytes_ -= bytes;
    }
  }
  if (data == nullptr) data = Allocate(bytes);  // throws CoreError VMAE_OUT_OF_MEMORY
  auto self = shared_from_this();
  return torch::from_blob(
      data, shape, [self, bytes](void* p) { self->Release(p, bytes); }, options);
}

void StagingPool::Drain() {
  std::multimap<size_t, void*> idle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    max_idle_bytes_ = 0;
    idle.swap(idle_);
    idle_bytes_ = 0;
  }
  for (const auto& [bytes, data] : idle) std::free(data);
}

void StagingPool::Release(void* data, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_bytes_ + bytes <= max_idle_bytes_) {
      idle_.emplace(bytes, data);
      idle_bytes_ += bytes;
      return;
    }
  }
  std::free(data);
}

}  // namespace vmae
