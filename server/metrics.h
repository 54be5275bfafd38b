// Prometheus metrics of the search service, without the transport: the
// service and the gRPC adapter call Record*/Set*, and anything that wants
// the exposition (the /metrics endpoint in server/metrics_endpoint.h, tests)
// calls Collect or TextExposition. Every metric name and its meaning is
// listed in docs/server.md ("Metrics"); names follow the Prometheus
// conventions (base units: seconds and bytes; counters end in _total).
//
// Thread safety: every method may be called from many threads at once,
// including Collect during recording (a scrape never takes a lock a search
// holds for longer than one histogram update).
// Ownership: hold it in a shared_ptr; the endpoint keeps only a weak_ptr, so
// a scrape after the service is gone answers without these metrics.
#ifndef EMBEDSEARCH_SERVER_METRICS_H_
#define EMBEDSEARCH_SERVER_METRICS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace embedsearch {

// The stages of one Search, in order. A stage a query did not go through
// (an embedding query is never decoded or encoded; a query refused early
// never reaches the index) has no value and is not observed.
enum class SearchStage {
  kQueueWait,    // submitted -> a search worker takes it
  kDecode,       // image bytes -> model input (decode + preprocess)
  kEncode,       // the encoder call of the query's batch (shared by its batch)
  kIndexSearch,  // the vector index (FAISS / HNSW)
  kCatalogRead,  // labels and sources of the hits from the catalog
  kResponse,     // building the response and handing it to the transport
};
inline constexpr int kSearchStageCount = 6;
// "queue_wait", "decode", ... (the `stage` label values).
absl::string_view SearchStageName(SearchStage stage);

// Durations of the stages one query went through.
struct SearchStageTimes {
  std::array<std::optional<absl::Duration>, kSearchStageCount> stage;
  std::optional<absl::Duration>& operator[](SearchStage s) {
    return stage[static_cast<int>(s)];
  }
};

class ServiceMetrics : public prometheus::Collectable {
 public:
  ServiceMetrics();
  ServiceMetrics(const ServiceMetrics&) = delete;
  ServiceMetrics& operator=(const ServiceMetrics&) = delete;

  // One finished RPC: embedsearch_requests_total{method,code} and
  // embedsearch_request_duration_seconds{method}.
  void RecordRequest(absl::string_view method, absl::StatusCode code,
                     absl::Duration latency);
  // The stages one Search query went through.
  void RecordSearchStages(const SearchStageTimes& times);
  // Queries one search worker took at once.
  void RecordSearchBatch(size_t queries);
  // A bundle load (start-up or Reload) finished with `status`.
  void RecordBundleLoad(const absl::Status& status);
  // The bundle now served: replaces the labels of embedsearch_model_info.
  void SetModel(const std::string& model_version, const std::string& index_spec,
                const std::string& metric, int dim);
  // Read at each scrape for embedsearch_gallery_images (the gallery changes
  // through AddImages, RemoveImages and Reload). Empty (default): 0.
  void SetGallerySizeSource(std::function<int64_t()> source);

  // prometheus::Collectable: these metrics plus the process_* ones.
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Collect() in the Prometheus text format (what /metrics serves).
  std::string TextExposition() const;

 private:
  prometheus::Histogram* RequestHistogram(absl::string_view method);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_seconds_;
  prometheus::Family<prometheus::Histogram>& stage_seconds_;
  std::array<prometheus::Histogram*, kSearchStageCount> stage_histograms_{};
  prometheus::Histogram& batch_size_;
  prometheus::Family<prometheus::Gauge>& model_info_;
  prometheus::Family<prometheus::Counter>& bundle_loads_;
  prometheus::Counter& bundle_load_successes_;
  prometheus::Counter& bundle_load_failures_;
  prometheus::Gauge& last_load_success_;
  prometheus::Gauge& last_load_time_;

  mutable std::mutex mu_;
  // Cached so a request does one map lookup, not a label-set hash.
  std::map<std::string, prometheus::Histogram*, std::less<>> method_histograms_
      ABSL_GUARDED_BY(mu_);
  prometheus::Gauge* model_info_gauge_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::function<int64_t()> gallery_size_ ABSL_GUARDED_BY(mu_);
};

// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_start_time_seconds,
// process_open_fds, process_max_fds, process_threads, read from /proc/self
// at call time (what the Go and Python clients export). Empty where /proc is
// unreadable.
std::vector<prometheus::MetricFamily> CollectProcessMetrics();

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_METRICS_H_
