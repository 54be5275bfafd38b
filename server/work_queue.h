// A FIFO of jobs run by a fixed set of worker threads.
//
// Why: with gRPC's sync API every in-flight Search had its own thread that
// slept until one of the N compute slots freed up; 16 concurrent clients
// meant a futex wake-up and two context switches per query on top of the
// work, and waiters were not served in arrival order (p99 = queueing luck).
// Search now uses gRPC's callback API: the handler only enqueues, and N
// workers (one per compute slot) take queries in arrival order without
// sleeping between them while there is work.
#ifndef EMBEDSEARCH_SERVER_WORK_QUEUE_H_
#define EMBEDSEARCH_SERVER_WORK_QUEUE_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace embedsearch {

class WorkQueue {
 public:
  // Starts `workers` threads (at least 1).
  explicit WorkQueue(int workers);
  // Runs every job already submitted, then joins the workers.
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `job`; jobs start in submission order.
  void Submit(std::function<void()> job);
  int workers() const { return static_cast<int>(threads_.size()); }

 private:
  void Work();

  std::mutex mu_;
  std::condition_variable has_work_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_WORK_QUEUE_H_
