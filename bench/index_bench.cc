// Index benchmark: recall@10 against exact search and queries/s for the
// FAISS specs the server can use, on the real Fashion-MNIST gallery (60k
// train images as the gallery, the 10k test images as queries), through
// our VectorIndex wrapper (what the server calls). Then latency and memory
// against gallery size on synthetic vectors.
//
// Embeddings: a stand-in until a trained bundle exists: normalized pixels
// (p/255) times a fixed Gaussian 784x64 projection, L2-normalized. Like the
// encoder's output these are 64-d unit vectors with class structure; a
// trained encoder clusters classes more tightly, which makes IVF/HNSW
// recall, if anything, easier. --bundle_catalog=PATH uses the embeddings of
// a real catalog.db instead (queries are then gallery items themselves).
//
// Prints markdown tables to stdout.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "core/data/dataset.h"
#include "core/index/catalog.h"
#include "core/index/vector_index.h"
#include "core/util/file.h"

ABSL_FLAG(std::string, mnist_dir, "/usr/share/datasets/fashion-mnist",
          "Fashion-MNIST gzipped IDX files");
ABSL_FLAG(std::string, bundle_catalog, "",
          "Optional catalog.db whose embeddings replace the stand-in");
ABSL_FLAG(int, single_queries, 500, "Queries timed one call each");
ABSL_FLAG(int, batch, 256, "Queries per call in the batched run");
ABSL_FLAG(std::string, scaling_sizes, "60000,240000,1000000",
          "Synthetic gallery sizes for the scaling table");
ABSL_FLAG(std::string, scaling_specs, "Flat;IVF256,Flat;HNSW32",
          "';'-separated specs for the scaling table (HNSW builds are slow)");
ABSL_FLAG(int, hnsw_scaling_max, 240000,
          "Largest synthetic gallery an HNSW spec is built for");
ABSL_FLAG(bool, skip_scaling, false, "Only the 60k table");

namespace embedsearch {
namespace {

constexpr int kDim = 64;
constexpr int kK = 10;

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Normalize(std::vector<float>* x) {
  for (size_t i = 0; i < x->size() / kDim; ++i) {
    double n = 0;
    for (int d = 0; d < kDim; ++d) n += (*x)[i * kDim + d] * (*x)[i * kDim + d];
    float inv = static_cast<float>(1.0 / std::sqrt(std::max(n, 1e-12)));
    for (int d = 0; d < kDim; ++d) (*x)[i * kDim + d] *= inv;
  }
}

std::vector<float> Project(const Dataset& d, const std::vector<float>& proj) {
  const int in = d.height * d.width;
  std::vector<float> out(d.size() * kDim, 0.f);
  for (size_t i = 0; i < d.size(); ++i) {
    const uint8_t* px = d.image(i);
    for (int p = 0; p < in; ++p) {
      float v = px[p] / 255.f;
      if (v == 0.f) continue;
      const float* row = proj.data() + static_cast<size_t>(p) * kDim;
      for (int k = 0; k < kDim; ++k) out[i * kDim + k] += v * row[k];
    }
  }
  Normalize(&out);
  return out;
}

std::vector<float> Synthetic(int64_t n, uint32_t seed) {
  // 100 Gaussian clusters on the sphere, like a gallery of many classes.
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> centers(100 * kDim);
  std::mt19937 crng(4242);
  for (float& c : centers) c = g(crng);
  std::vector<float> x(static_cast<size_t>(n) * kDim);
  for (int64_t i = 0; i < n; ++i) {
    int c = static_cast<int>(rng() % 100);
    for (int d = 0; d < kDim; ++d) {
      x[i * kDim + d] = centers[c * kDim + d] + 0.6f * g(rng);
    }
  }
  Normalize(&x);
  return x;
}

struct Built {
  std::unique_ptr<VectorIndex> index;
  double build_s = 0;
  double bytes_per_vector = 0;
};

Built Build(const std::string& spec, const std::vector<float>& x) {
  Built b;
  const int64_t n = static_cast<int64_t>(x.size() / kDim);
  std::vector<int64_t> ids(n);
  std::vector<int32_t> labels(n, 0);
  for (int64_t i = 0; i < n; ++i) ids[i] = i + 1;
  auto t0 = Clock::now();
  b.index = *VectorIndex::Create(spec, "l2", kDim);
  absl::Status s = b.index->Add(x.data(), ids.data(), labels.data(), n);
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", spec.c_str(), s.ToString().c_str());
    std::exit(1);
  }
  b.build_s = Seconds(t0, Clock::now());
  std::string path = "/tmp/index_bench_" + std::to_string(::getpid()) + ".faiss";
  if (b.index->Save(path).ok()) {
    b.bytes_per_vector =
        static_cast<double>(ReadFile(path)->size()) / static_cast<double>(n);
    ::unlink(path.c_str());
  }
  return b;
}

struct Timing {
  double recall = 0;
  double single_qps = 0;
  double single_ms = 0;
  double batch_qps = 0;
};

// Exact top-k ids per query, for recall.
std::vector<std::vector<int64_t>> Truth(const std::vector<float>& gallery,
                                        const std::vector<float>& queries) {
  Built flat = Build("Flat", gallery);
  const int64_t nq = static_cast<int64_t>(queries.size() / kDim);
  SearchParams p;
  p.k = kK;
  auto r = *flat.index->Search(queries.data(), nq, p);
  std::vector<std::vector<int64_t>> out(nq);
  for (int64_t i = 0; i < nq; ++i) {
    for (const Neighbor& n : r[i]) out[i].push_back(n.id);
  }
  return out;
}

Timing Measure(const VectorIndex& index, const std::vector<float>& queries,
               const std::vector<std::vector<int64_t>>* truth, int nprobe,
               int ef, int single_n, int batch) {
  Timing t;
  SearchParams p;
  p.k = kK;
  p.nprobe = nprobe;
  p.ef_search = ef;
  const int64_t nq = static_cast<int64_t>(queries.size() / kDim);
  single_n = static_cast<int>(std::min<int64_t>(single_n, nq));
  // Single queries (also the recall sample when there is a truth).
  int64_t hits = 0;
  auto t0 = Clock::now();
  std::vector<std::vector<Neighbor>> single(single_n);
  for (int i = 0; i < single_n; ++i) {
    single[i] = std::move((*index.Search(queries.data() + i * kDim, 1, p))[0]);
  }
  double s = Seconds(t0, Clock::now());
  t.single_qps = single_n / s;
  t.single_ms = 1000.0 * s / single_n;
  // Batched over every query.
  t0 = Clock::now();
  for (int64_t i = 0; i < nq; i += batch) {
    int64_t n = std::min<int64_t>(batch, nq - i);
    auto r = *index.Search(queries.data() + i * kDim, n, p);
    if (truth) {
      for (int64_t j = 0; j < n; ++j) {
        for (const Neighbor& nb : r[j]) {
          const auto& tr = (*truth)[i + j];
          hits += std::count(tr.begin(), tr.end(), nb.id);
        }
      }
    }
  }
  t.batch_qps = nq / Seconds(t0, Clock::now());
  if (truth) t.recall = static_cast<double>(hits) / (nq * kK);
  return t;
}

int Main() {
  const int single_n = absl::GetFlag(FLAGS_single_queries);
  const int batch = absl::GetFlag(FLAGS_batch);
  std::vector<float> gallery, queries;
  std::string source;
  if (!absl::GetFlag(FLAGS_bundle_catalog).empty()) {
    auto catalog = Catalog::OpenReadOnly(absl::GetFlag(FLAGS_bundle_catalog));
    if (!catalog.ok() || (*catalog)->dim() != kDim) {
      std::fprintf(stderr, "bad catalog\n");
      return 1;
    }
    (void)(*catalog)->ForEach([&](const CatalogItem& item) {
      gallery.insert(gallery.end(), item.embedding.begin(), item.embedding.end());
    });
    // Every 6th item as a query (they find themselves; recall still counts).
    for (size_t i = 0; i < gallery.size() / kDim; i += 6) {
      queries.insert(queries.end(), gallery.begin() + i * kDim,
                     gallery.begin() + (i + 1) * kDim);
    }
    source = "trained catalog " + absl::GetFlag(FLAGS_bundle_catalog);
  } else {
    auto train = LoadFashionMnist(absl::GetFlag(FLAGS_mnist_dir), "train");
    auto test = LoadFashionMnist(absl::GetFlag(FLAGS_mnist_dir), "t10k");
    if (!train.ok() || !test.ok()) {
      std::fprintf(stderr, "cannot load Fashion-MNIST: %s %s\n",
                   train.status().ToString().c_str(),
                   test.status().ToString().c_str());
      return 1;
    }
    std::mt19937 rng(42);
    std::normal_distribution<float> g;
    std::vector<float> proj(784 * kDim);
    for (float& v : proj) v = g(rng);
    gallery = Project(*train, proj);
    queries = Project(*test, proj);
    source = "random projection of Fashion-MNIST pixels (stand-in)";
  }
  const int64_t n = static_cast<int64_t>(gallery.size() / kDim);
  const int64_t nq = static_cast<int64_t>(queries.size() / kDim);
  std::printf("Gallery: %lld x %d (%s); queries: %lld; k = %d; OpenMP "
              "threads: %d; single-query runs: first %d queries; batched: "
              "%d per call over all queries.\n\n",
              static_cast<long long>(n), kDim, source.c_str(),
              static_cast<long long>(nq), kK, omp_get_max_threads(), single_n,
              batch);
  auto truth = Truth(gallery, queries);

  struct Config {
    std::string spec;
    std::vector<int> nprobe;
    std::vector<int> ef;
  };
  std::vector<Config> configs = {{"Flat", {0}, {0}},
                                 {"HNSW32", {0}, {16, 32, 64, 128}},
                                 {"IVF256,Flat", {4, 16, 32}, {0}},
                                 {"IVF256,PQ16", {16, 32}, {0}}};
  std::printf("| spec | nprobe | efSearch | recall@10 | single ms/query | "
              "single q/s | batched q/s | build s | index bytes/vector |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const Config& c : configs) {
    Built b = Build(c.spec, gallery);
    for (int np : c.nprobe) {
      for (int ef : c.ef) {
        Timing t = Measure(*b.index, queries, &truth, np, ef, single_n, batch);
        std::printf("| %s | %s | %s | %.4f | %.3f | %.0f | %.0f | %.1f | %.0f |\n",
                    c.spec.c_str(), np ? std::to_string(np).c_str() : "-",
                    ef ? std::to_string(ef).c_str() : "-", t.recall,
                    t.single_ms, t.single_qps, t.batch_qps, b.build_s,
                    b.bytes_per_vector);
        std::fflush(stdout);
      }
    }
  }
  if (absl::GetFlag(FLAGS_skip_scaling)) return 0;

  std::printf("\nScaling (synthetic 64-d unit vectors in 100 clusters; "
              "queries: 500 more from the same distribution; default "
              "nprobe/efSearch):\n\n");
  std::printf("| spec | gallery | recall@10 | single ms/query | batched q/s | "
              "build s | index bytes/vector |\n|---|---|---|---|---|---|---|\n");
  std::vector<float> squeries = Synthetic(500, 777);
  for (absl::string_view size_s :
       absl::StrSplit(absl::GetFlag(FLAGS_scaling_sizes), ',')) {
    int64_t size = std::stoll(std::string(size_s));
    std::vector<float> sg = Synthetic(size, 1);
    auto struth = Truth(sg, squeries);
    std::vector<std::string> specs =
        absl::StrSplit(absl::GetFlag(FLAGS_scaling_specs), ';');
    for (const std::string& spec : specs) {
      if (spec.rfind("HNSW", 0) == 0 &&
          size > absl::GetFlag(FLAGS_hnsw_scaling_max)) {
        std::printf("| %s | %lld | (not built: above --hnsw_scaling_max) | | | | |\n",
                    spec.c_str(), static_cast<long long>(size));
        continue;
      }
      Built b = Build(spec, sg);
      Timing t = Measure(*b.index, squeries, &struth, 0, 0, 500, batch);
      std::printf("| %s | %lld | %.4f | %.3f | %.0f | %.1f | %.0f |\n",
                  spec.c_str(), static_cast<long long>(size), t.recall,
                  t.single_ms, t.batch_qps, b.build_s, b.bytes_per_vector);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return embedsearch::Main();
}
