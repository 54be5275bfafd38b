#include "trainer/retrieval_metrics.h"

#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "faiss/utils/distances.h"
#include "trainer/nearest_selection.h"

namespace embedsearch {

QueryScores ScoreQuery(int32_t query_label, const int32_t* ranked_labels,
                       int64_t ranked_count, int64_t relevant_count) {
  QueryScores s;
  for (int64_t i = 0; i < std::min<int64_t>(ranked_count, 10); ++i) {
    if (ranked_labels[i] != query_label) continue;
    if (i < 1) s.hit_at_1 = true;
    if (i < 5) s.hit_at_5 = true;
    s.hit_at_10 = true;
  }
  if (relevant_count <= 0) return s;
  const int64_t r = std::min(ranked_count, relevant_count);
  int64_t correct = 0;
  double sum = 0;
  for (int64_t i = 0; i < r; ++i) {
    if (ranked_labels[i] != query_label) continue;
    ++correct;
    sum += static_cast<double>(correct) / static_cast<double>(i + 1);
  }
  s.average_precision_at_r = sum / static_cast<double>(relevant_count);
  return s;
}

void RetrievalMetricsAccumulator::Add(const QueryScores& s) {
  ++queries_;
  hits_at_1_ += s.hit_at_1;
  hits_at_5_ += s.hit_at_5;
  hits_at_10_ += s.hit_at_10;
  ap_sum_ += s.average_precision_at_r;
}

void RetrievalMetricsAccumulator::AddQuery(int32_t query_label,
                                           const int32_t* ranked_labels,
                                           int64_t ranked_count,
                                           int64_t relevant_count) {
  Add(ScoreQuery(query_label, ranked_labels, ranked_count, relevant_count));
}

RetrievalMetrics RetrievalMetricsAccumulator::Result() const {
  RetrievalMetrics m;
  m.queries = queries_;
  if (queries_ == 0) return m;
  const double n = static_cast<double>(queries_);
  m.precision_at_1 = hits_at_1_ / n;
  m.recall_at_1 = hits_at_1_ / n;
  m.recall_at_5 = hits_at_5_ / n;
  m.recall_at_10 = hits_at_10_ / n;
  m.map_at_r = ap_sum_ / n;
  return m;
}

namespace {

// OpenBLAS (Debian's usual libblas.so.3) runs a thread pool of its own whose
// threads spin and sched_yield after every call, on the same 2 cores as our
// OpenMP threads: ~20% of an evaluation's samples. While one is in scope,
// OpenBLAS calls run in the calling thread, so each of our threads makes
// its own. Looked up at run time: another BLAS has no such function (and is
// left alone).
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() {
    set_ = reinterpret_cast<void (*)(int)>(
        dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    auto get = reinterpret_cast<int (*)()>(
        dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    if (set_ != nullptr && get != nullptr) {
      previous_ = get();
      set_(1);
    }
  }
  ~SingleThreadedBlas() {
    if (set_ != nullptr && previous_ > 0) set_(previous_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  void (*set_)(int) = nullptr;
  int previous_ = 0;
};

// EvaluateRetrieval and EvaluateLeaveOneOut. With `leave_one_out`, query i
// is gallery item i: it is dropped from its own ranking and from its R.
absl::StatusOr<RetrievalMetrics> Evaluate(
    const float* gallery, const std::vector<int32_t>& gallery_labels,
    const float* queries, const std::vector<int32_t>& query_labels, int dim,
    const RetrievalEvalOptions& options, bool leave_one_out) {
  if (dim <= 0) return absl::InvalidArgumentError("dim must be positive");
  if (gallery_labels.size() > 0xFFFFFFFFu) {
    return absl::InvalidArgumentError("gallery larger than 2^32 items");
  }
  if (gallery_labels.empty() || query_labels.empty()) {
    return absl::InvalidArgumentError(
        "retrieval evaluation needs a non-empty gallery and query set");
  }
  if (gallery == nullptr || queries == nullptr) {
    return absl::InvalidArgumentError("null embedding buffer");
  }
  const int64_t ng = static_cast<int64_t>(gallery_labels.size());
  const int64_t nq = static_cast<int64_t>(query_labels.size());
  std::map<int32_t, int64_t> per_label;
  for (int32_t l : gallery_labels) ++per_label[l];
  int64_t max_r = 0;
  for (int32_t l : query_labels) {
    auto it = per_label.find(l);
    if (it != per_label.end()) max_r = std::max(max_r, it->second);
  }
  // Exact squared L2 distances from FAISS (faiss::pairwise_L2sqr: one BLAS
  // product per block of queries), then per query only what the metrics
  // need: the max(10, R) nearest, in order (trainer/nearest_selection.h).
  // Why not IndexFlatL2::search with k = R: R is 6000 for Fashion-MNIST,
  // and FAISS keeps a 6000-entry heap per query over 60k candidates (~20 s
  // of every epoch's evaluation on 2 cores). Each thread takes whole blocks:
  // its own BLAS call, then the selection for the block's queries.
  const int threads =
      options.threads > 0 ? options.threads : omp_get_max_threads();
  const int64_t block = std::max(1, options.query_block);
  const int64_t blocks = (nq + block - 1) / block;
  std::vector<QueryScores> scores(nq);
  const SingleThreadedBlas blas_in_our_threads;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> distances(static_cast<size_t>(block) * ng);
    NearestSelectionScratch scratch;
    std::vector<uint32_t> nearest;
    std::vector<int32_t> ranked;
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t q0 = b * block, nb = std::min(block, nq - q0);
      faiss::pairwise_L2sqr(dim, nb, queries + q0 * dim, ng, gallery,
                            distances.data());
      for (int64_t q = 0; q < nb; ++q) {
        const int32_t label = query_labels[q0 + q];
        auto it = per_label.find(label);
        const int64_t relevant =
            (it == per_label.end() ? 0 : it->second) - (leave_one_out ? 1 : 0);
        const int64_t self = leave_one_out ? q0 + q : -1;
        const int64_t others = ng - (leave_one_out ? 1 : 0);
        const int64_t k =
            std::min<int64_t>(others, std::max<int64_t>(10, relevant));
        // One more when the query itself is among them (then skipped).
        const int64_t selected =
            std::min<int64_t>(ng, k + (leave_one_out ? 1 : 0));
        nearest.resize(selected);
        ranked.resize(k);
        SelectNearestInOrder(distances.data() + q * ng, ng, selected, scratch,
                             nearest.data());
        int64_t n = 0;
        for (int64_t j = 0; j < selected && n < k; ++j) {
          if (static_cast<int64_t>(nearest[j]) != self) {
            ranked[n++] = gallery_labels[nearest[j]];
          }
        }
        scores[q0 + q] = ScoreQuery(label, ranked.data(), n, relevant);
      }
    }
  }
  RetrievalMetricsAccumulator acc;
  for (const QueryScores& s : scores) acc.Add(s);
  return acc.Result();
}

}  // namespace

absl::StatusOr<RetrievalMetrics> EvaluateRetrieval(
    const float* gallery, const std::vector<int32_t>& gallery_labels,
    const float* queries, const std::vector<int32_t>& query_labels, int dim,
    const RetrievalEvalOptions& options) {
  return Evaluate(gallery, gallery_labels, queries, query_labels, dim, options,
                  /*leave_one_out=*/false);
}

absl::StatusOr<RetrievalMetrics> EvaluateLeaveOneOut(
    const float* embeddings, const std::vector<int32_t>& labels, int dim,
    const RetrievalEvalOptions& options) {
  if (labels.size() < 2) {
    return absl::InvalidArgumentError(
        "leave-one-out retrieval needs at least two items");
  }
  return Evaluate(embeddings, labels, embeddings, labels, dim, options,
                  /*leave_one_out=*/true);
}

Json RetrievalMetricsToJson(const RetrievalMetrics& m) {
  return {{"queries", m.queries},
          {"precision_at_1", RoundDecimals(m.precision_at_1, 6)},
          {"recall_at_1", RoundDecimals(m.recall_at_1, 6)},
          {"recall_at_5", RoundDecimals(m.recall_at_5, 6)},
          {"recall_at_10", RoundDecimals(m.recall_at_10, 6)},
          {"map_at_r", RoundDecimals(m.map_at_r, 6)}};
}

std::string RetrievalMetricsJson(const RetrievalMetrics& m) {
  return JsonText(RetrievalMetricsToJson(m));
}

}  // namespace embedsearch
