#include "addon/inference_thread.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <chrono>

#include "core/errors.h"

namespace vmae {

InferenceThread::InferenceThread(ThreadOptions options, Completion done, BatchRunner batch_runner)
    : options_(options), done_(std::move(done)), batch_runner_(std::move(batch_runner)) {
  thread_ = std::thread([this] { Loop(); });
}

InferenceThread::~InferenceThread() { Stop(); }

void InferenceThread::Push(std::unique_ptr<Request> request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(request));
  }
  cv_.notify_one();
}

std::unique_ptr<Request> InferenceThread::Cancel(uint32_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if ((*it)->id == id) {
      auto request = std::move(*it);
      queue_.erase(it);
      return request;
    }
  }
  return nullptr;
}

std::vector<std::unique_ptr<Request>> InferenceThread::TakeQueued() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::unique_ptr<Request>> taken;
  for (auto& r : queue_) taken.push_back(std::move(r));
  queue_.clear();
  return taken;
}

void InferenceThread::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::vector<std::unique_ptr<Request>> InferenceThread::NextWork(std::unique_lock<std::mutex>& lock) {
  std::vector<std::unique_ptr<Request>> work;
  work.push_back(std::move(queue_.front()));
  queue_.pop_front();
  if (!work.front()->Batchable() || options_.max_batch_size <= 1) return work;

  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double, std::milli>(options_.max_batch_delay_ms);
  while (static_cast<int>(work.size()) < options_.max_batch_size && !stopping_) {
    if (!queue_.empty()) {
      if (!queue_.front()->Batchable()) break;
      work.push_back(std::move(queue_.front()));
      queue_.pop_front();
      continue;
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && queue_.empty()) break;
  }
  return work;
}

void InferenceThread::Loop() {
  // Thread-local settings: they must be made on this thread, once.
  at::init_num_threads();
  if (options_.threads > 0) at::set_num_threads(options_.threads);
  c10::InferenceMode inference_mode;
  WorkerState state;

  for (;;) {
    std::vector<std::unique_ptr<Request>> work;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      work = NextWork(lock);
    }
    auto fail = [&](const char* code, const std::string& message) {
      for (auto& r : work) {
        r->error_code = code;
        r->error_message = message;
      }
    };
    try {
      if (work.size() == 1) {
        work.front()->Execute(state);
      } else {
        std::vector<Request*> batch;
        for (auto& r : work) batch.push_back(r.get());
        batch_runner_(state, batch);
      }
    } catch (const CoreError& e) {
      fail(e.code().c_str(), e.what());
    } catch (const std::exception& e) {
      fail(codes::kRuntime, std::string("Unexpected error in the inference thread: ") + e.what());
    } catch (...) {
      fail(codes::kRuntime, "Unknown error in the inference thread");
    }
    for (auto& r : work) done_(std::move(r));
  }
  // The model's memory belongs to this thread's lifetime: free it here, not on the JS thread.
  state.classifier.reset();
}

}  // namespace vmae
