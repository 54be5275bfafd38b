// The HTTP endpoint Prometheus scrapes: GET /metrics on its own address,
// apart from the gRPC port (prometheus-cpp's pull exposer, two civetweb
// threads). A scrape serialises a snapshot of the metrics; it shares no lock
// with searches beyond one histogram update at a time, so scraping never
// blocks a search.
//
// Thread safety: Start and the destructor from one thread; scrapes are
// served on the endpoint's own threads.
#ifndef EMBEDSEARCH_SERVER_METRICS_ENDPOINT_H_
#define EMBEDSEARCH_SERVER_METRICS_ENDPOINT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"

namespace prometheus {
class Exposer;
}

namespace embedsearch {

class MetricsEndpoint {
 public:
  // Listens on `address` ("host:port", "[::]:port"; port 0 picks a free
  // one) and serves `metrics` (kept as a weak_ptr: once it is gone a scrape
  // answers empty). Errors: UNAVAILABLE when the address cannot be bound
  // (in use, not permitted, malformed).
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& address,
      const std::shared_ptr<prometheus::Collectable>& metrics);
  ~MetricsEndpoint();  // Stops listening; waits for scrapes in progress.
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_METRICS_ENDPOINT_H_
