#include "server/compute_slots.h"

#include <omp.h>

#include <thread>

#include "absl/time/time.h"

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
    absl::MutexLock lock(&mu_);
    auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return in_use_ < slots_;
    };
    // Wake up now and then to notice cancellation of a queued call.
    while (!mu_.AwaitWithTimeout(absl::Condition(&free),
                                 absl::Milliseconds(20))) {
      mu_.Unlock();
      absl::Status s = CheckStop(stop, "waiting for a compute slot");
      mu_.Lock();
      if (!s.ok()) return s;
    }
    ++in_use_;
  }
  // gRPC threads come and go; setting this per lease is cheap and makes
  // sure every thread that computes has a team size of 1.
  omp_set_num_threads(1);
  return Lease(this);
}

void ComputeSlots::Release() {
  absl::MutexLock lock(&mu_);
  --in_use_;
}

}  // namespace embedsearch
