#include "core/staging_pool.h"

#include <c10/core/impl/alloc_cpu.h>
#include <torch/torch.h>

namespace vmae {

std::shared_ptr<StagingPool> StagingPool::Create(size_t max_idle_bytes) {
  return std::shared_ptr<StagingPool>(new StagingPool(max_idle_bytes));
}

StagingPool::~StagingPool() {
  for (const auto& [bytes, data] : idle_) c10::free_cpu(data);
}

torch::Tensor StagingPool::Empty(c10::IntArrayRef shape, torch::ScalarType dtype) {
  const auto options = torch::TensorOptions().dtype(dtype).device(torch::kCPU);
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(shape)) * c10::elementSize(dtype);
  if (bytes < kMinPooledBytes) return torch::empty(shape, options);
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
  if (data == nullptr) data = c10::alloc_cpu(bytes);  // throws c10::Error when out of memory
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
  for (const auto& [bytes, data] : idle) c10::free_cpu(data);
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
  c10::free_cpu(data);
}

}  // namespace vmae
