#include "client/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/errors.h"
#include "client/output.h"
#include "client/stream_bench.h"
#include "core/data/dataset.h"
#include "core/image/image.h"
#include "embedsearch/v1/search.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace embedsearch {
namespace {

using embedsearch::v1::ImageSearch;
using embedsearch::v1::SearchRequest;
using embedsearch::v1::SearchResponse;

// One measured run: issues calls until the budget (count or deadline) is
// spent, each completion starting the next call.
class LoadRun {
 public:
  LoadRun(const ClientOptions& client,
          std::vector<std::unique_ptr<ImageSearch::Stub>>& stubs,
          const std::vector<std::string>& queries, const BenchOptions& options,
          int64_t requests, absl::Duration duration, bool record)
      : client_(client),
        stubs_(stubs),
        queries_(queries),
        k_(options.k),
        requests_(requests),
        duration_(duration),
        record_(record) {}

  void Run(int concurrency) {
    start_ = absl::Now();
    end_ = start_ + duration_;
    {
      absl::MutexLock lock(&mu_);
      active_ = concurrency;
    }
    for (int i = 0; i < concurrency; ++i) Issue();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* active) { return *active == 0; }, &active_));
    last_done_ = std::max(last_done_, start_);
  }

  BenchResult Result() {
    absl::MutexLock lock(&mu_);
    BenchResult r;
    r.completed = completed_;
    r.errors = errors_;
    r.first_error = first_error_;
    r.seconds = absl::ToDoubleSeconds(last_done_ - start_);
    r.throughput = r.seconds > 0 ? completed_ / r.seconds : 0;
    SetLatencyStats(std::move(latencies_ms_), &r);
    return r;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    SearchRequest request;
    SearchResponse response;
    absl::Time start;
  };

  // Starts one more call if the budget allows, else retires one slot.
  void Issue() {
    int64_t n;
    {
      absl::MutexLock lock(&mu_);
      const bool more = requests_ > 0 ? issued_ < requests_ : absl::Now() < end_;
      if (!more) {
        --active_;
        return;
      }
      n = issued_++;
    }
    auto* call = new Call;
    ConfigureContext(client_, call->context);
    call->request.set_image(queries_[n % queries_.size()]);
    call->request.set_k(k_);
    ImageSearch::Stub* stub = stubs_[n % stubs_.size()].get();
    call->start = absl::Now();
    stub->async()->Search(&call->context, &call->request, &call->response,
                          [this, call](grpc::Status status) {
                            Done(call, status);
                          });
  }

  void Done(Call* call, const grpc::Status& status) {
    const absl::Time now = absl::Now();
    const double ms = absl::ToDoubleMilliseconds(now - call->start);
    delete call;
    {
      absl::MutexLock lock(&mu_);
      ++completed_;
      last_done_ = std::max(last_done_, now);
      if (record_) {
        if (status.ok()) {
          latencies_ms_.push_back(ms);
        } else {
          ++errors_[GrpcCodeName(status.error_code())];
          if (first_error_.empty()) {
            first_error_ = RpcErrorLine(status, client_.server);
          }
        }
      }
    }
    Issue();
  }

  const ClientOptions& client_;
  std::vector<std::unique_ptr<ImageSearch::Stub>>& stubs_;
  const std::vector<std::string>& queries_;
  const int k_;
  const int64_t requests_;
  const absl::Duration duration_;
  const bool record_;
  absl::Time start_, end_;

  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t issued_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_done_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::vector<double> latencies_ms_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> errors_ ABSL_GUARDED_BY(mu_);
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

double ProcessCpuSeconds() {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void SetLatencyStats(std::vector<double> latencies_ms, BenchResult* r) {
  std::sort(latencies_ms.begin(), latencies_ms.end());
  r->ok = static_cast<int64_t>(latencies_ms.size());
  r->p50_ms = Percentile(latencies_ms, 50);
  r->p90_ms = Percentile(latencies_ms, 90);
  r->p99_ms = Percentile(latencies_ms, 99);
  r->max_ms = latencies_ms.empty() ? 0 : latencies_ms.back();
  r->mean_ms = latencies_ms.empty()
                   ? 0
                   : std::accumulate(latencies_ms.begin(), latencies_ms.end(), 0.0) /
                         latencies_ms.size();
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank: the smallest value with at least p% of values <= it.
  const double rank = std::ceil(p / 100.0 * sorted.size());
  const size_t index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

absl::StatusOr<BenchResult> RunBench(const ClientOptions& client,
                                     const std::vector<std::string>& queries,
                                     const BenchOptions& options) {
  if (queries.empty()) {
    return absl::InvalidArgumentError("bench needs at least one query image");
  }
  if (options.concurrency < 1) {
    return absl::InvalidArgumentError("--concurrency must be at least 1");
  }
  if (options.channels < 1) {
    return absl::InvalidArgumentError("--channels must be at least 1");
  }
  if (options.requests < 0 || options.warmup_requests < 0) {
    return absl::InvalidArgumentError("request counts must not be negative");
  }
  if (options.requests == 0 && !(options.duration_seconds > 0)) {
    return absl::InvalidArgumentError(
        "give --requests N or a positive --duration");
  }
  std::vector<std::unique_ptr<ImageSearch::Stub>> stubs;
  for (int i = 0; i < options.channels; ++i) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(client, /*separate_connection=*/options.channels > 1);
    if (!channel.ok()) return channel.status();
    stubs.push_back(ImageSearch::NewStub(*channel));
  }
  // One run of the chosen RPC: `requests` calls, or `duration` when 0.
  auto run_load = [&](int64_t requests, double duration, bool record) {
    if (options.stream) {
      return RunStreamLoad(client, stubs, queries, options, requests, duration, record);
    }
    LoadRun run(client, stubs, queries, options, requests, absl::Seconds(duration), record);
    run.Run(requests > 0 ? static_cast<int>(std::min<int64_t>(options.concurrency, requests))
                         : options.concurrency);
    return run.Result();
  };
  if (options.warmup_requests > 0) {
    run_load(options.warmup_requests, 0, /*record=*/false);
  }
  const double cpu_before = ProcessCpuSeconds();
  BenchResult result =
      run_load(options.requests, options.duration_seconds, /*record=*/true);
  result.cpu_seconds = ProcessCpuSeconds() - cpu_before;
  result.stream = options.stream;
  result.concurrency = options.concurrency;
  result.channels = options.channels;
  result.k = options.k;
  return result;
}

absl::StatusOr<std::vector<std::string>> LoadFashionMnistQueries(
    const std::string& dir, int count) {
  absl::StatusOr<Dataset> test = LoadFashionMnist(dir, "t10k");
  if (!test.ok()) return test.status();
  const size_t n = std::min<size_t>(test->size(), std::max(count, 1));
  std::vector<std::string> queries;
  queries.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<std::string> png = EncodePng(test->GetImage(i));
    if (!png.ok()) return png.status();
    queries.push_back(*std::move(png));
  }
  return queries;
}

std::string FormatBenchTable(const BenchResult& r) {
  std::string errors;
  for (const auto& [code, count] : r.errors) {
    absl::StrAppend(&errors, errors.empty() ? "" : " ", code, "=", count);
  }
  if (errors.empty()) errors = "0";
  std::string out = FormatTable(
      {"concurrency", "requests", "ok", "seconds", "req/s", "p50 ms", "p90 ms",
       "p99 ms", "max ms", "errors"},
      {{absl::StrCat(r.concurrency), absl::StrCat(r.completed),
        absl::StrCat(r.ok), absl::StrFormat("%.2f", r.seconds),
        absl::StrFormat("%.1f", r.throughput), absl::StrFormat("%.3f", r.p50_ms),
        absl::StrFormat("%.3f", r.p90_ms), absl::StrFormat("%.3f", r.p99_ms),
        absl::StrFormat("%.3f", r.max_ms), errors}},
      {true, true, true, true, true, true, true, true, true, false});
  // When every call failed the caller reports the error instead.
  if (!r.first_error.empty() && r.ok > 0) {
    absl::StrAppend(&out, "first ", r.first_error, "\n");
  }
  return out;
}

std::string BenchResultJson(const BenchResult& r) {
  Json errors = Json::object();
  for (const auto& [code, count] : r.errors) errors[code] = count;
  return JsonText({{"rpc", r.stream ? "SearchStream" : "Search"},
                   {"concurrency", r.concurrency},
                   {"channels", r.channels},
                   {"k", r.k},
                   {"requests", r.completed},
                   {"ok", r.ok},
                   {"errors", errors},
                   {"seconds", JsonNumber(r.seconds)},
                   {"throughput_rps", JsonNumber(r.throughput)},
                   {"cpu_seconds", JsonNumber(r.cpu_seconds)},
                   {"latency_ms",
                    {{"p50", JsonNumber(r.p50_ms)},
                     {"p90", JsonNumber(r.p90_ms)},
                     {"p99", JsonNumber(r.p99_ms)},
                     {"max", JsonNumber(r.max_ms)},
                     {"mean", JsonNumber(r.mean_ms)}}}});
}

}  // namespace embedsearch
