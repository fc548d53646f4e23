// Reusable host buffers for the inputs copied at submit (native/addon/convert.h CopyToTensor).
//
// A fresh buffer takes a page fault per page on its first write: a 9.6 MB clip cost about 5 ms to
// copy into new memory on one machine and 24 ms on a VM whose faults exit to the hypervisor,
// against 0.5 ms into memory already mapped. Small inputs fault too, when the allocator has given
// the top of its heap back. That copy runs on the JS thread, so the buffers of finished requests,
// of every size, are kept for the next ones instead of going back to the system.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

namespace vmae {

class StagingPool : public std::enable_shared_from_this<StagingPool> {
 public:
  // Keeps at most `max_idle_bytes` of idle buffers; beyond that, released buffers are freed.
  static std::shared_ptr<StagingPool> Create(size_t max_idle_bytes);
  ~StagingPool();
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;

  // Any thread. An uninitialized contiguous CPU tensor whose storage comes back to this pool when
  // the last reference to it goes, on whatever thread that is. Throws CoreError
  // VMAE_OUT_OF_MEMORY on allocation failure.
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
