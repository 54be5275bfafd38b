// OpenMP helpers with an explicit thread count.
//
// Work is split into contiguous static chunks, one per thread, so thread t
// always gets the same items for a given (n, threads): reductions over
// per-thread partial sums in thread order are deterministic.
#ifndef EMBEDSEARCH_CORE_NN_PARALLEL_H_
#define EMBEDSEARCH_CORE_NN_PARALLEL_H_

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace embedsearch {
namespace nn {

// `threads` <= 0 means the OpenMP default (omp_get_max_threads()).
inline int ResolveThreads(int threads) {
  return threads > 0 ? threads : std::max(1, omp_get_max_threads());
}

// Calls f(begin, end, slot) for contiguous chunks covering [0, n), at most
// one per thread; slot < min(threads, n) identifies the chunk. With one
// thread (or n <= 1) it runs inline with no OpenMP region, so tiny work
// pays no fork/join cost.
template <typename F>
void ParallelChunks(int64_t n, int threads, F&& f) {
  if (n <= 0) return;
  const int t = static_cast<int>(std::min<int64_t>(ResolveThreads(threads), n));
  if (t <= 1) {
    f(int64_t{0}, n, 0);
    return;
  }
#pragma omp parallel num_threads(t)
  {
    const int slot = omp_get_thread_num();
    const int team = omp_get_num_threads();
    const int64_t begin = n * slot / team;
    const int64_t end = n * (slot + 1) / team;
    if (begin < end) f(begin, end, slot);
  }
}

// Number of slots ParallelChunks may use for n items.
inline int ChunkSlots(int64_t n, int threads) {
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(ResolveThreads(threads), n)));
}

// Grow-only per-thread scratch buffers. Each OS thread owns its own, so
// concurrent callers never share memory, and steady-state calls allocate
// nothing. `slot` selects one of kScratchSlots independent buffers; a
// pointer stays valid until the same thread asks for a larger one in the
// same slot.
constexpr int kScratchSlots = 12;
float* ThreadScratch(int slot, size_t count);

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_PARALLEL_H_
