#include "fuzz/fuzz_bundle_fixture.h"

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/preprocess.h"
#include "core/index/bundle.h"
#include "core/nn/encoder.h"

namespace embedsearch {
namespace {

std::string MakeBundle() {
  char tmpl[] = "/tmp/embedsearch-fuzz-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  const std::string dir = std::string(tmpl) + "/bundle";

  EncoderConfig config;
  config.conv_channels = {4, 8};  // Small: the fuzzer wants many execs/s.
  config.hidden = 16;
  config.embedding_dim = 8;
  auto encoder = Encoder::Create(config, /*seed=*/1);
  if (!encoder.ok()) std::abort();

  Dataset gallery;
  gallery.height = gallery.width = 28;
  gallery.label_names = {"zero", "one", "two"};
  std::mt19937 rng(7);
  const int n = 30;
  gallery.pixels.resize(static_cast<size_t>(n) * 28 * 28);
  for (auto& p : gallery.pixels) p = static_cast<uint8_t>(rng());
  for (int i = 0; i < n; ++i) {
    gallery.labels.push_back(i % 3);
    gallery.sources.push_back("fuzz:" + std::to_string(i));
  }
  std::vector<float> input(static_cast<size_t>(n) * 28 * 28);
  NormalizePixels(gallery.pixels.data(), static_cast<int>(input.size()),
                  config.preprocessing, input.data());
  std::vector<float> embeddings(static_cast<size_t>(n) * config.embedding_dim);
  (*encoder)->Encode(input.data(), n, embeddings.data());

  BundleWriteOptions options;
  options.index_spec = "Flat";
  absl::Status status =
      WriteBundle(dir, **encoder, gallery, embeddings.data(), options);
  if (!status.ok()) {
    std::fprintf(stderr, "fuzz fixture: %s\n", status.ToString().c_str());
    std::abort();
  }
  return dir;
}

}  // namespace

const std::string& FuzzBundleDir() {
  static const std::string* dir = new std::string(MakeBundle());
  return *dir;
}

}  // namespace embedsearch
