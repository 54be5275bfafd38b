// The load generator's SearchStream mode: `concurrency` bidirectional
// streams, each with one query in flight (write, read the answer, write the
// next), so it measures the same work as the unary bench without the per-call
// HTTP/2 stream set-up, metadata and call object: what a bulk client that
// keeps a stream open pays per query.
#ifndef EMBEDSEARCH_CLIENT_STREAM_BENCH_H_
#define EMBEDSEARCH_CLIENT_STREAM_BENCH_H_

#include <memory>
#include <string>
#include <vector>

#include "client/bench.h"
#include "embedsearch/v1/search.grpc.pb.h"

namespace embedsearch {

// One measured (record = true) or warm-up run over `stubs` (stream i uses
// stub i % size). Counts `requests` queries in total, or runs for `duration`
// when requests == 0. A failed stream counts one error (its status) and its
// worker opens a new stream for the rest of the run.
BenchResult RunStreamLoad(
    const ClientOptions& client,
    const std::vector<std::unique_ptr<v1::ImageSearch::Stub>>& stubs,
    const std::vector<std::string>& queries, const BenchOptions& options,
    int64_t requests, double duration_seconds, bool record);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CLIENT_STREAM_BENCH_H_
