#include "trainer/retrieval_metrics.h"

#include <omp.h>

#include <algorithm>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "faiss/IndexFlat.h"

namespace embedsearch {

void RetrievalMetricsAccumulator::AddQuery(int32_t query_label,
                                           const int32_t* ranked_labels,
                                           int64_t ranked_count,
                                           int64_t relevant_count) {
  ++queries_;
  bool hit1 = false, hit5 = false, hit10 = false;
  for (int64_t i = 0; i < std::min<int64_t>(ranked_count, 10); ++i) {
    if (ranked_labels[i] != query_label) continue;
    if (i < 1) hit1 = true;
    if (i < 5) hit5 = true;
    hit10 = true;
  }
  hits_at_1_ += hit1;
  hits_at_5_ += hit5;
  hits_at_10_ += hit10;
  if (relevant_count <= 0) return;
  const int64_t r = std::min(ranked_count, relevant_count);
  int64_t correct = 0;
  double sum = 0;
  for (int64_t i = 0; i < r; ++i) {
    if (ranked_labels[i] != query_label) continue;
    ++correct;
    sum += static_cast<double>(correct) / static_cast<double>(i + 1);
  }
  ap_sum_ += sum / static_cast<double>(relevant_count);
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

absl::StatusOr<RetrievalMetrics> EvaluateRetrieval(
    const float* gallery, const std::vector<int32_t>& gallery_labels,
    const float* queries, const std::vector<int32_t>& query_labels, int dim,
    const RetrievalEvalOptions& options) {
  if (dim <= 0) return absl::InvalidArgumentError("dim must be positive");
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
  const int64_t k = std::min<int64_t>(ng, std::max<int64_t>(10, max_r));

  const int saved_threads = omp_get_max_threads();
  if (options.threads > 0) omp_set_num_threads(options.threads);
  faiss::IndexFlatL2 index(dim);
  index.add(ng, gallery);

  RetrievalMetricsAccumulator acc;
  const int64_t block = std::max(1, options.query_block);
  std::vector<float> distances(block * k);
  std::vector<faiss::Index::idx_t> ids(block * k);
  std::vector<int32_t> ranked(k);
  for (int64_t q0 = 0; q0 < nq; q0 += block) {
    const int64_t nb = std::min(block, nq - q0);
    index.search(nb, queries + q0 * dim, k, distances.data(), ids.data());
    for (int64_t q = 0; q < nb; ++q) {
      int64_t count = 0;
      for (int64_t j = 0; j < k; ++j) {
        const faiss::Index::idx_t id = ids[q * k + j];
        if (id < 0) break;  // fewer than k results
        ranked[count++] = gallery_labels[id];
      }
      const int32_t label = query_labels[q0 + q];
      auto it = per_label.find(label);
      acc.AddQuery(label, ranked.data(), count,
                   it == per_label.end() ? 0 : it->second);
    }
  }
  if (options.threads > 0) omp_set_num_threads(saved_threads);
  return acc.Result();
}

std::string RetrievalMetricsJson(const RetrievalMetrics& m) {
  return absl::StrFormat(
      "{\"queries\":%d,\"precision_at_1\":%.6f,\"recall_at_1\":%.6f,"
      "\"recall_at_5\":%.6f,\"recall_at_10\":%.6f,\"map_at_r\":%.6f}",
      m.queries, m.precision_at_1, m.recall_at_1, m.recall_at_5,
      m.recall_at_10, m.map_at_r);
}

}  // namespace embedsearch
