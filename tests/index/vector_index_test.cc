#include "core/index/vector_index.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/index/test_util.h"

namespace embedsearch {
namespace {

using testing_util::MakePoints;
using testing_util::Points;
using testing_util::TempDir;

constexpr int kDim = 16;
constexpr int kLabels = 10;
constexpr int kK = 10;

// Exact answer over the points whose id is live and whose label passes.
std::vector<Neighbor> BruteForce(const Points& p, const float* q,
                                 const std::string& metric, int k,
                                 const absl::flat_hash_set<int64_t>& removed,
                                 const std::vector<int32_t>& allowed) {
  std::vector<Neighbor> all;
  for (int64_t i = 0; i < p.n(); ++i) {
    if (removed.contains(p.ids[i])) continue;
    if (!allowed.empty() &&
        std::find(allowed.begin(), allowed.end(), p.labels[i]) == allowed.end()) {
      continue;
    }
    float d = 0;
    for (int j = 0; j < p.dim; ++j) {
      float a = p.x[i * p.dim + j], b = q[j];
      d += metric == "l2" ? (a - b) * (a - b) : -a * b;
    }
    all.push_back({p.ids[i], d});
  }
  std::sort(all.begin(), all.end(), [](const Neighbor& a, const Neighbor& b) {
    return a.distance < b.distance;
  });
  if (static_cast<int>(all.size()) > k) all.resize(k);
  return all;
}

struct Case {
  std::string spec;
  std::string metric;
  double min_recall;  // Against brute force; 1.0 = exact.
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.spec + "_" + info.param.metric;
  for (char& c : s) {
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

class VectorIndexTypes : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    points_ = MakePoints(3000, kDim, kLabels, /*seed=*/1);
    queries_ = MakePoints(40, kDim, kLabels, /*seed=*/2);
    auto index = VectorIndex::Create(GetParam().spec, GetParam().metric, kDim);
    ASSERT_TRUE(index.ok()) << index.status();
    index_ = *std::move(index);
    ASSERT_TRUE(index_
                    ->Add(points_.x.data(), points_.ids.data(),
                          points_.labels.data(), points_.n())
                    .ok());
    ASSERT_TRUE(index_->fallback_reason().empty()) << index_->fallback_reason();
  }

  // Checks every query against brute force: ids obey the filter and the
  // removals, count is min(k, matching), recall is at least the case's.
  void CheckAgainstBruteForce(const absl::flat_hash_set<int64_t>& removed,
                              const std::vector<int32_t>& allowed) {
    SearchParams params;
    params.k = kK;
    params.allowed_labels = allowed;
    auto result = index_->Search(queries_.x.data(), queries_.n(), params);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->size(), static_cast<size_t>(queries_.n()));
    absl::flat_hash_set<int64_t> label_ok;
    for (int64_t i = 0; i < points_.n(); ++i) {
      if (allowed.empty() || std::find(allowed.begin(), allowed.end(),
                                       points_.labels[i]) != allowed.end()) {
        label_ok.insert(points_.ids[i]);
      }
    }
    int hits = 0, total = 0;
    for (int64_t q = 0; q < queries_.n(); ++q) {
      std::vector<Neighbor> truth =
          BruteForce(points_, queries_.x.data() + q * kDim, GetParam().metric,
                     kK, removed, allowed);
      const std::vector<Neighbor>& got = (*result)[q];
      ASSERT_EQ(got.size(), truth.size()) << "query " << q;
      std::set<int64_t> truth_ids, seen;
      for (const Neighbor& n : truth) truth_ids.insert(n.id);
      for (size_t j = 0; j < got.size(); ++j) {
        EXPECT_TRUE(label_ok.contains(got[j].id)) << got[j].id;
        EXPECT_FALSE(removed.contains(got[j].id)) << got[j].id;
        EXPECT_TRUE(seen.insert(got[j].id).second) << "duplicate " << got[j].id;
        if (j > 0) {
          EXPECT_LE(got[j - 1].distance, got[j].distance + 1e-5f);
        }
        hits += truth_ids.count(got[j].id);
      }
      total += static_cast<int>(truth.size());
    }
    double recall = total ? static_cast<double>(hits) / total : 1.0;
    EXPECT_GE(recall, GetParam().min_recall);
  }

  Points points_, queries_;
  std::unique_ptr<VectorIndex> index_;
};

TEST_P(VectorIndexTypes, SearchMatchesBruteForce) {
  CheckAgainstBruteForce({}, {});
}

TEST_P(VectorIndexTypes, LabelFilteredSearchMatchesBruteForce) {
  CheckAgainstBruteForce({}, {3});
  CheckAgainstBruteForce({}, {0, 7, 9});
}

TEST_P(VectorIndexTypes, RemovedIdsNeverComeBack) {
  // A few removals (tombstones for non-IVF types)...
  absl::flat_hash_set<int64_t> removed;
  std::vector<int64_t> batch;
  for (int64_t i = 0; i < points_.n(); i += 31) batch.push_back(points_.ids[i]);
  ASSERT_TRUE(index_->Remove(batch).ok());
  removed.insert(batch.begin(), batch.end());
  EXPECT_EQ(index_->size(), points_.n() - static_cast<int64_t>(batch.size()));
  CheckAgainstBruteForce(removed, {});
  CheckAgainstBruteForce(removed, {4});
  // ...then enough to force a compaction.
  batch.clear();
  for (int64_t i = 1; i < points_.n(); i += 4) batch.push_back(points_.ids[i]);
  ASSERT_TRUE(index_->Remove(batch).ok());
  removed.insert(batch.begin(), batch.end());
  EXPECT_EQ(index_->tombstones(), 0);
  EXPECT_EQ(index_->size(), points_.n() - static_cast<int64_t>(removed.size()));
  CheckAgainstBruteForce(removed, {});
  CheckAgainstBruteForce(removed, {2, 5});
  // Removed ids can be added again and are found.
  std::vector<int64_t> back = {points_.ids[1]};
  ASSERT_TRUE(index_->Add(points_.x.data() + 1 * kDim, back.data(),
                          points_.labels.data() + 1, 1)
                  .ok());
  removed.erase(points_.ids[1]);
  CheckAgainstBruteForce(removed, {});
}

TEST_P(VectorIndexTypes, SaveAndLoadGiveTheSameResults) {
  std::vector<int64_t> batch = {points_.ids[0], points_.ids[10]};
  ASSERT_TRUE(index_->Remove(batch).ok());
  TempDir tmp;
  ASSERT_TRUE(index_->Save(tmp.file("i.faiss")).ok());
  auto loaded = VectorIndex::Load(tmp.file("i.faiss"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->spec(), GetParam().spec);
  EXPECT_EQ((*loaded)->metric(), GetParam().metric);
  EXPECT_EQ((*loaded)->ids(), index_->ids());
  SearchParams params;
  params.allowed_labels = {1, 2};
  auto a = index_->Search(queries_.x.data(), queries_.n(), params);
  auto b = (*loaded)->Search(queries_.x.data(), queries_.n(), params);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int64_t q = 0; q < queries_.n(); ++q) {
    ASSERT_EQ((*a)[q].size(), (*b)[q].size());
    for (size_t j = 0; j < (*a)[q].size(); ++j) {
      EXPECT_EQ((*a)[q][j].id, (*b)[q][j].id);
      EXPECT_FLOAT_EQ((*a)[q][j].distance, (*b)[q][j].distance);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, VectorIndexTypes,
    ::testing::Values(Case{"Flat", "l2", 1.0}, Case{"Flat", "ip", 1.0},
                      Case{"HNSW32", "l2", 0.9}, Case{"HNSW16", "ip", 0.9},
                      Case{"IVF16,Flat", "l2", 0.9}, Case{"IVF16,Flat", "ip", 0.9},
                      Case{"IVF16,PQ8", "l2", 0.4}, Case{"PQ8", "l2", 0.4},
                      Case{"HNSW16,SQ8", "l2", 0.8}, Case{"SQ8", "ip", 0.8}),
    CaseName);

TEST(VectorIndex, PerCallParametersChangeEffortNotSharedState) {
  Points p = MakePoints(3000, kDim, kLabels, 1);
  Points q = MakePoints(50, kDim, kLabels, 2);
  auto index = *VectorIndex::Create("IVF64,Flat", "l2", kDim);
  ASSERT_TRUE(index->Add(p.x.data(), p.ids.data(), p.labels.data(), p.n()).ok());
  auto recall = [&](int nprobe) {
    SearchParams params;
    params.nprobe = nprobe;
    auto r = *index->Search(q.x.data(), q.n(), params);
    int hits = 0;
    for (int64_t i = 0; i < q.n(); ++i) {
      auto truth = BruteForce(p, q.x.data() + i * kDim, "l2", kK, {}, {});
      for (auto& t : truth) {
        for (auto& g : r[i]) hits += g.id == t.id;
      }
    }
    return hits / static_cast<double>(q.n() * kK);
  };
  double exhaustive = recall(64);
  double one = recall(1);
  EXPECT_DOUBLE_EQ(exhaustive, 1.0);
  EXPECT_LT(one, exhaustive);
  // The default is untouched by the calls above.
  EXPECT_DOUBLE_EQ(recall(0), recall(16));
}

TEST(VectorIndex, TooFewPointsToTrainFallsBackToFlat) {
  Points p = MakePoints(20, kDim, kLabels, 1);
  auto index = *VectorIndex::Create("IVF64,Flat", "l2", kDim);
  ASSERT_TRUE(index->Add(p.x.data(), p.ids.data(), p.labels.data(), p.n()).ok());
  EXPECT_NE(index->fallback_reason().find("IVF64,Flat"), std::string::npos)
      << index->fallback_reason();
  EXPECT_EQ(index->spec(), "IVF64,Flat");
  SearchParams params;
  params.k = 1;
  auto r = *index->Search(p.x.data() + 5 * kDim, 1, params);
  ASSERT_EQ(r[0].size(), 1u);
  EXPECT_EQ(r[0][0].id, p.ids[5]);
}

TEST(VectorIndex, RefusesBadSpecsMetricsAndInputs) {
  EXPECT_EQ(VectorIndex::Create("NoSuchIndex", "l2", kDim).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VectorIndex::Create("Flat", "cosine", kDim).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto index = *VectorIndex::Create("Flat", "l2", kDim);
  Points p = MakePoints(5, kDim, kLabels, 1);
  ASSERT_TRUE(index->Add(p.x.data(), p.ids.data(), p.labels.data(), p.n()).ok());
  EXPECT_EQ(index->Add(p.x.data(), p.ids.data(), p.labels.data(), 1).code(),
            absl::StatusCode::kInvalidArgument);  // Duplicate id.
  SearchParams params;
  params.k = 0;
  EXPECT_EQ(index->Search(p.x.data(), 1, params).status().code(),
            absl::StatusCode::kInvalidArgument);
  params.k = 3;
  std::vector<float> nan(kDim, std::nanf(""));
  EXPECT_EQ(index->Search(nan.data(), 1, params).status().code(),
            absl::StatusCode::kInvalidArgument);
  params.k = 100;  // More than stored: all of them.
  EXPECT_EQ((*index->Search(p.x.data(), 1, params))[0].size(), 5u);
}

TEST(VectorIndex, CorruptFilesAreRefused) {
  TempDir tmp;
  Points p = MakePoints(100, kDim, kLabels, 1);
  auto index = *VectorIndex::Create("HNSW16", "l2", kDim);
  ASSERT_TRUE(index->Add(p.x.data(), p.ids.data(), p.labels.data(), p.n()).ok());
  ASSERT_TRUE(index->Save(tmp.file("i.faiss")).ok());
  std::string bytes;
  {
    std::ifstream f(tmp.file("i.faiss"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  {
    std::string flipped = bytes;
    flipped[flipped.size() / 2] ^= 0x5a;
    std::ofstream(tmp.file("flip.faiss"), std::ios::binary) << flipped;
    std::ofstream(tmp.file("short.faiss"), std::ios::binary)
        << bytes.substr(0, bytes.size() / 3);
  }
  EXPECT_EQ(VectorIndex::Load(tmp.file("flip.faiss")).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(VectorIndex::Load(tmp.file("short.faiss")).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(VectorIndex::Load(tmp.file("none.faiss")).status().code(),
            absl::StatusCode::kNotFound);
}

// Searches in threads while a writer adds and removes: every answer has k
// distinct ids that were added at some point, ordered by distance, and no
// id of the never-removed base set disappears from an exact search.
TEST(VectorIndex, ConcurrentSearchesDuringAddsAndRemovesAreConsistent) {
  for (const std::string spec : {"Flat", "HNSW16", "IVF16,Flat"}) {
    SCOPED_TRACE(spec);
    Points base = MakePoints(1000, kDim, kLabels, 1, /*first_id=*/1);
    Points extra = MakePoints(1000, kDim, kLabels, 3, /*first_id=*/100001);
    Points q = MakePoints(20, kDim, kLabels, 2);
    auto index = *VectorIndex::Create(spec, "l2", kDim);
    ASSERT_TRUE(
        index->Add(base.x.data(), base.ids.data(), base.labels.data(), base.n())
            .ok());
    std::atomic<bool> done{false};
    std::atomic<int> bad{0}, searches{0};
    auto searcher = [&] {
      while (!done.load()) {
        SearchParams params;
        params.k = kK;
        if (searches.load() % 2) params.allowed_labels = {1, 2};
        auto r = index->Search(q.x.data(), q.n(), params);
        if (!r.ok()) {
          ++bad;
          continue;
        }
        for (const auto& row : *r) {
          std::set<int64_t> seen;
          if (row.size() != static_cast<size_t>(kK)) ++bad;
          for (size_t j = 0; j < row.size(); ++j) {
            bool known = (row[j].id >= 1 && row[j].id <= 1000) ||
                         (row[j].id >= 100001 && row[j].id <= 101000);
            if (!known || !seen.insert(row[j].id).second) ++bad;
            if (j > 0 && row[j - 1].distance > row[j].distance + 1e-5f) ++bad;
          }
        }
        ++searches;
      }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) threads.emplace_back(searcher);
    for (int64_t i = 0; i < extra.n(); i += 50) {
      ASSERT_TRUE(index->Add(extra.x.data() + i * kDim, extra.ids.data() + i,
                             extra.labels.data() + i, 50)
                      .ok());
      std::vector<int64_t> drop;
      for (int64_t j = i; j < i + 50; j += 2) drop.push_back(extra.ids[j]);
      ASSERT_TRUE(index->Remove(drop).ok());
      // Let searches in between writes (whatever the lock's fairness), so
      // every round of adds and removes is interleaved with searches.
      const int before = searches.load();
      for (int wait = 0; wait < 2000 && searches.load() < before + 3; ++wait) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    done = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_GT(searches.load(), 0);
    EXPECT_EQ(index->size(), 1000 + 500);
  }
}

}  // namespace
}  // namespace embedsearch
