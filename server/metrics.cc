#include "server/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "prometheus/text_serializer.h"

namespace embedsearch {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// 50 us .. 10 s: a lone query takes well under 1 ms, a Reload or a large
// AddImages seconds.
const Histogram::BucketBoundaries& RequestBuckets() {
  static const Histogram::BucketBoundaries buckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005,
      0.01,    0.025,  0.05,    0.1,    0.25,    0.5,   1,      2.5,   10};
  return buckets;
}

// 5 us .. 1 s: stages are fractions of a query (decode ~10 us, HNSW ~50 us).
const Histogram::BucketBoundaries& StageBuckets() {
  static const Histogram::BucketBoundaries buckets = {
      0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
      0.001,    0.0025,  0.005,    0.01,    0.025,  0.1,     1};
  return buckets;
}

// The search workers take at most 32 queries at once (server/service.cc).
const Histogram::BucketBoundaries& BatchBuckets() {
  static const Histogram::BucketBoundaries buckets = {1, 2, 4, 8, 16, 32};
  return buckets;
}

prometheus::MetricFamily OneValue(std::string name, std::string help,
                                  prometheus::MetricType type, double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

// Fields of /proc/self/stat after the command name (which may hold spaces):
// [0] is field 3 (state), so field N is at [N - 3].
std::vector<std::string> ProcStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 > line.size()) return {};
  return absl::StrSplit(line.substr(paren + 2), ' ', absl::SkipEmpty());
}

double StatField(const std::vector<std::string>& fields, int n) {
  double value = 0;
  const size_t i = static_cast<size_t>(n - 3);
  if (i < fields.size() && absl::SimpleAtod(fields[i], &value)) return value;
  return 0;
}

// Seconds since the epoch at which the machine booted (/proc/stat btime).
double BootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

absl::string_view SearchStageName(SearchStage stage) {
  switch (stage) {
    case SearchStage::kQueueWait: return "queue_wait";
    case SearchStage::kDecode: return "decode";
    case SearchStage::kEncode: return "encode";
    case SearchStage::kIndexSearch: return "index_search";
    case SearchStage::kCatalogRead: return "catalog_read";
    case SearchStage::kResponse: return "response";
  }
  return "unknown";
}

ServiceMetrics::ServiceMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(BuildCounter()
                    .Name("embedsearch_requests_total")
                    .Help("Finished RPCs by method and gRPC status code.")
                    .Register(*registry_)),
      request_seconds_(BuildHistogram()
                           .Name("embedsearch_request_duration_seconds")
                           .Help("Server-side RPC latency (queueing included) "
                                 "by method.")
                           .Register(*registry_)),
      stage_seconds_(BuildHistogram()
                         .Name("embedsearch_search_stage_duration_seconds")
                         .Help("Time one Search query spent in each stage.")
                         .Register(*registry_)),
      batch_size_(BuildHistogram()
                      .Name("embedsearch_search_batch_size")
                      .Help("Queries a search worker took at once (their "
                            "images are encoded in one call).")
                      .Register(*registry_)
                      .Add({}, BatchBuckets())),
      model_info_(BuildGauge()
                      .Name("embedsearch_model_info")
                      .Help("The served bundle (always 1; the labels carry "
                            "the model version, index, metric and dim).")
                      .Register(*registry_)),
      bundle_loads_(BuildCounter()
                        .Name("embedsearch_bundle_loads_total")
                        .Help("Bundle loads (at start-up and by Reload) by "
                              "result.")
                        .Register(*registry_)),
      bundle_load_successes_(bundle_loads_.Add({{"result", "success"}})),
      bundle_load_failures_(bundle_loads_.Add({{"result", "failure"}})),
      last_load_success_(BuildGauge()
                             .Name("embedsearch_bundle_last_load_success")
                             .Help("1 if the last bundle load succeeded, 0 if "
                                   "it failed (the old bundle stays).")
                             .Register(*registry_)
                             .Add({})),
      last_load_time_(BuildGauge()
                          .Name("embedsearch_bundle_last_load_timestamp_seconds")
                          .Help("When the last bundle load finished (Unix "
                                "time; 0: none yet).")
                          .Register(*registry_)
                          .Add({})) {
  for (int s = 0; s < kSearchStageCount; ++s) {
    const std::string name(SearchStageName(static_cast<SearchStage>(s)));
    stage_histograms_[s] = &stage_seconds_.Add({{"stage", name}}, StageBuckets());
  }
}

Histogram* ServiceMetrics::RequestHistogram(absl::string_view method) {
  std::unique_lock lock(mu_);
  auto it = method_histograms_.find(method);
  if (it != method_histograms_.end()) return it->second;
  Histogram* histogram = &request_seconds_.Add(
      {{"method", std::string(method)}}, RequestBuckets());
  method_histograms_.emplace(std::string(method), histogram);
  return histogram;
}

void ServiceMetrics::RecordRequest(absl::string_view method,
                                   absl::StatusCode code,
                                   absl::Duration latency) {
  requests_
      .Add({{"method", std::string(method)},
            {"code", absl::StatusCodeToString(code)}})
      .Increment();
  RequestHistogram(method)->Observe(absl::ToDoubleSeconds(latency));
}

void ServiceMetrics::RecordSearchStages(const SearchStageTimes& times) {
  for (int s = 0; s < kSearchStageCount; ++s) {
    if (times.stage[s].has_value()) {
      stage_histograms_[s]->Observe(absl::ToDoubleSeconds(*times.stage[s]));
    }
  }
}

void ServiceMetrics::RecordSearchBatch(size_t queries) {
  batch_size_.Observe(static_cast<double>(queries));
}

void ServiceMetrics::RecordBundleLoad(const absl::Status& status) {
  (status.ok() ? bundle_load_successes_ : bundle_load_failures_).Increment();
  last_load_success_.Set(status.ok() ? 1 : 0);
  last_load_time_.Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
}

void ServiceMetrics::SetModel(const std::string& model_version,
                              const std::string& index_spec,
                              const std::string& metric, int dim) {
  std::unique_lock lock(mu_);
  if (model_info_gauge_ != nullptr) model_info_.Remove(model_info_gauge_);
  model_info_gauge_ = &model_info_.Add({{"model_version", model_version},
                                        {"index", index_spec},
                                        {"metric", metric},
                                        {"dim", std::to_string(dim)}});
  model_info_gauge_->Set(1);
}

void ServiceMetrics::SetGallerySizeSource(std::function<int64_t()> source) {
  std::unique_lock lock(mu_);
  gallery_size_ = std::move(source);
}

std::vector<prometheus::MetricFamily> ServiceMetrics::Collect() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::function<int64_t()> gallery_size;
  {
    std::unique_lock lock(mu_);
    gallery_size = gallery_size_;
  }
  families.push_back(OneValue(
      "embedsearch_gallery_images", "Images in the served gallery.",
      prometheus::MetricType::Gauge,
      gallery_size ? static_cast<double>(gallery_size()) : 0.0));
  for (prometheus::MetricFamily& family : CollectProcessMetrics()) {
    families.push_back(std::move(family));
  }
  return families;
}

std::string ServiceMetrics::TextExposition() const {
  return prometheus::TextSerializer().Serialize(Collect());
}

std::vector<prometheus::MetricFamily> CollectProcessMetrics() {
  const std::vector<std::string> stat = ProcStatFields();
  if (stat.empty()) return {};
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  // Fields (proc(5)): 14 utime, 15 stime, 20 num_threads, 22 starttime
  // (ticks after boot), 23 vsize (bytes), 24 rss (pages).
  out.push_back(OneValue("process_cpu_seconds_total",
                         "User and system CPU time spent, in seconds.",
                         MetricType::Counter,
                         (StatField(stat, 14) + StatField(stat, 15)) / ticks));
  out.push_back(OneValue("process_resident_memory_bytes",
                         "Resident memory size in bytes.", MetricType::Gauge,
                         StatField(stat, 24) * page));
  out.push_back(OneValue("process_virtual_memory_bytes",
                         "Virtual memory size in bytes.", MetricType::Gauge,
                         StatField(stat, 23)));
  out.push_back(OneValue("process_start_time_seconds",
                         "Start time of the process since the Unix epoch, in "
                         "seconds.",
                         MetricType::Gauge,
                         BootTime() + StatField(stat, 22) / ticks));
  out.push_back(OneValue("process_threads", "Threads of the process.",
                         MetricType::Gauge, StatField(stat, 20)));
  std::error_code error;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++fds;
  }
  out.push_back(OneValue("process_open_fds", "Open file descriptors.",
                         MetricType::Gauge, fds));
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.push_back(OneValue("process_max_fds",
                           "Most file descriptors the process may open.",
                           MetricType::Gauge,
                           static_cast<double>(limit.rlim_cur)));
  }
  return out;
}

}  // namespace embedsearch
