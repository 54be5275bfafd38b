// Writes a large bundle for memory and latency measurements at gallery sizes
// the trainer does not produce: the encoder of an existing bundle, and N
// gallery items made by tiling that bundle's catalog (its real PNGs, labels
// and embeddings), each tile's embeddings jittered by a little Gaussian noise
// and renormalized so the copies are distinct vectors.
//   make_big_bundle --from out/bundle --out /tmp/big --items 1000000
//       [--index_spec Flat]
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "core/data/dataset.h"
#include "core/image/image.h"
#include "core/index/bundle.h"
#include "core/index/catalog.h"

ABSL_FLAG(std::string, from, "", "existing bundle (encoder and items to tile)");
ABSL_FLAG(std::string, out, "", "bundle directory to write");
ABSL_FLAG(int64_t, items, 1000000, "gallery size");
ABSL_FLAG(std::string, index_spec, "Flat", "FAISS spec of the new bundle");
ABSL_FLAG(double, jitter, 0.05, "stddev of the noise added to tiled embeddings");

namespace embedsearch {
namespace {

int Main() {
  auto source = Bundle::Load(absl::GetFlag(FLAGS_from));
  if (!source.ok()) {
    std::fprintf(stderr, "%s\n", source.status().ToString().c_str());
    return 1;
  }
  auto catalog = Catalog::OpenReadOnly(absl::GetFlag(FLAGS_from) + "/catalog.db");
  if (!catalog.ok()) {
    std::fprintf(stderr, "%s\n", catalog.status().ToString().c_str());
    return 1;
  }
  const int dim = (*catalog)->dim();
  Dataset base;
  std::vector<float> base_embeddings;
  absl::StatusOr<std::vector<std::string>> names = (*catalog)->LabelNames();
  if (!names.ok()) return 1;
  base.label_names = *names;
  absl::Status st = (*catalog)->ForEach([&](const CatalogItem& item) {
    auto image = DecodeImage(item.image_png);
    if (!image.ok() || image->channels != 1) return;
    base.height = image->height;
    base.width = image->width;
    base.pixels.insert(base.pixels.end(), image->pixels.begin(), image->pixels.end());
    base.labels.push_back(item.label);
    base.sources.push_back(item.source);
    base_embeddings.insert(base_embeddings.end(), item.embedding.begin(), item.embedding.end());
  }, /*with_image=*/true);
  if (!st.ok() || base.size() == 0) {
    std::fprintf(stderr, "cannot read the catalog: %s\n", st.ToString().c_str());
    return 1;
  }
  const int64_t n = absl::GetFlag(FLAGS_items);
  const size_t image_bytes = static_cast<size_t>(base.height) * base.width;
  Dataset big;
  big.height = base.height;
  big.width = base.width;
  big.label_names = base.label_names;
  big.pixels.resize(n * image_bytes);
  big.labels.resize(n);
  big.sources.resize(n);
  std::vector<float> embeddings(n * dim);
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0, absl::GetFlag(FLAGS_jitter));
  for (int64_t i = 0; i < n; ++i) {
    const size_t b = i % base.size();
    std::copy_n(base.image(b), image_bytes, big.pixels.begin() + i * image_bytes);
    big.labels[i] = base.labels[b];
    big.sources[i] = "tile" + std::to_string(i / base.size()) + ":" + base.sources[b];
    float* e = &embeddings[i * dim];
    double norm = 0;
    for (int d = 0; d < dim; ++d) {
      e[d] = base_embeddings[b * dim + d] + (i < static_cast<int64_t>(base.size()) ? 0 : noise(rng));
      norm += double(e[d]) * e[d];
    }
    for (int d = 0; d < dim; ++d) e[d] = static_cast<float>(e[d] / std::sqrt(norm));
  }
  BundleWriteOptions options;
  options.index_spec = absl::GetFlag(FLAGS_index_spec);
  options.trainer_command = "make_big_bundle (tiled from " + absl::GetFlag(FLAGS_from) + ")";
  st = WriteBundle(absl::GetFlag(FLAGS_out), (*source)->encoder(), big, embeddings.data(), options);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("wrote %lld items to %s\n", static_cast<long long>(n), absl::GetFlag(FLAGS_out).c_str());
  return 0;
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return embedsearch::Main();
}
