// Reusable host buffers for the inputs copied at submit (native/addon/convert.h CopyToTensor).
//
// A freshly mapped multi-megabyte buffer takes a page fault per 4 KB page on its first write: a
// 9.6 MB clip costs about 5 ms to copy into new memory here, against 0.5 ms into memory already
// mapped. That copy runs on the JS thread, so the buffers of finished requests are kept for the
// next ones instead of going back to the system.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

namespace vmae {

class StagingPool : public std::enable_shared_from_this<StagingPool> {
 public:
  // Buffers below kMinPooledBytes are left to the ordinary allocator (it reuses small blocks well).
  static constexpr size_t kMinPooledBytes = 1 << 20;

  // Keeps at most `max_idle_bytes` of idle buffers; beyond that, released buffers are freed.
  static std::shared_ptr<StagingPool> Create(size_t max_idle_bytes);
  ~StagingPool();
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;

  // Any thread. An uninitialized contiguous CPU tensor whose storage comes back to this pool when
  // the last reference to it goes, on whatever thread that is. Throws c10::Error on allocation
  // failure, like torch::empty.
  torch::Tensor Empty(c10::IntArrayRef shape, torch::ScalarType dtype);

  // Any thread. Frees the idle buffers and keeps none from now on (the classifier is disposed).
  void Drain();

 private:
  explicit StagingPool(size_t max_idle_bytes) : max_idle_bytes_(max_idle_bytes) {}
  void Release(void* data, size_t bytes);

  size_t max_idle_bytes_;  // guarded by mutex_
  std::mutex mutex_;
  std::multimap<size_t, void*> idle_;  // by exact size: a classifier's clips are all one size
  size_t idle_bytes_ = 0;
};

}  // namespace vmae
