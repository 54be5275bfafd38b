#include "server/compute_slots.h"

#include <omp.h>

#include <chrono>
#include <thread>

namespace embedsearch {

ComputeSlots::ComputeSlots(int slots)
    : slots_(slots > 0 ? slots
                       : std::max(1u, std::thread::hardware_concurrency())) {}

ComputeSlots::Lease::~Lease() {
  if (owner_ != nullptr) owner_->Release();
}

absl::StatusOr<ComputeSlots::Lease> ComputeSlots::Acquire(
    const StopCheck& stop) {
  {
    std::unique_lock lock(mu_);
    // Wake up now and then to notice cancellation of a queued call.
    while (!slot_freed_.wait_for(lock, std::chrono::milliseconds(20),
                                 [this] { return in_use_ < slots_; })) {
      lock.unlock();
      absl::Status s = CheckStop(stop, "waiting for a compute slot");
      lock.lock();
      if (!s.ok()) return s;
    }
    ++in_use_;
  }
  // gRPC threads come and go; setting this per lease is cheap and makes
  // sure every thread that computes has a team size of 1.
  omp_set_num_threads(1);
  return Lease(this);
}

std::optional<ComputeSlots::Lease> ComputeSlots::TryAcquire() {
  {
    std::unique_lock lock(mu_);
    if (in_use_ >= slots_) return std::nullopt;
    ++in_use_;
  }
  omp_set_num_threads(1);
  return Lease(this);
}

void ComputeSlots::Release() {
  {
    std::unique_lock lock(mu_);
    --in_use_;
  }
  slot_freed_.notify_one();
}

}  // namespace embedsearch
