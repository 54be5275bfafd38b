#include "trainer/retrieval_metrics.h"

#include <map>
#include <random>
#include <vector>

#include "faiss/IndexFlat.h"

#include "gtest/gtest.h"

namespace embedsearch {
namespace {

TEST(RetrievalMetrics, AccumulatorMatchesHandComputedValues) {
  RetrievalMetricsAccumulator acc;
  // Query 1, label 0, R = 2: ranked 0,1,0 -> hit@1, AP@R = (1/1)/2 = 0.5
  // (only the first R = 2 ranks count: ranks 1 (rel) and 2 (not rel)).
  const int32_t a[] = {0, 1, 0, 1, 1, 1, 1, 1, 1, 1};
  acc.AddQuery(0, a, 10, 2);
  // Query 2, label 1, R = 3: ranked 0,1,1,... -> miss@1, hit@5,
  // AP@R = (1/2 + 2/3) / 3.
  const int32_t b[] = {0, 1, 1, 0, 0, 0, 0, 0, 0, 0};
  acc.AddQuery(1, b, 10, 3);
  // Query 3, label 2: first same label at rank 7 -> only recall@10.
  const int32_t c[] = {0, 0, 0, 0, 0, 0, 2, 0, 0, 0};
  acc.AddQuery(2, c, 10, 1);
  // Query 4, label 3: never found.
  const int32_t d[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  acc.AddQuery(3, d, 10, 4);
  RetrievalMetrics m = acc.Result();
  EXPECT_EQ(m.queries, 4);
  EXPECT_DOUBLE_EQ(m.precision_at_1, 0.25);
  EXPECT_DOUBLE_EQ(m.recall_at_1, 0.25);
  EXPECT_DOUBLE_EQ(m.recall_at_5, 0.5);
  EXPECT_DOUBLE_EQ(m.recall_at_10, 0.75);
  EXPECT_NEAR(m.map_at_r, (0.5 + (0.5 + 2.0 / 3.0) / 3.0 + 0.0 + 0.0) / 4.0,
              1e-12);
}

TEST(RetrievalMetrics, PerfectRankingGivesOnes) {
  RetrievalMetricsAccumulator acc;
  const int32_t r[] = {5, 5, 5, 7};
  acc.AddQuery(5, r, 4, 3);
  RetrievalMetrics m = acc.Result();
  EXPECT_DOUBLE_EQ(m.precision_at_1, 1.0);
  EXPECT_DOUBLE_EQ(m.recall_at_10, 1.0);
  EXPECT_DOUBLE_EQ(m.map_at_r, 1.0);
}

TEST(RetrievalMetrics, EvaluateSearchesExactlyThroughFaiss) {
  // 1-D points on a line (dim 2, second coordinate 0). Gallery: labels
  // 0 at x=0,1,2 and label 1 at x=10,11.
  const std::vector<float> gallery = {0, 0, 1, 0, 2, 0, 10, 0, 11, 0};
  const std::vector<int32_t> gallery_labels = {0, 0, 0, 1, 1};
  // Query A (label 0) at x=1.2: ranking 1,2,0 -> all label 0: AP 1.
  // Query B (label 1) at x=5.5: distances 5.5,4.5,3.5,4.5,5.5 -> nearest is
  // x=2 (label 0); R=2: ranks 1 (label 0) and 2 (tie x=1 / x=10) ...
  // put it at x=5.8 to break ties: 5.8,4.8,3.8,4.2,5.2 -> order
  // x=2(0), x=10(1), x=1(0), x=11(1), x=0(0): R=2 -> AP = (1/2)/2 = 0.25.
  // Query C (label 1) at x=10.4: x=10, x=11 -> AP 1.
  const std::vector<float> queries = {1.2f, 0, 5.8f, 0, 10.4f, 0};
  const std::vector<int32_t> query_labels = {0, 1, 1};
  absl::StatusOr<RetrievalMetrics> m =
      EvaluateRetrieval(gallery.data(), gallery_labels, queries.data(),
                        query_labels, 2, {.query_block = 2, .threads = 1});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->queries, 3);
  EXPECT_NEAR(m->precision_at_1, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m->recall_at_5, 1.0, 1e-12);
  EXPECT_NEAR(m->map_at_r, (1.0 + 0.25 + 1.0) / 3.0, 1e-12);
}

TEST(RetrievalMetrics, EvaluateRejectsBadInput) {
  const std::vector<float> v = {0, 0};
  EXPECT_EQ(EvaluateRetrieval(v.data(), {}, v.data(), {0}, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EvaluateRetrieval(v.data(), {0}, v.data(), {0}, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RetrievalMetrics, JsonHasEveryField) {
  RetrievalMetrics m;
  m.queries = 3;
  m.precision_at_1 = 0.5;
  const std::string json = RetrievalMetricsJson(m);
  for (const char* key : {"\"queries\":3", "\"precision_at_1\":0.5",
                          "\"recall_at_1\"", "\"recall_at_5\"",
                          "\"recall_at_10\"", "\"map_at_r\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  }
}

}  // namespace
// The fast path (FAISS distances, nth_element + sort of the R nearest)
// against the straightforward one: IndexFlatL2::search with k = max(10, R).
TEST(RetrievalMetrics, MatchesFaissFlatSearchWithKEqualToR) {
  const int dim = 8, ng = 1500, nq = 200;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> gallery(ng * dim), queries(nq * dim);
  std::vector<int32_t> gallery_labels(ng), query_labels(nq);
  for (int i = 0; i < ng; ++i) {
    gallery_labels[i] = i % 5;
    for (int d = 0; d < dim; ++d) gallery[i * dim + d] = normal(rng) + (d == i % 5 ? 2.f : 0.f);
  }
  for (int i = 0; i < nq; ++i) {
    query_labels[i] = (i * 3) % 5;
    for (int d = 0; d < dim; ++d) {
      queries[i * dim + d] = normal(rng) + (d == query_labels[i] ? 2.f : 0.f);
    }
  }
  absl::StatusOr<RetrievalMetrics> fast = EvaluateRetrieval(
      gallery.data(), gallery_labels, queries.data(), query_labels, dim,
      {.query_block = 64, .threads = 2});
  ASSERT_TRUE(fast.ok()) << fast.status();

  const int64_t k = 300;  // R: 1500 items over 5 labels
  faiss::IndexFlatL2 index(dim);
  index.add(ng, gallery.data());
  std::vector<float> distances(nq * k);
  std::vector<faiss::Index::idx_t> ids(nq * k);
  index.search(nq, queries.data(), k, distances.data(), ids.data());
  RetrievalMetricsAccumulator reference;
  std::vector<int32_t> ranked(k);
  for (int q = 0; q < nq; ++q) {
    for (int j = 0; j < k; ++j) ranked[j] = gallery_labels[ids[q * k + j]];
    reference.AddQuery(query_labels[q], ranked.data(), k, 300);
  }
  const RetrievalMetrics want = reference.Result();
  EXPECT_GT(want.map_at_r, 0.2);  // a non-trivial ranking to compare
  EXPECT_LT(want.map_at_r, 0.95);
  EXPECT_NEAR(fast->precision_at_1, want.precision_at_1, 1e-12);
  EXPECT_NEAR(fast->recall_at_5, want.recall_at_5, 1e-12);
  EXPECT_NEAR(fast->recall_at_10, want.recall_at_10, 1e-12);
  EXPECT_NEAR(fast->map_at_r, want.map_at_r, 1e-9);
}

}  // namespace embedsearch
