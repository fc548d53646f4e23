// The dedicated inference thread of one classifier: a FIFO of requests run one at a time (or
// merged into one batch) under c10::InferenceMode. Nothing here touches N-API: finished requests
// go to a completion callback, which the ClassifierWrap points at its thread-safe function.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/classifier.h"

namespace vmae {

// What the worker thread owns. Only the worker touches it.
struct WorkerState {
  std::unique_ptr<Classifier> classifier;
};

// One unit of work. Execute runs on the worker; the rest of the object belongs to the JS side.
struct Request {
  virtual ~Request() = default;
  // Worker thread. Throws CoreError on failure; must not touch N-API.
  virtual void Execute(WorkerState& state) = 0;
  // True for plain forwards of single clips, which the worker may merge into one batch.
  virtual bool Batchable() const { return false; }

  uint32_t id = 0;
  std::string error_code;     // set when Execute failed
  std::string error_message;
};

// Merges batchable requests into one forward. Implemented by the request type that supports it.
using BatchRunner = std::function<void(WorkerState&, std::vector<Request*>&)>;

struct ThreadOptions {
  int threads = 0;             // intra-op threads; 0 keeps libtorch's default
  int max_batch_size = 1;      // >1 enables dynamic batching of Batchable requests
  double max_batch_delay_ms = 0;
};

class InferenceThread {
 public:
  using Completion = std::function<void(std::unique_ptr<Request>)>;

  // Starts the thread. `done` is called on the worker thread after each request ran.
  InferenceThread(ThreadOptions options, Completion done, BatchRunner batch_runner);
  ~InferenceThread();

  // Any thread. Queues a request; it runs after everything queued before it.
  void Push(std::unique_ptr<Request> request);
  // Any thread. Removes and returns a queued (not yet running) request, or null.
  std::unique_ptr<Request> Cancel(uint32_t id);
  // Any thread. Removes and returns every queued request.
  std::vector<std::unique_ptr<Request>> TakeQueued();
  // Any thread but the worker. Drops what is queued, lets the running request finish, joins.
  // Idempotent.
  void Stop();

 private:
  void Loop();
  // Worker thread, lock held. Takes the next request plus any batchable ones behind it.
  std::vector<std::unique_ptr<Request>> NextWork(std::unique_lock<std::mutex>& lock);

  ThreadOptions options_;
  Completion done_;
  BatchRunner batch_runner_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Request>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vmae
