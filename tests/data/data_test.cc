#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/preprocess.h"
#include "core/image/image.h"
#include "core/util/file.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test.
std::string TempDir(const std::string& name) {
  const fs::path dir = fs::path(testing::TempDir()) /
                       ("data_test_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

IdxArray SampleImages(uint32_t n, uint32_t rows, uint32_t cols) {
  IdxArray array;
  array.dims = {n, rows, cols};
  array.data.resize(size_t{n} * rows * cols);
  std::mt19937 rng(n);
  for (auto& b : array.data)
    b = static_cast<uint8_t>(rng() % 7 == 0 ? 0 : rng());
  return array;
}

TEST(Data, IdxRoundTripPlainAndGzip) {
  const std::string dir = TempDir("idx_round_trip");
  const IdxArray images = SampleImages(50, 28, 28);
  for (bool gzip : {false, true}) {
    const std::string path = dir + (gzip ? "/a.idx.gz" : "/a.idx");
    ASSERT_TRUE(WriteIdxFile(path, images, gzip).ok());
    auto bytes = ReadFile(path);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(bytes->size() < images.data.size(), gzip);
    auto back = ReadIdxFile(path);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->dims, images.dims);
    EXPECT_EQ(back->data, images.data);
  }
  IdxArray labels;
  labels.dims = {3};
  labels.data = {0, 9, 4};
  ASSERT_TRUE(WriteIdxFile(dir + "/l.gz", labels, true).ok());
  auto back = ReadIdxFile(dir + "/l.gz");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->data, labels.data);
}

TEST(Data, WriteIdxRejectsInconsistentArrays) {
  const std::string dir = TempDir("idx_write_bad");
  IdxArray bad;
  bad.dims = {2, 3};
  bad.data.resize(5);
  EXPECT_EQ(WriteIdxFile(dir + "/x", bad, false).code(),
            absl::StatusCode::kInvalidArgument);
  bad.dims = {};
  EXPECT_EQ(WriteIdxFile(dir + "/x", bad, false).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Data, MissingIdxFileIsNotFound) {
  EXPECT_EQ(ReadIdxFile("/nonexistent/x.idx").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadFashionMnist("/nonexistent", "train").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      LoadFashionMnist(EMBEDSEARCH_FASHION_MNIST_DIR, "valid").status().code(),
      absl::StatusCode::kInvalidArgument);
}

// Every prefix of a valid IDX file is DataLoss, plain or gzipped.
TEST(Data, EveryTruncatedIdxIsDataLoss) {
  const std::string dir = TempDir("idx_truncated");
  const IdxArray images = SampleImages(3, 5, 4);
  for (bool gzip : {false, true}) {
    ASSERT_TRUE(WriteIdxFile(dir + "/full", images, gzip).ok());
    const std::string bytes = *ReadFile(dir + "/full");
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto parsed = ParseIdx(absl::string_view(bytes.data(), n), "cut");
      ASSERT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss)
          << (gzip ? "gzip" : "plain") << " cut at " << n << ": "
          << parsed.status();
    }
    // Through the file API too, with the path in the message.
    ASSERT_TRUE(
        WriteFileAtomically(dir + "/cut", bytes.substr(0, bytes.size() - 3))
            .ok());
    auto read = ReadIdxFile(dir + "/cut");
    EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(read.status().message().find(dir + "/cut"), std::string::npos);
  }
}

TEST(Data, CorruptIdxIsAnErrorNeverACrash) {
  const std::string dir = TempDir("idx_corrupt");
  const IdxArray images = SampleImages(4, 6, 6);
  std::mt19937 rng(99);
  for (bool gzip : {false, true}) {
    ASSERT_TRUE(WriteIdxFile(dir + "/full", images, gzip).ok());
    const std::string bytes = *ReadFile(dir + "/full");
    for (int trial = 0; trial < 500; ++trial) {
      std::string b = bytes;
      const size_t pos = rng() % b.size();
      b[pos] ^= static_cast<char>(1 + rng() % 255);
      auto parsed = ParseIdx(b);
      // Past gzip's 10-byte header (whose mtime/OS bytes carry no data) a
      // flipped byte is caught, by the CRC at the latest.
      if (gzip && pos >= 10) {
        ASSERT_FALSE(parsed.ok()) << "flip at " << pos << " went unnoticed";
      }
      if (parsed.ok()) {
        size_t total = 1;
        for (uint32_t d : parsed->dims) total *= d;
        ASSERT_EQ(total, parsed->data.size());
      } else {
        const auto code = parsed.status().code();
        ASSERT_TRUE(code == absl::StatusCode::kDataLoss ||
                    code == absl::StatusCode::kInvalidArgument)
            << parsed.status();
      }
    }
  }
  // Trailing garbage after the declared data.
  ASSERT_TRUE(WriteIdxFile(dir + "/full", images, false).ok());
  EXPECT_EQ(ParseIdx(*ReadFile(dir + "/full") + "x").status().code(),
            absl::StatusCode::kDataLoss);
  // Bad magic, unsupported type.
  EXPECT_EQ(ParseIdx(std::string("\x01\x00\x08\x01\x00\x00\x00\x00", 8))
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseIdx(std::string("\x00\x00\x0D\x01\x00\x00\x00\x00", 8))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Data, AbsurdIdxDimensionsAreRefusedBeforeAllocating) {
  // 4 x 0xFFFFFFFF^3 bytes claimed by a 24-byte file.
  std::string header("\x00\x00\x08\x04", 4);
  for (int d = 0; d < 4; ++d) header += std::string("\xFF\xFF\xFF\xFF", 4);
  auto parsed = ParseIdx(header + "abcd", "bomb");
  ASSERT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(parsed.status().message().find("claims"), std::string::npos)
      << parsed.status();
  // 60000 x 28 x 28 claimed by a tiny plain file.
  std::string mnist(
      "\x00\x00\x08\x03\x00\x00\xEA\x60\x00\x00\x00\x1C\x00\x00\x00\x1C", 16);
  parsed = ParseIdx(mnist + std::string(100, '\0'), "short");
  ASSERT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(parsed.status().message().find("47040000"), std::string::npos)
      << parsed.status();
}

TEST(Data, RealFashionMnistHasTheDocumentedCounts) {
  auto train = LoadFashionMnist(EMBEDSEARCH_FASHION_MNIST_DIR, "train");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->size(), 60000u);
  EXPECT_EQ(train->height, 28);
  EXPECT_EQ(train->width, 28);
  EXPECT_EQ(train->pixels.size(), 60000u * 28 * 28);
  ASSERT_EQ(train->label_names.size(), 10u);
  EXPECT_EQ(train->label_names[0], "T-shirt/top");
  EXPECT_EQ(train->label_names[9], "Ankle boot");
  std::vector<int> histogram(10, 0);
  for (int32_t label : train->labels) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++histogram[label];
  }
  for (int count : histogram) EXPECT_EQ(count, 6000);
  EXPECT_EQ(train->sources[17], "idx:train:17");
  // The pixel statistics the default Normalization was computed from.
  double sum = 0, sum_sq = 0;
  for (uint8_t p : train->pixels) {
    sum += p / 255.0;
    sum_sq += (p / 255.0) * (p / 255.0);
  }
  const double mean = sum / train->pixels.size();
  const double std = std::sqrt(sum_sq / train->pixels.size() - mean * mean);
  EXPECT_NEAR(mean, Preprocessing().mean[0], 5e-4);
  EXPECT_NEAR(std, Preprocessing().std[0], 5e-4);

  auto test = LoadFashionMnist(EMBEDSEARCH_FASHION_MNIST_DIR, "t10k");
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->size(), 10000u);
  EXPECT_EQ(test->height, 28);
  EXPECT_EQ(test->label_names.size(), 10u);
}

TEST(Data, MismatchedImageAndLabelCountsAreInvalidArgument) {
  const std::string dir = TempDir("mismatch");
  ASSERT_TRUE(WriteIdxFile(dir + "/train-images-idx3-ubyte.gz",
                           SampleImages(5, 28, 28), true)
                  .ok());
  IdxArray labels;
  labels.dims = {4};
  labels.data = {0, 1, 2, 3};
  ASSERT_TRUE(
      WriteIdxFile(dir + "/train-labels-idx1-ubyte", labels, false).ok());
  auto data = LoadFashionMnist(dir, "train");
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument)
      << data.status();
  labels.dims = {5};
  labels.data = {0, 1, 2, 3, 10};  // 10 is not a class.
  ASSERT_TRUE(
      WriteIdxFile(dir + "/train-labels-idx1-ubyte", labels, false).ok());
  EXPECT_EQ(LoadFashionMnist(dir, "train").status().code(),
            absl::StatusCode::kDataLoss);
  labels.data = {0, 1, 2, 3, 9};
  ASSERT_TRUE(
      WriteIdxFile(dir + "/train-labels-idx1-ubyte", labels, false).ok());
  auto ok = LoadFashionMnist(dir, "train");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->labels, (std::vector<int32_t>{0, 1, 2, 3, 9}));
}

TEST(Data, SubsetGetImageAndFirstPerLabel) {
  Dataset data;
  data.height = 2;
  data.width = 2;
  data.label_names = {"a", "b"};
  for (int i = 0; i < 6; ++i) {
    for (int k = 0; k < 4; ++k)
      data.pixels.push_back(static_cast<uint8_t>(10 * i + k));
    data.labels.push_back(i % 2);
    data.sources.push_back("s" + std::to_string(i));
  }
  Image image = data.GetImage(3);
  EXPECT_EQ(image.channels, 1);
  EXPECT_EQ(image.pixels, (std::vector<uint8_t>{30, 31, 32, 33}));
  Dataset subset = data.Subset({5, 0, 5});
  ASSERT_EQ(subset.size(), 3u);
  EXPECT_EQ(subset.labels, (std::vector<int32_t>{1, 0, 1}));
  EXPECT_EQ(subset.sources[0], "s5");
  EXPECT_EQ(subset.image(1)[2], 2);
  EXPECT_EQ(subset.label_names, data.label_names);
  Dataset first = data.FirstPerLabel(2);
  EXPECT_EQ(first.sources, (std::vector<std::string>{"s0", "s1", "s2", "s3"}));
}

void WriteImage(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
}

Image Solid(int w, int h, int c, uint8_t v) {
  Image image;
  image.width = w;
  image.height = h;
  image.channels = c;
  image.pixels.assign(static_cast<size_t>(w) * h * c, v);
  return image;
}

TEST(Data, ImageFolderLoadsSortedLabelsResizedGray) {
  const std::string root = TempDir("folder");
  WriteImage(root + "/zebra/b.png", *EncodePng(Solid(56, 56, 3, 200)));
  WriteImage(root + "/zebra/a.JPG", *EncodeJpeg(Solid(40, 30, 3, 100)));
  WriteImage(root + "/apple/x.pgm", *EncodePgm(Solid(10, 10, 1, 50)));
  WriteImage(root + "/apple/notes.txt", "not an image, ignored");
  WriteImage(root + "/.hidden/y.png", *EncodePng(Solid(4, 4, 1, 1)));
  auto data = LoadImageFolder(root);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->label_names, (std::vector<std::string>{"apple", "zebra"}));
  ASSERT_EQ(data->size(), 3u);
  EXPECT_EQ(data->labels, (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(data->sources[0], root + "/apple/x.pgm");
  EXPECT_EQ(data->sources[1], root + "/zebra/a.JPG");
  EXPECT_EQ(data->sources[2], root + "/zebra/b.png");
  EXPECT_EQ(data->height, 28);
  EXPECT_EQ(data->width, 28);
  for (int k = 0; k < 28 * 28; ++k) {
    ASSERT_EQ(data->image(0)[k], 50);
    ASSERT_NEAR(data->image(1)[k], 100, 2);  // JPEG is lossy.
    ASSERT_EQ(data->image(2)[k], 200);
  }
  ImageFolderOptions options;
  options.height = 8;
  options.width = 6;
  auto small = LoadImageFolder(root, options);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->pixels.size(), 3u * 8 * 6);
}

TEST(Data, ImageFolderNamesTheBadFile) {
  const std::string root = TempDir("folder_bad");
  WriteImage(root + "/cat/good.png", *EncodePng(Solid(8, 8, 1, 9)));
  std::string png = *EncodePng(Solid(8, 8, 1, 9));
  WriteImage(root + "/cat/broken.png", png.substr(0, png.size() / 2));
  auto data = LoadImageFolder(root);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(data.status().message().find(root + "/cat/broken.png"),
            std::string::npos)
      << data.status();
  EXPECT_NE(data.status().message().find("PNG"), std::string::npos);
  EXPECT_EQ(LoadImageFolder(root + "/missing").status().code(),
            absl::StatusCode::kNotFound);
  const std::string empty = TempDir("folder_empty");
  EXPECT_EQ(LoadImageFolder(empty).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Data, PreprocessingA28x28ImageEqualsNormalizePixels) {
  Image image = Solid(28, 28, 1, 0);
  std::mt19937 rng(5);
  for (auto& p : image.pixels) p = static_cast<uint8_t>(rng());
  const InputSpec spec;  // 28x28 gray, format-1 preprocessing
  const float mean = spec.preprocessing.mean[0],
              std = spec.preprocessing.std[0];
  std::vector<float> a(28 * 28), b(28 * 28);
  ASSERT_TRUE(PreprocessImage(image, spec, a.data()).ok());
  NormalizePixels(image.pixels.data(), 28 * 28, spec.preprocessing, b.data());
  EXPECT_EQ(a, b);
  EXPECT_FLOAT_EQ(b[0], (image.pixels[0] / 255.0f - mean) / std);
  // A colour 56x56 image: grayscale then 2x2 area average, then normalise.
  Image rgb = Solid(56, 56, 3, 0);
  for (int y = 0; y < 56; ++y) {
    for (int x = 0; x < 56; ++x) {
      for (int c = 0; c < 3; ++c)
        rgb.pixels[(y * 56 + x) * 3 + c] = (x / 2) * 8;
    }
  }
  ASSERT_TRUE(PreprocessImage(rgb, spec, a.data()).ok());
  for (int x = 0; x < 28; ++x) {
    EXPECT_FLOAT_EQ(a[5 * 28 + x], ((x * 8) / 255.0f - mean) / std);
  }
}

// A gallery image sent back as a query (PNG, gray or RGB) is preprocessed
// to exactly the model input the trainer computed from the IDX pixels.
TEST(Data, QueryPngOfADatasetImagePreprocessesLikeTheDataset) {
  auto test = LoadFashionMnist(EMBEDSEARCH_FASHION_MNIST_DIR, "t10k");
  ASSERT_TRUE(test.ok()) << test.status();
  const InputSpec spec;
  for (size_t i : {0, 1, 4242}) {
    std::vector<float> expected(784), got(784);
    NormalizePixels(test->image(i), 784, spec.preprocessing, expected.data());
    for (bool rgb : {false, true}) {
      Image image = test->GetImage(i);
      if (rgb) image = ToRgb(image);
      auto decoded = DecodeImage(*EncodePng(image));
      ASSERT_TRUE(decoded.ok());
      ASSERT_TRUE(PreprocessImage(*decoded, spec, got.data()).ok());
      EXPECT_EQ(got, expected) << "image " << i << (rgb ? " as RGB" : "");
    }
  }
}

}  // namespace
}  // namespace embedsearch
