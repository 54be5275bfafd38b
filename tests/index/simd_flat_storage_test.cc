// SimdFlatStorage against FAISS's own flat storage: same distances, same
// HNSW results, and an index using it saves and loads as a plain FAISS one.
#include "core/index/simd_flat_storage.h"

#include <faiss/index_io.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <typeinfo>
#include <vector>

#include "gtest/gtest.h"

namespace embedsearch {
namespace {

constexpr int kDim = 64;

std::vector<float> RandomVectors(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(n) * kDim);
  for (float& x : v) x = normal(rng);
  return v;
}

class SimdFlatStorageTest : public ::testing::TestWithParam<faiss::MetricType> {};

TEST_P(SimdFlatStorageTest, DistancesMatchFaissFlat) {
  // 64 and 72: the AVX2 kernel with and without its 8-wide tail; 10: the
  // fallback for dims that are not a multiple of 8.
  for (int dim : {64, 72, 10}) {
    const std::vector<float> base = RandomVectors(200 * dim / kDim, 1);
    const std::vector<float> query = RandomVectors(2, 2);  // >= dim floats
    faiss::IndexFlat reference(dim, GetParam());
    SimdFlatStorage simd(dim, GetParam());
    const int n = static_cast<int>(base.size()) / dim;
    reference.add(n, base.data());
    simd.add(n, base.data());
    std::unique_ptr<faiss::DistanceComputer> want(reference.get_distance_computer());
    std::unique_ptr<faiss::DistanceComputer> got(simd.get_distance_computer());
    want->set_query(query.data());
    got->set_query(query.data());
    for (faiss::Index::idx_t i = 0; i < n; ++i) {
      EXPECT_NEAR((*got)(i), (*want)(i), 1e-3f * (1 + std::abs((*want)(i))))
          << "dim " << dim << " item " << i;
      const float sym = want->symmetric_dis(i, n - 1 - i);
      EXPECT_NEAR(got->symmetric_dis(i, n - 1 - i), sym, 1e-3f * (1 + std::abs(sym)))
          << "dim " << dim << " item " << i;
    }
  }
}

TEST_P(SimdFlatStorageTest, SameGraphGivesTheSameNeighboursAndRoundTripsThroughWriteIndex) {
  const std::vector<float> base = RandomVectors(2000, 3);
  const std::vector<float> queries = RandomVectors(50, 4);
  const int k = 10;
  faiss::IndexHNSWFlat index(kDim, 16, GetParam());
  index.hnsw.efSearch = 64;
  index.add(2000, base.data());
  std::vector<float> d_want(50 * k), d_got(50 * k);
  std::vector<faiss::Index::idx_t> i_want(50 * k), i_got(50 * k);
  index.search(50, queries.data(), k, d_want.data(), i_want.data());

  // Swap the storage under the built graph: the walk sees the same
  // distances up to float summation order, so the same neighbours.
  ASSERT_TRUE(UseSimdStorage(&index));
  EXPECT_FALSE(UseSimdStorage(&index)) << "already swapped";
  EXPECT_EQ(typeid(*index.storage), typeid(SimdFlatStorage));
  EXPECT_EQ(index.storage->ntotal, 2000);
  index.search(50, queries.data(), k, d_got.data(), i_got.data());
  int same = 0;
  for (int i = 0; i < 50 * k; ++i) {
    same += i_got[i] == i_want[i];
    EXPECT_NEAR(d_got[i], d_want[i], 1e-3f * (1 + std::abs(d_want[i])));
  }
  EXPECT_GE(same, 50 * k * 98 / 100);  // A near-tie may swap two ranks.

  // Adding through the SIMD storage keeps the graph searchable.
  const std::vector<float> more = RandomVectors(100, 5);
  index.add(100, more.data());
  std::vector<float> d_self(1);
  std::vector<faiss::Index::idx_t> i_self(1);
  index.search(1, more.data() + 7 * kDim, 1, d_self.data(), i_self.data());
  EXPECT_EQ(i_self[0], 2007);

  const std::string path = ::testing::TempDir() + "/simd_hnsw.faiss";
  faiss::write_index(&index, path.c_str());
  std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
  std::remove(path.c_str());
  auto* loaded_hnsw = dynamic_cast<faiss::IndexHNSW*>(loaded.get());
  ASSERT_NE(loaded_hnsw, nullptr);
  ASSERT_EQ(loaded_hnsw->ntotal, 2100);
  ASSERT_TRUE(UseSimdStorage(loaded_hnsw));
  loaded_hnsw->hnsw.efSearch = 64;
  std::vector<float> d_loaded(50 * k), d_before(50 * k);
  std::vector<faiss::Index::idx_t> i_loaded(50 * k), i_before(50 * k);
  index.search(50, queries.data(), k, d_before.data(), i_before.data());
  loaded->search(50, queries.data(), k, d_loaded.data(), i_loaded.data());
  EXPECT_EQ(i_loaded, i_before);
  EXPECT_EQ(d_loaded, d_before);
}

INSTANTIATE_TEST_SUITE_P(Metrics, SimdFlatStorageTest,
                         ::testing::Values(faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT),
                         [](const auto& info) {
                           return info.param == faiss::METRIC_L2 ? "L2" : "InnerProduct";
                         });

}  // namespace
}  // namespace embedsearch
