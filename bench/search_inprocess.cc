// The same work as a gRPC image query, in-process: decode + preprocess +
// encode + FAISS search + catalog lookup through SearchService::Search, with
// `concurrency` threads each issuing one query at a time. Its table sits next
// to `embedsearch-client bench` (same queries, same k) so the gRPC overhead
// reads as a ratio. Usage:
//   search_inprocess_bench --bundle DIR [--concurrency 1,4,16,64]
//       [--requests N | --duration S] [--k 10] [--json]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/bench.h"
#include "server/service.h"

ABSL_FLAG(std::string, bundle, "", "bundle directory to load");
ABSL_FLAG(std::string, fashion_mnist, "/usr/share/datasets/fashion-mnist",
          "directory of the Fashion-MNIST test set used as queries");
ABSL_FLAG(int, queries, 1000, "distinct query images (round-robin)");
ABSL_FLAG(std::string, concurrency, "1,4,16,64", "comma list of thread counts");
ABSL_FLAG(int64_t, requests, 0, "requests per concurrency level (0: duration)");
ABSL_FLAG(double, duration, 5, "seconds per concurrency level");
ABSL_FLAG(int, k, 10, "hits per query");
ABSL_FLAG(int, compute_threads, 0,
          "service compute slots (0: one per hardware thread, as the server)");
ABSL_FLAG(bool, json, false, "print one JSON object per level");

namespace embedsearch {
namespace {

BenchResult RunLevel(SearchService& service,
                     const std::vector<std::string>& queries, int concurrency,
                     int64_t requests, double duration, int k) {
  std::atomic<int64_t> next{0};
  std::vector<std::vector<double>> latencies(concurrency);
  std::vector<std::map<std::string, int64_t>> errors(concurrency);
  const double cpu_before = ProcessCpuSeconds();
  const absl::Time start = absl::Now();
  const absl::Time stop_at = start + absl::Seconds(duration);
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      v1::SearchRequest request;
      request.set_k(k);
      while (true) {
        const int64_t i = next.fetch_add(1);
        if (requests > 0 ? i >= requests : absl::Now() >= stop_at) break;
        request.set_image(queries[i % queries.size()]);
        const absl::Time t0 = absl::Now();
        auto response = service.Search(request);
        const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
        if (response.ok()) {
          latencies[t].push_back(ms);
        } else {
          ++errors[t][absl::StatusCodeToString(response.status().code())];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  BenchResult result;
  result.concurrency = concurrency;
  result.k = k;
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result.cpu_seconds = ProcessCpuSeconds() - cpu_before;
  std::vector<double> all;
  for (int t = 0; t < concurrency; ++t) {
    all.insert(all.end(), latencies[t].begin(), latencies[t].end());
    for (const auto& [code, count] : errors[t]) result.errors[code] += count;
  }
  std::sort(all.begin(), all.end());
  result.ok = static_cast<int64_t>(all.size());
  result.completed = result.ok;
  for (const auto& [code, count] : result.errors) result.completed += count;
  result.throughput = result.completed / result.seconds;
  double sum = 0;
  for (double v : all) sum += v;
  result.mean_ms = all.empty() ? 0 : sum / all.size();
  result.p50_ms = Percentile(all, 50);
  result.p90_ms = Percentile(all, 90);
  result.p99_ms = Percentile(all, 99);
  result.max_ms = all.empty() ? 0 : all.back();
  return result;
}

int Main() {
  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  if (bundle.empty()) {
    std::fprintf(stderr, "usage: search_inprocess_bench --bundle DIR\n");
    return 2;
  }
  ServiceOptions options;
  options.compute_threads = absl::GetFlag(FLAGS_compute_threads);
  SearchService service(options);
  if (absl::Status s = service.LoadBundle(bundle); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
    return 1;
  }
  auto queries = LoadFashionMnistQueries(absl::GetFlag(FLAGS_fashion_mnist),
                                         absl::GetFlag(FLAGS_queries));
  if (!queries.ok()) {
    std::fprintf(stderr, "error: %s\n", queries.status().ToString().c_str());
    return 1;
  }
  for (absl::string_view level :
       absl::StrSplit(absl::GetFlag(FLAGS_concurrency), ',')) {
    int concurrency = 0;
    if (!absl::SimpleAtoi(level, &concurrency) || concurrency < 1) {
      std::fprintf(stderr, "error: bad --concurrency entry '%s'\n",
                   std::string(level).c_str());
      return 2;
    }
    // Warm-up: first calls page in the index and grow scratch buffers.
    RunLevel(service, *queries, concurrency, 2 * concurrency, 0,
             absl::GetFlag(FLAGS_k));
    BenchResult result =
        RunLevel(service, *queries, concurrency, absl::GetFlag(FLAGS_requests),
                 absl::GetFlag(FLAGS_duration), absl::GetFlag(FLAGS_k));
    if (absl::GetFlag(FLAGS_json)) {
      std::printf("%s\n", BenchResultJson(result).c_str());
    } else {
      std::printf("%s\n", FormatBenchTable(result).c_str());
    }
  }
  return 0;
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return embedsearch::Main();
}
