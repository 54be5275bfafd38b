// The ImageSearch service without the transport: every RPC as a function
// from request proto to response proto or absl::Status. The gRPC layer
// (grpc_service.h) adds auth, deadlines, logging and stats around it; the
// fuzzers and unit tests call it directly.
//
// Thread safety: every method may be called from many threads at once.
// The bundle is held in a shared_ptr that Reload swaps under a mutex; each
// request takes its own reference first, so a request that started on the
// old bundle finishes on it and the old bundle is destroyed only when the
// last such request returns.
#ifndef EMBEDSEARCH_SERVER_SERVICE_H_
#define EMBEDSEARCH_SERVER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/image/image.h"
#include "core/index/bundle.h"
#include "embedsearch/v1/search.pb.h"
#include "server/batch_queue.h"
#include "server/compute_slots.h"
#include "server/metrics.h"
#include "server/stats.h"

namespace embedsearch {

struct ServiceOptions {
  int max_k = 1000;            // default: 1000 hits per query at most
  int max_nprobe = 65536;      // default: larger values are refused
  int max_ef_search = 65536;   // default: larger values are refused
  DecodeLimits decode_limits;  // default: 40 MP, 20000 px per side
  // AddImages stores each picture as given (PNG bytes kept, others
  // re-encoded as PNG) unless its longer side exceeds this: then it is
  // shrunk to it (aspect kept) and re-encoded. 0: always as given.
  int max_picture_side = 256;  // default: 256 px, as the trainer's export
  // Concurrent CPU-bound requests; 0 = one per hardware thread (default).
  int compute_threads = 0;
  // Reload accepts only bundles inside these directories; empty (default)
  // disables Reload.
  std::vector<std::string> allowed_bundle_roots;
  // Empty (default): each bundle's own SQLite catalog. A PostgreSQL
  // connection string: every bundle loaded is served from that shared
  // catalog (core/index/pg_catalog.h).
  std::string catalog;
  // Shared catalog: longest wait for a change notification before polling
  // the change log anyway (bounds the lag after a lost notification).
  absl::Duration catalog_poll_interval = absl::Milliseconds(500);  // default
};

class SearchService {
 public:
  explicit SearchService(ServiceOptions options = {});
  SearchService(const SearchService&) = delete;
  SearchService& operator=(const SearchService&) = delete;

  // Loads `dir` and swaps it in (no allowed-roots check: the operator chose
  // it on the command line). On error the current bundle stays.
  absl::Status LoadBundle(const std::string& dir);
  // The current bundle, or nullptr before the first successful load.
  std::shared_ptr<Bundle> bundle() const;
  // Called (outside any lock) after each successful swap; used for health.
  void SetBundleListener(std::function<void(const Bundle&)> listener);

  RequestStats& stats() { return stats_; }
  // Prometheus metrics (the gRPC adapter records requests; the service
  // records search stages, batches and bundle loads). Never null.
  const std::shared_ptr<ServiceMetrics>& metrics() const { return metrics_; }
  const ServiceOptions& options() const { return options_; }

  // Every RPC. `stop` is polled between stages (decode, encode, search).
  //
  // Searches run on the service's search workers, one per compute slot, in
  // arrival order; the image queries waiting together are encoded as one
  // batch (why: server/batch_queue.h). A query that arrives when no other
  // search is in flight runs on the calling thread instead: the hand-off to
  // a sleeping worker and back cost a lone query more than its compute
  // (BENCHMARKS.md, "The lone query"). SearchAsync then returns after
  // calling `done`; otherwise it returns at once and calls `done` on a
  // worker thread. `request` must stay valid until `done`.
  // Search blocks until its answer is ready. Do not call either from
  // inside `done` (a worker waiting for itself).
  using SearchDone = std::function<void(absl::StatusOr<v1::SearchResponse>)>;
  void SearchAsync(const v1::SearchRequest* request, StopCheck stop,
                   SearchDone done);
  absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest& request,
                                            const StopCheck& stop = {});
  // The most image queries encoded in one batch so far.
  int64_t largest_search_batch() const { return largest_search_batch_.load(); }
  absl::StatusOr<v1::EncodeResponse> Encode(const v1::EncodeRequest& request,
                                            const StopCheck& stop = {});
  absl::StatusOr<v1::AddImagesResponse> AddImages(
      const v1::AddImagesRequest& request, const StopCheck& stop = {});
  absl::StatusOr<v1::RemoveImagesResponse> RemoveImages(
      const v1::RemoveImagesRequest& request);
  absl::StatusOr<v1::GetImageResponse> GetImage(
      const v1::GetImageRequest& request);
  // Answers without a bundle too (uptime and stats only).
  absl::StatusOr<v1::GetInfoResponse> GetInfo(const v1::GetInfoRequest& request);
  absl::StatusOr<v1::ReloadResponse> Reload(const v1::ReloadRequest& request);

 private:
  absl::StatusOr<std::shared_ptr<Bundle>> RequireBundle() const;
  // Decode + preprocess into model input (C*H*W floats appended to `out`).
  absl::Status PrepareImage(const Bundle& bundle, const std::string& bytes,
                            absl::string_view what, std::vector<float>* out,
                            Image* decoded) const;
  absl::Status Swap(std::unique_ptr<Bundle> loaded);

  struct PendingSearch {
    const v1::SearchRequest* request;
    StopCheck stop;
    SearchDone done;
    absl::Time submitted;  // start of the queue_wait stage
  };
  struct PreparedSearch;
  // Validates `request` and resolves embedding and id queries (an image
  // query is left for the batch encoder).
  absl::StatusOr<PreparedSearch> PrepareSearch(const Bundle& bundle,
                                               const v1::SearchRequest& request) const;
  // Adds the index, catalog and response times to `times`.
  absl::StatusOr<v1::SearchResponse> AnswerSearch(const Bundle& bundle,
                                                  const PreparedSearch& prepared,
                                                  SearchStageTimes& times) const;
  // Answers `batch` (calls every `done`), computing in the slot `lease`
  // holds (empty: waits for one), and records its metrics.
  void RunSearchBatch(std::vector<PendingSearch>& batch,
                      std::optional<ComputeSlots::Lease> lease = std::nullopt);
  // The work of RunSearchBatch: fills `results` and `times`; the slot is
  // released when it returns.
  void ComputeSearchBatch(std::vector<PendingSearch>& batch,
                          std::optional<ComputeSlots::Lease> lease,
                          std::vector<absl::StatusOr<v1::SearchResponse>>& results,
                          std::vector<SearchStageTimes>& times);
  // One encoder call for the decoded images in `input`; image j belongs to
  // batch entry image_of[j], whose query it fills.
  void EncodeImageQueries(const Bundle& b, const std::vector<float>& input,
                          const std::vector<size_t>& image_of,
                          std::vector<absl::StatusOr<PreparedSearch>>& prepared,
                          std::vector<SearchStageTimes>& times);

  const ServiceOptions options_;
  const absl::Time started_;
  ComputeSlots slots_;
  RequestStats stats_;
  const std::shared_ptr<ServiceMetrics> metrics_ =
      std::make_shared<ServiceMetrics>();

  mutable std::mutex mu_;
  std::shared_ptr<Bundle> bundle_ ABSL_GUARDED_BY(mu_);
  std::function<void(const Bundle&)> listener_ ABSL_GUARDED_BY(mu_);
  // Serialises loads so two Reloads never race to swap.
  std::mutex load_mu_;
  std::atomic<int64_t> largest_search_batch_{0};
  // Searches submitted whose `done` has not returned yet.
  std::atomic<int64_t> searches_in_flight_{0};
  // Last: destroyed first, so its workers finish with everything above alive.
  BatchQueue<PendingSearch> search_queue_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_SERVICE_H_
