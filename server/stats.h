// Per-method request counters and latency percentiles for GetInfo.
#ifndef EMBEDSEARCH_SERVER_STATS_H_
#define EMBEDSEARCH_SERVER_STATS_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "embedsearch/v1/search.pb.h"

namespace embedsearch {

// Thread-safe. Percentiles are over the last kWindow requests of each method
// (a ring buffer), so memory stays flat however long the server runs; count,
// errors and max are over the whole lifetime.
class RequestStats {
 public:
  static constexpr size_t kWindow = 4096;

  void Record(const std::string& method, double latency_ms, bool ok);
  // One entry per method seen so far, sorted by method name.
  std::vector<embedsearch::v1::LatencyStats> Snapshot() const;

 private:
  struct Method {
    uint64_t count = 0;
    uint64_t errors = 0;
    double max_ms = 0;
    std::vector<double> window;  // Ring buffer of at most kWindow latencies.
    size_t next = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Method> methods_ ABSL_GUARDED_BY(mu_);
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_STATS_H_
