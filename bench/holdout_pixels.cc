// The floor for held-out-class retrieval: leave-one-out retrieval among the
// images of the classes the trainer's --holdout_classes holds out (the same
// split: trainer/holdout.h, same --seed), with raw pixels as the embedding
// and squared L2 as the distance, exactly as the trainer evaluates an
// encoder's embeddings (EvaluateLeaveOneOut). Prints one row per pixel
// representation: RGB at the given sizes (values / 255; alpha composited
// on white) and 28x28 gray (what today's gray trainer sees).
// Usage: holdout_pixel_baseline --data out/datasets/emoji
//          [--holdout_classes 0.5] [--seed 1] [--threads 2]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/image/image.h"
#include "core/util/file.h"
#include "trainer/holdout.h"
#include "trainer/retrieval_metrics.h"

ABSL_FLAG(std::string, data, "out/datasets/emoji",
          "image folder ROOT/<label>/*");
ABSL_FLAG(std::string, holdout_classes, "0.5",
          "as the trainer's flag: a fraction or a file of class names");
ABSL_FLAG(uint64_t, seed, 1,
          "the trainer's --seed (chooses a fraction's classes)");
ABSL_FLAG(int, threads, 2, "evaluation threads");

namespace embedsearch {
namespace {

namespace fs = std::filesystem;

struct Labelled {
  std::vector<Image> images;  // RGB
  std::vector<int32_t> labels;
};

// RGBA over white, gray replicated: 3 channels.
Image OnWhiteRgb(const Image& in) {
  if (in.channels != 4) return ToRgb(in);
  Image out{in.width, in.height, 3,
            std::vector<uint8_t>(in.width * in.height * 3)};
  for (size_t i = 0; i < static_cast<size_t>(in.width) * in.height; ++i) {
    const int a = in.pixels[i * 4 + 3];
    for (int c = 0; c < 3; ++c) {
      out.pixels[i * 3 + c] = static_cast<uint8_t>(
          (in.pixels[i * 4 + c] * a + 255 * (255 - a) + 127) / 255);
    }
  }
  return out;
}

// The images of the classes named in `classes`, labelled by their index.
absl::StatusOr<Labelled> LoadClasses(const std::string& root,
                                     const std::vector<std::string>& classes) {
  Labelled out;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<fs::path> files;
    for (const auto& entry :
         fs::directory_iterator(fs::path(root) / classes[c])) {
      const std::string ext =
          absl::AsciiStrToLower(entry.path().extension().string());
      if (ext == ".png" || ext == ".jpg" || ext == ".jpeg")
        files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      absl::StatusOr<std::string> bytes = ReadFile(f.string());
      if (!bytes.ok()) return bytes.status();
      absl::StatusOr<Image> image = DecodeImage(*bytes);
      if (!image.ok()) return image.status();
      out.images.push_back(OnWhiteRgb(*image));
      out.labels.push_back(static_cast<int32_t>(c));
    }
  }
  return out;
}

// Every image resized to size x size, `gray` or RGB, as floats in [0, 1].
std::vector<float> Pixels(const Labelled& data, int size, bool gray, int* dim) {
  *dim = size * size * (gray ? 1 : 3);
  std::vector<float> out;
  out.reserve(data.images.size() * *dim);
  for (const Image& image : data.images) {
    Image small = Resize(gray ? ToGrayscale(image) : image, size, size);
    for (uint8_t p : small.pixels) out.push_back(p / 255.f);
  }
  return out;
}

int Run() {
  const std::string root = absl::GetFlag(FLAGS_data);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory() && entry.path().filename().string()[0] != '.') {
      names.push_back(entry.path().filename().string());
    }
  }
  absl::StatusOr<HoldoutSplit> split = ChooseHeldOutClasses(
      names, absl::GetFlag(FLAGS_holdout_classes), absl::GetFlag(FLAGS_seed));
  if (!split.ok()) {
    std::fprintf(stderr, "%s\n", split.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<Labelled> held = LoadClasses(root, split->held_out);
  if (!held.ok()) {
    std::fprintf(stderr, "%s\n", held.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "%s: %zu classes, %zu held out (--holdout_classes %s --seed %llu), "
      "%zu held-out images; leave-one-out, squared L2 on pixels / 255\n\n",
      root.c_str(), names.size(), split->held_out.size(), split->spec.c_str(),
      static_cast<unsigned long long>(split->seed), held->images.size());
  std::printf("| pixels | dim | P@1 | R@5 | R@10 | MAP@R | seconds |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  struct Variant {
    const char* name;
    int size;
    bool gray;
  };
  for (const Variant& v :
       {Variant{"RGB 64x64", 64, false}, Variant{"RGB 32x32", 32, false},
        Variant{"RGB 16x16", 16, false}, Variant{"gray 28x28", 28, true}}) {
    const absl::Time t0 = absl::Now();
    int dim = 0;
    const std::vector<float> x = Pixels(*held, v.size, v.gray, &dim);
    absl::StatusOr<RetrievalMetrics> m = EvaluateLeaveOneOut(
        x.data(), held->labels, dim, {.threads = absl::GetFlag(FLAGS_threads)});
    if (!m.ok()) {
      std::fprintf(stderr, "%s\n", m.status().ToString().c_str());
      return 1;
    }
    std::printf("| %s | %d | %.4f | %.4f | %.4f | %.4f | %.1f |\n", v.name, dim,
                m->precision_at_1, m->recall_at_5, m->recall_at_10, m->map_at_r,
                absl::ToDoubleSeconds(absl::Now() - t0));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return embedsearch::Run();
}
