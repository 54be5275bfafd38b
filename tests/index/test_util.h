// Shared helpers for the index tests: temp dirs and synthetic clustered
// vectors (labels = clusters, so label filters select real structure).
#ifndef EMBEDSEARCH_TESTS_INDEX_TEST_UTIL_H_
#define EMBEDSEARCH_TESTS_INDEX_TEST_UTIL_H_

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/index/catalog.h"

namespace embedsearch {
namespace testing_util {

// A fresh directory under TEST_TMPDIR or /tmp, removed at destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/es-index-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    path_ = ::mkdtemp(buf.data());
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct Points {
  int dim = 0;
  std::vector<float> x;       // n * dim
  std::vector<int32_t> labels;
  std::vector<int64_t> ids;
  int64_t n() const { return static_cast<int64_t>(labels.size()); }
};

// n points in `labels` Gaussian clusters, unit-normalized when `normalize`.
inline Points MakePoints(int64_t n, int dim, int labels, uint32_t seed,
                         int64_t first_id = 1, bool normalize = true) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> centers(static_cast<size_t>(labels) * dim);
  std::mt19937 crng(12345);  // Same centers for every seed.
  for (float& c : centers) c = g(crng) * 2.f;
  Points p;
  p.dim = dim;
  for (int64_t i = 0; i < n; ++i) {
    int32_t label = static_cast<int32_t>(i % labels);
    double norm = 0;
    for (int d = 0; d < dim; ++d) {
      float v = centers[label * dim + d] + g(rng);
      p.x.push_back(v);
      norm += v * v;
    }
    if (normalize) {
      float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (int d = 0; d < dim; ++d) p.x[i * dim + d] *= inv;
    }
    p.labels.push_back(label);
    p.ids.push_back(first_id + i);
  }
  return p;
}

// The deterministic catalog item number `i` (used by the durability test
// and its child to agree on content).
inline CatalogItem MakeItem(int64_t i, int dim) {
  CatalogItem item;
  item.label_name = "class-" + std::to_string(i % 5);
  item.source = "item-" + std::to_string(i);
  item.image_png = "png-bytes-" + std::to_string(i * 7919);
  item.model_version = "enc-test";
  for (int d = 0; d < dim; ++d) {
    item.embedding.push_back(std::sin(static_cast<float>(i * dim + d)));
  }
  return item;
}

}  // namespace testing_util
}  // namespace embedsearch

#endif  // EMBEDSEARCH_TESTS_INDEX_TEST_UTIL_H_
