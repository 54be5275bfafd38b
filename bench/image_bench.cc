// Per-operation CPU time of the image and data paths a query or a training
// run goes through. Prints one "name<TAB>microseconds" line per operation.
// CPU time (not wall time) so that a busy machine distorts less; each
// operation runs single-threaded. --write_inputs=DIR saves the input files
// so another implementation (bench/image_reference.py) can time the same.
#include <cstdio>
#include <ctime>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "core/data/dataset.h"
#include "core/data/preprocess.h"
#include "core/image/image.h"
#include "core/util/file.h"

ABSL_FLAG(std::string, write_inputs, "", "directory to save the inputs in");
ABSL_FLAG(std::string, fashion_mnist, EMBEDSEARCH_FASHION_MNIST_DIR,
          "Fashion-MNIST directory");

namespace embedsearch {
namespace {

// CPU microseconds per call, the best of 3 rounds of `reps` calls.
template <typename F>
double CpuMicros(int reps, F f) {
  double best = 1e300;
  for (int round = 0; round < 3; ++round) {
    const std::clock_t t0 = std::clock();
    for (int i = 0; i < reps; ++i) f();
    best = std::min(best, (std::clock() - t0) * 1e6 / CLOCKS_PER_SEC / reps);
  }
  return best;
}

// A photo-like 512x512 RGB test image: smooth gradients plus texture.
Image TestPhoto() {
  Image image;
  image.width = image.height = 512;
  image.channels = 3;
  image.pixels.resize(512 * 512 * 3);
  uint32_t noise = 12345;
  for (int y = 0; y < 512; ++y) {
    for (int x = 0; x < 512; ++x) {
      noise = noise * 1664525u + 1013904223u;
      const int n = static_cast<int>(noise >> 28);  // 0..15
      image.pixels[(y * 512 + x) * 3 + 0] =
          static_cast<uint8_t>((x / 2 + n) & 255);
      image.pixels[(y * 512 + x) * 3 + 1] =
          static_cast<uint8_t>((y / 2 + n) & 255);
      image.pixels[(y * 512 + x) * 3 + 2] =
          static_cast<uint8_t>(((x + y) / 4 + n) & 255);
    }
  }
  return image;
}

int Run() {
  const std::string dir = absl::GetFlag(FLAGS_fashion_mnist);
  auto test = LoadFashionMnist(dir, "t10k");
  if (!test.ok()) {
    std::fprintf(stderr, "%s\n", std::string(test.status().message()).c_str());
    return 1;
  }
  const Image photo = TestPhoto();
  const std::string png28 = *EncodePng(test->GetImage(0));
  const std::string jpeg512 = *EncodeJpeg(photo, 90);
  const std::string png512 = *EncodePng(photo);
  const std::string inputs = absl::GetFlag(FLAGS_write_inputs);
  if (!inputs.empty()) {
    if (!WriteFileAtomically(inputs + "/fmnist28.png", png28).ok() ||
        !WriteFileAtomically(inputs + "/photo512.jpg", jpeg512).ok() ||
        !WriteFileAtomically(inputs + "/photo512.png", png512).ok()) {
      std::fprintf(stderr, "cannot write inputs to %s\n", inputs.c_str());
      return 1;
    }
  }
  float out[28 * 28];
  const InputSpec spec;  // 28x28 gray, as Fashion-MNIST models
  std::printf("decode_png_28x28_gray\t%.2f\n",
              CpuMicros(20000, [&] { auto i = DecodeImage(png28); }));
  std::printf("decode_jpeg_512x512_rgb\t%.2f\n",
              CpuMicros(100, [&] { auto i = DecodeImage(jpeg512); }));
  std::printf("decode_png_512x512_rgb\t%.2f\n",
              CpuMicros(50, [&] { auto i = DecodeImage(png512); }));
  std::printf("preprocess_512x512_rgb_to_28x28\t%.2f\n",
              CpuMicros(100, [&] { (void)PreprocessImage(photo, spec, out); }));
  std::printf("query_jpeg_512x512_decode_and_preprocess\t%.2f\n",
              CpuMicros(100, [&] {
                auto i = DecodeImage(jpeg512);
                (void)PreprocessImage(*i, spec, out);
              }));
  std::printf("encode_png_512x512_rgb\t%.2f\n",
              CpuMicros(20, [&] { auto s = EncodePng(photo); }));
  std::printf("encode_png_28x28_gray\t%.2f\n",
              CpuMicros(20000, [&] { auto s = EncodePng(test->GetImage(0)); }));
  std::printf("load_fashion_mnist_train\t%.2f\n",
              CpuMicros(1, [&] { auto d = LoadFashionMnist(dir, "train"); }));
  return 0;
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return embedsearch::Run();
}
