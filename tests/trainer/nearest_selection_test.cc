#include "trainer/nearest_selection.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace embedsearch {
namespace {

// The definition: indices stably sorted by max(distance, 0).
std::vector<uint32_t> Reference(const std::vector<float>& d, int64_t k) {
  std::vector<uint32_t> order(d.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return std::max(d[a], 0.0f) < std::max(d[b], 0.0f);
  });
  order.resize(std::min<int64_t>(k, d.size()));
  return order;
}

std::vector<uint32_t> Select(const std::vector<float>& d, int64_t k,
                             NearestSelectionScratch& scratch) {
  std::vector<uint32_t> out(std::min<int64_t>(k, d.size()), 0xFFFFFFFFu);
  SelectNearestInOrder(d.data(), static_cast<int64_t>(d.size()), k, scratch, out.data());
  return out;
}

TEST(NearestSelection, MatchesAStableSortOnManyShapesOfData) {
  std::mt19937 rng(11);
  NearestSelectionScratch scratch;  // reused across calls, as in the trainer
  for (int trial = 0; trial < 60; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 5000);
    std::vector<float> d(n);
    switch (trial % 4) {
      case 0:  // squared distances of unit vectors: [0, 4]
        for (float& v : d) v = std::uniform_real_distribution<float>(0, 4)(rng);
        break;
      case 1:  // many exact ties
        for (float& v : d) v = static_cast<float>(rng() % 7) * 0.25f;
        break;
      case 2:  // magnitudes from 2^-30 to 2^30, and some zeros
        for (float& v : d) {
          v = (rng() % 10 == 0) ? 0.0f : std::ldexp(1.0f + (rng() % 100) / 100.0f,
                                                    static_cast<int>(rng() % 61) - 30);
        }
        break;
      case 3:  // rounding below zero, -0.0f and tiny values: all rank as 0
        for (float& v : d) {
          const int r = static_cast<int>(rng() % 4);
          v = r == 0 ? -1e-7f : r == 1 ? -0.0f : r == 2 ? 0.0f : 1e-3f * (rng() % 50);
        }
        break;
    }
    for (int64_t k : {int64_t{1}, int64_t{10}, int64_t{n / 3 + 1}, int64_t{n}, int64_t{n + 5}}) {
      EXPECT_EQ(Select(d, k, scratch), Reference(d, k)) << "trial " << trial << " n " << n
                                                        << " k " << k;
    }
  }
}

TEST(NearestSelection, AllEqualDistancesComeInGalleryOrder) {
  NearestSelectionScratch scratch;
  const std::vector<float> d(1000, 0.5f);
  const std::vector<uint32_t> got = Select(d, 600, scratch);
  for (uint32_t j = 0; j < got.size(); ++j) ASSERT_EQ(got[j], j);
}

TEST(NearestSelection, ZeroKWritesNothing) {
  NearestSelectionScratch scratch;
  const std::vector<float> d = {3, 1, 2};
  uint32_t out = 77;
  SelectNearestInOrder(d.data(), 3, 0, scratch, &out);
  EXPECT_EQ(out, 77u);
}

}  // namespace
}  // namespace embedsearch
