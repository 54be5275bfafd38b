// A FIFO of items served in batches by a fixed set of worker threads.
//
// Why: with gRPC's sync API every in-flight Search had its own thread that
// slept until one of the N compute slots freed up; 16 concurrent clients
// meant a futex wake-up and extra context switches per query, and waiters
// were not served in arrival order (p99 = queueing luck). Now N workers
// (one per compute slot) take queued queries in arrival order, without
// sleeping while there is work, and each takes an even share of what is
// queued (at most max_batch) so the encoder runs one batch instead of many
// single images. Nothing waits to fill a batch: an idle server answers at
// once.
#ifndef EMBEDSEARCH_SERVER_BATCH_QUEUE_H_
#define EMBEDSEARCH_SERVER_BATCH_QUEUE_H_

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace embedsearch {

template <typename Item>
class BatchQueue {
 public:
  using Handler = std::function<void(std::vector<Item>& batch)>;

  // Starts `workers` threads (at least 1); each calls `handler` with 1 to
  // `max_batch` items in submission order (an even share of the queue).
  BatchQueue(int workers, size_t max_batch, Handler handler)
      : max_batch_(std::max<size_t>(1, max_batch)), handler_(std::move(handler)) {
    for (int i = 0; i < std::max(1, workers); ++i) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  // Handles every item already submitted, then joins the workers.
  ~BatchQueue() {
    {
      std::unique_lock lock(mu_);
      stopping_ = true;
    }
    has_work_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  BatchQueue(const BatchQueue&) = delete;
  BatchQueue& operator=(const BatchQueue&) = delete;

  void Submit(Item item) {
    {
      std::unique_lock lock(mu_);
      items_.push_back(std::move(item));
    }
    has_work_.notify_one();
  }

 private:
  void Work() {
    std::vector<Item> batch;
    while (true) {
      batch.clear();
      {
        std::unique_lock lock(mu_);
        has_work_.wait(lock, [this] { return stopping_ || !items_.empty(); });
        if (items_.empty()) return;  // stopping_ and drained
        // An even share of what is queued, so every worker gets some.
        const size_t share = (items_.size() + threads_.size() - 1) / threads_.size();
        const size_t n = std::min(max_batch_, share);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(items_.front()));
          items_.pop_front();
        }
        // Leave the rest to another worker rather than letting it idle.
        if (!items_.empty()) has_work_.notify_one();
      }
      handler_(batch);
    }
  }

  const size_t max_batch_;
  const Handler handler_;
  std::mutex mu_;
  std::condition_variable has_work_;
  std::deque<Item> items_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_BATCH_QUEUE_H_
