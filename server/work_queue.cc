#include "server/work_queue.h"

#include <algorithm>
#include <utility>

namespace embedsearch {

WorkQueue::WorkQueue(int workers) {
  for (int i = 0; i < std::max(1, workers); ++i) {
    threads_.emplace_back([this] { Work(); });
  }
}

WorkQueue::~WorkQueue() {
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
  }
  has_work_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void WorkQueue::Submit(std::function<void()> job) {
  {
    std::unique_lock lock(mu_);
    jobs_.push_back(std::move(job));
  }
  has_work_.notify_one();
}

void WorkQueue::Work() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      has_work_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping_ and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace embedsearch
