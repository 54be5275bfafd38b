// Retrieval quality of an embedding: test queries against a train gallery.
//
// Definitions (the metric-learning convention, e.g. Musgrave et al. 2020,
// "A Metric Learning Reality Check"):
//   precision@1  fraction of queries whose nearest gallery item has the
//                query's label.
//   recall@k     fraction of queries with at least one same-label item among
//                their k nearest gallery items.
//   mAP@R        for a query with R same-label gallery items, retrieve R
//                neighbours; AP@R = (1/R) * sum_{i<=R} rel(i) * P@i, where
//                rel(i) is 1 when neighbour i has the query's label and P@i
//                is the precision of the first i neighbours. Averaged over
//                queries (queries with R = 0 count as 0).
#ifndef EMBEDSEARCH_TRAINER_RETRIEVAL_METRICS_H_
#define EMBEDSEARCH_TRAINER_RETRIEVAL_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/util/json.h"

namespace embedsearch {

struct RetrievalMetrics {
  int64_t queries = 0;
  double precision_at_1 = 0;
  double recall_at_1 = 0;
  double recall_at_5 = 0;
  double recall_at_10 = 0;
  double map_at_r = 0;
};

// One query's contribution to the metrics, from its ranked neighbour labels
// (nearest first); arguments as for RetrievalMetricsAccumulator::AddQuery.
struct QueryScores {
  bool hit_at_1 = false, hit_at_5 = false, hit_at_10 = false;
  double average_precision_at_r = 0;
};
QueryScores ScoreQuery(int32_t query_label, const int32_t* ranked_labels,
                       int64_t ranked_count, int64_t relevant_count);

// Accumulates metrics one query at a time from its ranked neighbour labels
// (nearest first). `relevant_count` is R, the number of gallery items with
// the query's label; `ranked_labels` must hold at least min(R, 10) labels
// when the gallery has that many items (fewer are treated as misses).
class RetrievalMetricsAccumulator {
 public:
  void AddQuery(int32_t query_label, const int32_t* ranked_labels,
                int64_t ranked_count, int64_t relevant_count);
  void Add(const QueryScores& scores);
  RetrievalMetrics Result() const;

 private:
  int64_t queries_ = 0;
  int64_t hits_at_1_ = 0;
  int64_t hits_at_5_ = 0;
  int64_t hits_at_10_ = 0;
  double ap_sum_ = 0;
};

struct RetrievalEvalOptions {
  int query_block = 64;   // default: queries per distance block (bounds
                          // memory: threads * block * gallery size * 4
                          // bytes, 15 MB a thread for Fashion-MNIST)
  int threads = 0;        // default: 0 = OpenMP default
};

// Exact search (squared L2 distances from faiss::pairwise_L2sqr) of
// `queries` (nq * dim) against `gallery` (ng * dim) and the metrics above.
// Each query ranks its max(10, R) nearest (ties in gallery order), so mAP@R
// is exact. Errors: InvalidArgument for
// empty inputs, dim <= 0 or label counts that do not match.
absl::StatusOr<RetrievalMetrics> EvaluateRetrieval(
    const float* gallery, const std::vector<int32_t>& gallery_labels,
    const float* queries, const std::vector<int32_t>& query_labels, int dim,
    const RetrievalEvalOptions& options = {});

// Leave-one-out retrieval within one set (the held-out-class protocol):
// each of the n items queries the other n - 1, ranking max(10, R) of them
// with R = the other items of its label; the query itself is never a
// neighbour, even when another item is at distance 0. Errors as above, and
// InvalidArgument for fewer than two items.
absl::StatusOr<RetrievalMetrics> EvaluateLeaveOneOut(
    const float* embeddings, const std::vector<int32_t>& labels, int dim,
    const RetrievalEvalOptions& options = {});

// The fields of `m` as a JSON object, rates rounded to 6 decimals, e.g.
// {"queries":10,"precision_at_1":0.9,...}.
Json RetrievalMetricsToJson(const RetrievalMetrics& m);
// The same as one line of text (no newline).
std::string RetrievalMetricsJson(const RetrievalMetrics& m);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_RETRIEVAL_METRICS_H_
