// A load generator for the Search RPC: keeps `concurrency` calls in flight
// (gRPC callback API, so the client needs few threads and leaves the cores
// to the server), for a duration or a request count, and reports throughput,
// latency percentiles and errors by gRPC code.
#ifndef EMBEDSEARCH_CLIENT_BENCH_H_
#define EMBEDSEARCH_CLIENT_BENCH_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/connection.h"

namespace embedsearch {

struct BenchOptions {
  int concurrency = 1;            // default: 1 call in flight
  double duration_seconds = 10;   // default: 10 s (when requests == 0)
  int64_t requests = 0;           // default: 0 = run for duration_seconds
  int k = 10;                     // default: 10 hits per query
  int channels = 1;               // default: 1 connection, shared by all calls
  int64_t warmup_requests = 0;    // default: 0; sent first, not counted
  // default: unary Search calls; true: one SearchStream per concurrent
  // query slot (client/stream_bench.h)
  bool stream = false;
};

struct BenchResult {
  bool stream = false;  // measured over SearchStream (else unary Search)
  int concurrency = 0;
  int channels = 0;
  int k = 0;
  int64_t completed = 0;                  // ok + errors
  int64_t ok = 0;
  std::map<std::string, int64_t> errors;  // gRPC code name -> count
  std::string first_error;                // the first error's one-line form
  double seconds = 0;                     // wall time of the measured part
  double throughput = 0;                  // completed calls per second
  // CPU time (user + system, all threads) of this process during the
  // measured part: with the server's, it splits a query's cost by side.
  double cpu_seconds = 0;
  // Latency of successful calls, in milliseconds.
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};

// Query images as encoded bytes (PNG/JPEG/PGM), used round-robin.
// Errors: InvalidArgument for bad options or no queries. Server errors are
// counted in the result, not returned.
absl::StatusOr<BenchResult> RunBench(const ClientOptions& client,
                                     const std::vector<std::string>& queries,
                                     const BenchOptions& options);

// The first `count` Fashion-MNIST test images ("t10k" split in `dir`), each
// encoded as PNG once, up front.
absl::StatusOr<std::vector<std::string>> LoadFashionMnistQueries(
    const std::string& dir, int count);

// User + system CPU seconds of this process so far (all threads).
double ProcessCpuSeconds();

// Sets r's ok count and latency fields (p50/p90/p99/max/mean) from the
// successful calls' latencies, in any order.
void SetLatencyStats(std::vector<double> latencies_ms, BenchResult* r);

// Percentile (0..100) of `sorted` values by nearest rank; 0 when empty.
double Percentile(const std::vector<double>& sorted, double p);

std::string FormatBenchTable(const BenchResult& result);
std::string BenchResultJson(const BenchResult& result);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CLIENT_BENCH_H_
