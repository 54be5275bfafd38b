#include "server/stats.h"

#include <algorithm>
#include <cmath>

namespace embedsearch {
namespace {

// Nearest-rank percentile of a sorted, non-empty vector.
double Percentile(const std::vector<double>& sorted, double p) {
  const size_t rank = static_cast<size_t>(
      std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace

void RequestStats::Record(const std::string& method, double latency_ms,
                          bool ok) {
  std::unique_lock lock(mu_);
  Method& m = methods_[method];
  ++m.count;
  if (!ok) ++m.errors;
  m.max_ms = std::max(m.max_ms, latency_ms);
  if (m.window.size() < kWindow) {
    m.window.push_back(latency_ms);
  } else {
    m.window[m.next] = latency_ms;
    m.next = (m.next + 1) % kWindow;
  }
}

std::vector<embedsearch::v1::LatencyStats> RequestStats::Snapshot() const {
  std::vector<embedsearch::v1::LatencyStats> out;
  std::unique_lock lock(mu_);
  for (const auto& [name, m] : methods_) {
    embedsearch::v1::LatencyStats s;
    s.set_method(name);
    s.set_count(m.count);
    s.set_errors(m.errors);
    s.set_max_ms(m.max_ms);
    if (!m.window.empty()) {
      std::vector<double> sorted = m.window;
      std::sort(sorted.begin(), sorted.end());
      s.set_p50_ms(Percentile(sorted, 50));
      s.set_p90_ms(Percentile(sorted, 90));
      s.set_p99_ms(Percentile(sorted, 99));
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace embedsearch
