#include "client/stream_bench.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "client/errors.h"
#include "grpcpp/grpcpp.h"

namespace embedsearch {
namespace {

// What one stream worker saw.
struct WorkerTally {
  std::vector<double> latencies_ms;
  std::map<std::string, int64_t> errors;
  std::string first_error;
  int64_t completed = 0;
  absl::Time last_done = absl::InfinitePast();
};

}  // namespace

BenchResult RunStreamLoad(
    const ClientOptions& client,
    const std::vector<std::unique_ptr<v1::ImageSearch::Stub>>& stubs,
    const std::vector<std::string>& queries, const BenchOptions& options,
    int64_t requests, double duration_seconds, bool record) {
  // A stream lives for the whole run: its deadline is --timeout past the
  // run's planned end, not --timeout from its start.
  ClientOptions stream_client = client;
  if (stream_client.timeout_seconds > 0) {
    stream_client.timeout_seconds += duration_seconds;
  }
  std::atomic<int64_t> next{0};
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(duration_seconds);
  // Claims the next query number, or -1 when the budget is spent.
  auto claim = [&]() -> int64_t {
    if (requests == 0 && absl::Now() >= end) return -1;
    const int64_t n = next.fetch_add(1);
    return requests > 0 && n >= requests ? -1 : n;
  };
  const int workers =
      requests > 0 ? static_cast<int>(std::min<int64_t>(options.concurrency, requests))
                   : options.concurrency;
  std::vector<WorkerTally> tallies(workers);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      WorkerTally& tally = tallies[w];
      v1::ImageSearch::Stub* stub = stubs[w % stubs.size()].get();
      int64_t n = claim();
      while (n >= 0) {  // one stream; a new one after a failure
        grpc::ClientContext context;
        ConfigureContext(stream_client, context);
        auto stream = stub->SearchStream(&context);
        v1::SearchRequest request;
        v1::SearchResponse response;
        request.set_k(options.k);
        bool broken = false;
        for (; n >= 0; n = claim()) {
          request.set_image(queries[n % queries.size()]);
          const absl::Time t0 = absl::Now();
          if (!stream->Write(request) || !stream->Read(&response)) {
            broken = true;
            break;
          }
          const absl::Time now = absl::Now();
          ++tally.completed;
          tally.last_done = now;
          if (record) tally.latencies_ms.push_back(absl::ToDoubleMilliseconds(now - t0));
        }
        stream->WritesDone();
        const grpc::Status status = stream->Finish();
        if (broken) {
          // The query that found the stream broken failed with its status.
          ++tally.completed;
          tally.last_done = absl::Now();
          if (record) {
            ++tally.errors[GrpcCodeName(status.error_code())];
            if (tally.first_error.empty()) {
              tally.first_error = RpcErrorLine(status, client.server);
            }
          }
          n = claim();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();

  BenchResult r;
  std::vector<double> all;
  absl::Time last_done = start;
  for (WorkerTally& t : tallies) {
    all.insert(all.end(), t.latencies_ms.begin(), t.latencies_ms.end());
    for (const auto& [code, count] : t.errors) r.errors[code] += count;
    if (r.first_error.empty()) r.first_error = t.first_error;
    r.completed += t.completed;
    last_done = std::max(last_done, t.last_done);
  }
  r.seconds = absl::ToDoubleSeconds(last_done - start);
  r.throughput = r.seconds > 0 ? r.completed / r.seconds : 0;
  SetLatencyStats(std::move(all), &r);
  return r;
}

}  // namespace embedsearch
