// Would flip-averaged embeddings search better? Encodes the Fashion-MNIST
// train (gallery) and test (queries) sets with a bundle's model, once as
// they are and once mirrored left-right, and prints the retrieval metrics
// (exact search, as the trainer evaluates) of three variants:
//   plain          f(x), what the service does
//   flip-avg both  normalize(f(x) + f(mirror x)) for gallery and queries
//   flip-avg query the same for queries only (no gallery rebuild)
// Usage: flip_average_eval --bundle DIR [--fashion_mnist DIR] [--threads N]
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "core/data/dataset.h"
#include "core/data/preprocess.h"
#include "core/nn/encoder.h"
#include "trainer/retrieval_metrics.h"

ABSL_FLAG(std::string, bundle, "", "bundle directory whose model.pb to use");
ABSL_FLAG(std::string, fashion_mnist, "/usr/share/datasets/fashion-mnist",
          "directory of the Fashion-MNIST IDX files");
ABSL_FLAG(int, threads, 2, "encoding and evaluation threads");

namespace embedsearch {
namespace {

std::vector<float> EmbedAll(const Encoder& encoder, const Dataset& data,
                            bool mirror, int threads) {
  const int h = data.height, w = data.width, dim = encoder.dim();
  std::vector<float> input(data.size() * h * w), out(data.size() * dim);
  std::vector<uint8_t> pixels(h * w);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint8_t* p = data.image(i);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        pixels[y * w + x] = p[y * w + (mirror ? w - 1 - x : x)];
      }
    }
    NormalizePixels(pixels.data(), h * w, encoder.config().preprocessing,
                    input.data() + i * h * w);
  }
  encoder.Encode(input.data(), static_cast<int>(data.size()), out.data(), threads);
  return out;
}

// normalize(a + b) row by row: the embeddings stay unit vectors.
std::vector<float> AverageRows(std::vector<float> a, const std::vector<float>& b,
                               int dim) {
  for (size_t r = 0; r < a.size() / dim; ++r) {
    double norm2 = 0;
    for (int k = 0; k < dim; ++k) {
      a[r * dim + k] += b[r * dim + k];
      norm2 += double{a[r * dim + k]} * a[r * dim + k];
    }
    const float inv = static_cast<float>(1 / std::sqrt(norm2));
    for (int k = 0; k < dim; ++k) a[r * dim + k] *= inv;
  }
  return a;
}

int Run() {
  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  const int threads = absl::GetFlag(FLAGS_threads);
  if (bundle.empty()) {
    std::fprintf(stderr, "flip_average_eval: --bundle is required\n");
    return 2;
  }
  auto encoder = Encoder::Load(bundle + "/model.pb");
  auto train = LoadFashionMnist(absl::GetFlag(FLAGS_fashion_mnist), "train");
  auto test = LoadFashionMnist(absl::GetFlag(FLAGS_fashion_mnist), "t10k");
  for (const absl::Status& s : {encoder.status(), train.status(), test.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "flip_average_eval: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  const Encoder& enc = **encoder;
  const int dim = enc.dim();
  const auto gallery = EmbedAll(enc, *train, false, threads);
  const auto queries = EmbedAll(enc, *test, false, threads);
  const auto gallery_avg =
      AverageRows(gallery, EmbedAll(enc, *train, true, threads), dim);
  const auto queries_avg =
      AverageRows(queries, EmbedAll(enc, *test, true, threads), dim);

  RetrievalEvalOptions options;
  options.threads = threads;
  std::printf("model %s, %zu queries vs %zu gallery images\n\n",
              enc.model_version().c_str(), test->size(), train->size());
  std::printf("| variant | P@1 | R@5 | R@10 | mAP@R |\n|---|---:|---:|---:|---:|\n");
  struct Variant {
    const char* name;
    const std::vector<float>& gallery;
    const std::vector<float>& queries;
  };
  for (const Variant& v : {Variant{"plain", gallery, queries},
                           Variant{"flip-avg both", gallery_avg, queries_avg},
                           Variant{"flip-avg query", gallery, queries_avg}}) {
    auto m = EvaluateRetrieval(v.gallery.data(), train->labels, v.queries.data(),
                               test->labels, dim, options);
    if (!m.ok()) {
      std::fprintf(stderr, "flip_average_eval: %s\n", m.status().ToString().c_str());
      return 1;
    }
    std::printf("| %s | %.4f | %.4f | %.4f | %.4f |\n", v.name, m->precision_at_1,
                m->recall_at_5, m->recall_at_10, m->map_at_r);
  }
  return 0;
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return embedsearch::Run();
}
