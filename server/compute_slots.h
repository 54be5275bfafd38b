// Admission control for CPU work: at most N requests compute at once.
//
// Why: the machine this targets has 2 cores. gRPC's sync server runs each
// call on its own thread, and capping those threads makes gRPC refuse calls
// with RESOURCE_EXHAUSTED ("Server Threadpool Exhausted"). So gRPC keeps its
// (cheap, mostly blocked) threads, and every handler takes one of N compute
// slots (default: one per core) for its decode + encode + search, running
// single-threaded (encoder threads = 1, OpenMP threads = 1) inside it. 16
// concurrent clients then mean 2 busy threads and 14 waiting, not 32
// OpenMP threads fighting over 2 cores.
#ifndef EMBEDSEARCH_SERVER_COMPUTE_SLOTS_H_
#define EMBEDSEARCH_SERVER_COMPUTE_SLOTS_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedsearch {

// Polled while waiting and between stages of a request: non-OK (usually
// DEADLINE_EXCEEDED or CANCELLED) means stop and return that status. An
// empty function never stops.
using StopCheck = std::function<absl::Status(absl::string_view stage)>;

inline absl::Status CheckStop(const StopCheck& stop, absl::string_view stage) {
  return stop ? stop(stage) : absl::OkStatus();
}

class ComputeSlots {
 public:
  // `slots` <= 0 means one per hardware thread.
  explicit ComputeSlots(int slots);
  ComputeSlots(const ComputeSlots&) = delete;
  ComputeSlots& operator=(const ComputeSlots&) = delete;

  int slots() const { return slots_; }

  // Holds a slot until destroyed. Also pins this thread's OpenMP team size
  // to 1 so FAISS and Eigen inside the slot do not fan out.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : owner_(other.owner_) {
      other.owner_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    ~Lease();

   private:
    friend class ComputeSlots;
    explicit Lease(ComputeSlots* owner) : owner_(owner) {}
    ComputeSlots* owner_;
  };

  // Blocks until a slot is free; gives up with `stop`'s status when the
  // call is cancelled or its deadline passes while queued.
  absl::StatusOr<Lease> Acquire(const StopCheck& stop);
  // A slot if one is free right now; nullopt otherwise (never waits).
  std::optional<Lease> TryAcquire();

 private:
  void Release();

  const int slots_;
  std::mutex mu_;
  std::condition_variable slot_freed_;
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_COMPUTE_SLOTS_H_
