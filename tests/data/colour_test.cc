// Colour preprocessing (InputSpec, FitImage, NormalizeInputs), the image
// folder at the model's input size and channels, and the pictures a bundle
// stores, on real PNG and JPEG files.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/data/augment.h"
#include "core/data/dataset.h"
#include "core/data/preprocess.h"
#include "core/image/image.h"
#include "core/util/file.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  const fs::path dir = fs::path(testing::TempDir()) /
                       ("colour_test_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void WriteImage(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok()) << path;
}

Image Solid(int w, int h, std::vector<uint8_t> pixel) {
  Image image;
  image.width = w;
  image.height = h;
  image.channels = static_cast<int>(pixel.size());
  for (int i = 0; i < w * h; ++i) {
    image.pixels.insert(image.pixels.end(), pixel.begin(), pixel.end());
  }
  return image;
}

Image Noise(int w, int h, int channels, uint32_t seed) {
  Image image = Solid(w, h, std::vector<uint8_t>(channels, 0));
  std::mt19937 rng(seed);
  for (auto& p : image.pixels) p = static_cast<uint8_t>(rng());
  return image;
}

// Mean 0, std 1: inputs are p / 255, easy to read in assertions.
InputSpec Spec(int h, int w, int c,
               ResizePolicy resize = ResizePolicy::kStretch,
               Rgb background = {0, 0, 0}) {
  InputSpec spec;
  spec.height = h;
  spec.width = w;
  spec.channels = c;
  spec.preprocessing.resize = resize;
  spec.preprocessing.background = background;
  spec.preprocessing.mean = {0.0f};
  spec.preprocessing.std = {1.0f};
  return spec;
}

TEST(Preprocess, RgbModelGetsPlanarColourWithPerChannelStatistics) {
  const Image orange = Solid(10, 6, {255, 128, 0});
  InputSpec spec = Spec(4, 4, 3);
  std::vector<float> out(3 * 16);
  ASSERT_TRUE(PreprocessImage(orange, spec, out.data()).ok());
  for (int i = 0; i < 16; ++i) {  // NCHW: all R, then all G, then all B.
    EXPECT_FLOAT_EQ(out[i], 1.0f);
    EXPECT_FLOAT_EQ(out[16 + i], 128 / 255.0f);
    EXPECT_FLOAT_EQ(out[32 + i], 0.0f);
  }
  spec.preprocessing.mean = {0.5f, 0.25f, 0.0f};
  spec.preprocessing.std = {0.5f, 2.0f, 4.0f};
  ASSERT_TRUE(PreprocessImage(orange, spec, out.data()).ok());
  EXPECT_FLOAT_EQ(out[0], (1.0f - 0.5f) / 0.5f);
  EXPECT_FLOAT_EQ(out[16], (128 / 255.0f - 0.25f) / 2.0f);
  EXPECT_FLOAT_EQ(out[32], 0.0f);
}

TEST(Preprocess, ColourToAGrayModelIsConvertedGrayToAnRgbModelReplicated) {
  const Image orange = Solid(8, 8, {255, 128, 0});
  auto gray = FitImage(orange, Spec(8, 8, 1));
  ASSERT_TRUE(gray.ok());
  EXPECT_EQ(gray->channels, 1);
  EXPECT_EQ(gray->pixels[0], ToGrayscale(orange).pixels[0]);  // BT.601 luma
  auto rgb = FitImage(Solid(8, 8, {77}), Spec(8, 8, 3));
  ASSERT_TRUE(rgb.ok());
  ASSERT_EQ(rgb->channels, 3);
  EXPECT_EQ(rgb->pixels, Solid(8, 8, {77, 77, 77}).pixels);
}

TEST(Preprocess, AlphaIsCompositedOverTheModelsBackground) {
  Image rgba = Solid(4, 4, {200, 10, 10, 0});  // fully transparent
  rgba.pixels[3] = 255;                        // but the first pixel
  for (int c : {1, 3}) {
    auto white =
        FitImage(rgba, Spec(4, 4, c, ResizePolicy::kStretch, {255, 255, 255}));
    auto black = FitImage(rgba, Spec(4, 4, c));
    ASSERT_TRUE(white.ok() && black.ok());
    EXPECT_EQ(white->pixels.back(), 255) << c << " channels";
    EXPECT_EQ(black->pixels.back(), 0) << c << " channels";
    EXPECT_EQ(white->pixels[0], black->pixels[0]);  // opaque: unchanged
  }
}

// Three vertical bands, red | green | blue, 30 wide and 10 high.
Image Bands() {
  Image image = Solid(30, 10, {0, 0, 0});
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 30; ++x) image.pixels[(y * 30 + x) * 3 + x / 10] = 255;
  }
  return image;
}

TEST(Preprocess, CropKeepsTheCentrePadKeepsEverythingOnTheBackground) {
  auto crop =
      FitImage(Bands(), Spec(5, 5, 3, ResizePolicy::kShorterSideCentreCrop));
  ASSERT_TRUE(crop.ok());
  EXPECT_EQ(crop->pixels, Solid(5, 5, {0, 255, 0}).pixels);  // green only

  auto pad =
      FitImage(Bands(), Spec(15, 15, 3, ResizePolicy::kPadToSquare, {9, 8, 7}));
  ASSERT_TRUE(pad.ok());
  // Scaled to 15x5, centred: rows 0-4 and 10-14 are background.
  EXPECT_EQ(pad->at(0, 7, 0), 9);
  EXPECT_EQ(pad->at(14, 7, 2), 7);
  EXPECT_EQ(pad->at(7, 1, 0), 255);   // red band on the left
  EXPECT_EQ(pad->at(7, 7, 1), 255);   // green in the middle
  EXPECT_EQ(pad->at(7, 13, 2), 255);  // blue on the right

  auto stretch = FitImage(Bands(), Spec(6, 6, 3));
  ASSERT_TRUE(stretch.ok());
  EXPECT_EQ(stretch->at(3, 0, 0), 255);  // all three bands, squeezed
  EXPECT_EQ(stretch->at(3, 5, 2), 255);
}

TEST(Preprocess, ExtremeAspectRatiosAreAcceptedWithEveryPolicy) {
  for (const Image& strip : {Noise(1, 5000, 3, 1), Noise(5000, 1, 4, 2)}) {
    for (ResizePolicy policy :
         {ResizePolicy::kStretch, ResizePolicy::kShorterSideCentreCrop,
          ResizePolicy::kPadToSquare}) {
      for (int c : {1, 3}) {
        std::vector<float> out(c * 64 * 64);
        absl::Status s =
            PreprocessImage(strip, Spec(64, 64, c, policy), out.data());
        ASSERT_TRUE(s.ok()) << ResizePolicyName(policy) << ": " << s;
        for (float v : out) ASSERT_TRUE(std::isfinite(v) && v >= 0 && v <= 1);
      }
    }
  }
}

TEST(Preprocess, BadSpecsAndImagesAreInvalidArgument) {
  const Image image = Solid(4, 4, {1, 2, 3});
  std::vector<float> out(3 * 16);
  auto code = [&](InputSpec spec, const Image& im) {
    return PreprocessImage(im, spec, out.data()).code();
  };
  const auto kBad = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(Spec(4, 4, 2), image), kBad);
  EXPECT_EQ(code(Spec(0, 4, 3), image), kBad);
  EXPECT_EQ(code(Spec(5000, 4, 3), image), kBad);
  InputSpec spec = Spec(4, 4, 3);
  spec.preprocessing.mean = {0.1f, 0.2f};
  EXPECT_EQ(code(spec, image), kBad);
  spec = Spec(4, 4, 3);
  spec.preprocessing.std = {1.0f, 0.0f, 1.0f};
  EXPECT_EQ(code(spec, image), kBad);
  spec.preprocessing.std = {NAN};
  EXPECT_EQ(code(spec, image), kBad);
  spec = Spec(4, 4, 3);
  spec.preprocessing.resize = static_cast<ResizePolicy>(7);
  EXPECT_EQ(code(spec, image), kBad);
  EXPECT_EQ(code(Spec(4, 4, 3), Image()), kBad);
  Image short_buffer = image;
  short_buffer.pixels.pop_back();
  EXPECT_EQ(code(Spec(4, 4, 3), short_buffer), kBad);
  EXPECT_TRUE(ValidateInputSpec(InputSpec()).ok());
}

// The defaults are format-1 models' preprocessing: grayscale over black,
// then stretch. Their inputs must not change by a single bit.
TEST(Preprocess, DefaultSpecFitsExactlyAsFormatOneModelsDid) {
  for (int c : {1, 3, 4}) {
    const Image image = Noise(45, 31, c, 10 + c);
    auto fitted = FitImage(image, InputSpec());
    ASSERT_TRUE(fitted.ok());
    EXPECT_EQ(fitted->pixels, Resize(ToGrayscale(image), 28, 28).pixels) << c;
  }
}

TEST(Preprocess, MeasureChannelStatsIsPerChannel) {
  // Two 1-pixel RGB images: R = {0, 255}, G = {51, 51}, B = {255, 255}.
  const std::vector<uint8_t> pixels = {0, 51, 255, 255, 51, 255};
  Preprocessing p;
  MeasureChannelStats(pixels.data(), 2, 1, 3, &p);
  ASSERT_EQ(p.mean.size(), 3u);
  ASSERT_EQ(p.std.size(), 3u);
  EXPECT_FLOAT_EQ(p.mean[0], 0.5f);
  EXPECT_FLOAT_EQ(p.std[0], 0.5f);
  EXPECT_FLOAT_EQ(p.mean[1], 0.2f);
  EXPECT_FLOAT_EQ(p.std[1], 1e-3f);  // constant channel: floored
  EXPECT_FLOAT_EQ(p.mean[2], 1.0f);
}

// A folder of real files: colour PNG and JPEG, gray, RGBA, varied sizes.
std::string MakeMixedFolder(const std::string& name, int per_class, int w,
                            int h) {
  const std::string root = TempDir(name);
  for (int i = 0; i < per_class; ++i) {
    const int wi = w + 13 * i, hi = h + 7 * (i % 3);
    const std::string n = std::to_string(i);
    WriteImage(root + "/red/" + n + ".png",
               *EncodePng(Solid(wi, hi, {220, 30, 30})));
    WriteImage(root + "/blue/" + n + ".jpg",
               *EncodeJpeg(Solid(hi, wi, {30, 30, 220})));
    WriteImage(root + "/gray/" + n + ".png", *EncodePng(Noise(wi, wi, 1, i)));
    WriteImage(root + "/glass/" + n + ".png",
               *EncodePng(Solid(wi, hi, {0, 200, 0, 128})));
  }
  return root;
}

TEST(ImageFolder, ColourFolderKeepsRgbAtTheInputSizeNotTheFilesSize) {
  const std::string root = MakeMixedFolder("mixed", 5, 300, 200);
  ImageFolderOptions options;
  options.height = options.width = 64;
  auto data = LoadImageFolder(root, options);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->size(), 20u);
  EXPECT_EQ(data->channels, 3);
  EXPECT_EQ(data->pixels.size(), 20u * 64 * 64 * 3);
  EXPECT_TRUE(data->sources_are_files);
  // Full-size decoded pixels would be ~20 x 300 x 200 x 3 = 3.6 MB.
  EXPECT_LT(data->MemoryBytes(), 20u * 64 * 64 * 3 + 16 * 1024);
  EXPECT_GE(data->MemoryBytes(), 20u * 64 * 64 * 3);
  // Labels sorted: blue, glass, gray, red.
  const Image blue = data->GetImage(0);
  EXPECT_NEAR(blue.at(32, 32, 2), 220, 4);
  EXPECT_NEAR(blue.at(32, 32, 0), 30, 4);
  const Image glass = data->GetImage(5);  // half-transparent green over white
  EXPECT_NEAR(glass.at(10, 10, 0), 127, 2);
  EXPECT_NEAR(glass.at(10, 10, 1), 228, 2);
  const Image gray = data->GetImage(10);  // replicated
  EXPECT_EQ(gray.at(7, 9, 0), gray.at(7, 9, 1));
  EXPECT_EQ(gray.at(7, 9, 1), gray.at(7, 9, 2));
  // Each image is FitImage of its file with the dataset's spec.
  const Image red_file = *DecodeImage(*ReadFile(data->sources[19]));
  InputSpec spec = data->FittedSpec();
  EXPECT_EQ(spec.preprocessing.resize, ResizePolicy::kShorterSideCentreCrop);
  EXPECT_EQ(spec.preprocessing.background, (Rgb{255, 255, 255}));
  EXPECT_EQ(FitImage(red_file, spec)->pixels, data->GetImage(19).pixels);

  options.channels = 1;
  auto gray_data = LoadImageFolder(root, options);
  ASSERT_TRUE(gray_data.ok());
  EXPECT_EQ(gray_data->channels, 1);
  EXPECT_EQ(gray_data->pixels.size(), 20u * 64 * 64);
}

TEST(ImageFolder, GrayFolderStaysGrayAndSubsetKeepsTheShape) {
  const std::string root = TempDir("grayonly");
  for (int i = 0; i < 3; ++i) {
    WriteImage(root + "/a/" + std::to_string(i) + ".png",
               *EncodePng(Noise(20, 30, 1, i)));
    // RGB files of gray content (R = G = B) are gray too.
    WriteImage(root + "/b/" + std::to_string(i) + ".jpg",
               *EncodeJpeg(ToRgb(Noise(30, 20, 1, 9 + i))));
  }
  auto data = LoadImageFolder(root);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->channels, 1);
  EXPECT_EQ(data->pixels.size(), 6u * 28 * 28);
  const Dataset sub = data->Subset({4, 1});
  EXPECT_EQ(sub.channels, 1);
  EXPECT_EQ(sub.GetImage(0).pixels, data->GetImage(4).pixels);
  EXPECT_TRUE(sub.sources_are_files);
  EXPECT_EQ(sub.resize, data->resize);

  ImageFolderOptions bad;
  bad.channels = 2;
  EXPECT_EQ(LoadImageFolder(root, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ImageFolder, MeasuredPreprocessingHasOneMeanPerChannel) {
  const std::string root = MakeMixedFolder("measure", 2, 40, 40);
  auto data = LoadImageFolder(root);
  ASSERT_TRUE(data.ok());
  const Preprocessing p = MeasuredPreprocessing(*data);
  ASSERT_EQ(p.mean.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    double sum = 0;
    for (size_t i = c; i < data->pixels.size(); i += 3)
      sum += data->pixels[i] / 255.0;
    EXPECT_NEAR(p.mean[c], sum / (data->pixels.size() / 3), 1e-6) << c;
  }
  EXPECT_EQ(p.resize, data->resize);
  EXPECT_EQ(p.background, data->background);
  for (float s : p.std) EXPECT_GT(s, 0.0f);
  EXPECT_TRUE(ValidatePreprocessing(p, 3).ok());
}

TEST(StoredPicture, FolderImagesAreTheUsersFileBoundedOthersTheHeldPixels) {
  const std::string root = TempDir("pictures");
  Image photo = Noise(600, 300, 3, 4);
  WriteImage(root + "/c/big.jpg", *EncodeJpeg(photo));
  WriteImage(root + "/c/small.png", *EncodePng(Noise(40, 20, 4, 5)));
  auto data = LoadImageFolder(root);
  ASSERT_TRUE(data.ok());
  auto big = DecodeImage(*StoredPicture(*data, 0, 256));
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->width, 256);
  EXPECT_EQ(big->height, 128);
  EXPECT_EQ(big->channels, 3);
  auto full = DecodeImage(*StoredPicture(*data, 0, 0));
  EXPECT_EQ(full->width, 600);
  auto small = DecodeImage(*StoredPicture(*data, 1, 256));
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->pixels, Noise(40, 20, 4, 5).pixels);  // alpha kept, lossless

  Dataset held = *data;
  held.sources_are_files = false;  // e.g. Fashion-MNIST: its own pixels
  auto own = DecodeImage(*StoredPicture(held, 0, 256));
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->pixels, held.GetImage(0).pixels);

  fs::remove(root + "/c/big.jpg");
  absl::StatusOr<std::string> gone = StoredPicture(*data, 0, 256);
  EXPECT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("big.jpg"), std::string::npos)
      << gone.status();
}

AugmentOptions ColourAugment() {
  AugmentOptions o;
  o.crop_min_area = 0.3f;
  o.brightness = o.contrast = o.saturation = 0.4f;
  return o;
}

TEST(Augment, ColourAugmentationIsSeededAndResumesFromTheRngState) {
  const Image image = Noise(16, 12, 3, 1);
  const AugmentOptions o = ColourAugment();
  std::vector<uint8_t> a(image.pixels.size()), b(a.size());
  Rng first(42), second(42);
  for (int i = 0; i < 5; ++i) {
    AugmentImage(image.pixels.data(), 12, 16, o, &first, a.data(), 3);
    AugmentImage(image.pixels.data(), 12, 16, o, &second, b.data(), 3);
    ASSERT_EQ(a, b);
  }
  // A checkpoint keeps Rng::state(); restoring it continues identically.
  const Rng::State saved = first.state();
  AugmentImage(image.pixels.data(), 12, 16, o, &first, a.data(), 3);
  Rng resumed(7);
  resumed.set_state(saved);
  AugmentImage(image.pixels.data(), 12, 16, o, &resumed, b.data(), 3);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, image.pixels);
  // The number of draws does not depend on the image.
  Rng x(3), y(3);
  const Image other = Solid(16, 12, {9, 9, 9});
  AugmentImage(image.pixels.data(), 12, 16, o, &x, a.data(), 3);
  AugmentImage(other.pixels.data(), 12, 16, o, &y, b.data(), 3);
  EXPECT_EQ(x.state(), y.state());
}

TEST(Augment, FlipOffNeverMirrors) {
  AugmentOptions o;
  o.max_shift = 0;
  o.horizontal_flip = false;
  const Image image = Noise(9, 5, 3, 2);
  std::vector<uint8_t> out(image.pixels.size());
  Rng rng(1);
  for (int i = 0; i < 20; ++i) {
    AugmentImage(image.pixels.data(), 5, 9, o, &rng, out.data(), 3);
    ASSERT_EQ(out, image.pixels);
  }
  o.horizontal_flip = true;
  int mirrored = 0;
  for (int i = 0; i < 20; ++i) {
    AugmentImage(image.pixels.data(), 5, 9, o, &rng, out.data(), 3);
    mirrored += out != image.pixels;
    // RGB pixels move whole: column 0 of a mirror is column 8's colour.
    if (out != image.pixels) {
      ASSERT_EQ(out[0], image.pixels[8 * 3]);
      ASSERT_EQ(out[2], image.pixels[8 * 3 + 2]);
    }
  }
  EXPECT_GT(mirrored, 3);
}

TEST(Augment, RandomResizedCropZoomsIntoTheImage) {
  AugmentOptions o;
  o.max_shift = 0;
  o.horizontal_flip = false;
  o.crop_min_area = 0.2f;
  // A horizontal ramp: a zoomed window has a smaller range of values.
  Image ramp = Solid(32, 32, {0});
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 32; ++x)
      ramp.pixels[y * 32 + x] = static_cast<uint8_t>(x * 8);
  }
  std::vector<uint8_t> out(ramp.pixels.size());
  Rng rng(5);
  int zoomed = 0;
  for (int i = 0; i < 20; ++i) {
    AugmentImage(ramp.pixels.data(), 32, 32, o, &rng, out.data(), 1);
    const auto [lo, hi] = std::minmax_element(out.begin(), out.end());
    zoomed += *hi - *lo < 248 - 20;
    // Still a left-to-right ramp.
    ASSERT_LE(out[0], out[31]);
  }
  EXPECT_GT(zoomed, 10);
  const Image flat = Solid(20, 10, {50, 60, 70});
  std::vector<uint8_t> flat_out(flat.pixels.size());
  AugmentImage(flat.pixels.data(), 10, 20, o, &rng, flat_out.data(), 3);
  EXPECT_EQ(flat_out, flat.pixels);
}

TEST(Augment, JitterScalesBrightnessContrastAndSaturation) {
  AugmentOptions o;
  o.max_shift = 0;
  o.horizontal_flip = false;
  o.brightness = 0.5f;
  const Image image = Solid(4, 4, {100, 50, 20});
  std::vector<uint8_t> out(image.pixels.size());
  Rng rng(11);
  AugmentImage(image.pixels.data(), 4, 4, o, &rng, out.data(), 3);
  const double factor = out[0] / 100.0;  // one factor for every channel
  EXPECT_NE(factor, 1.0);
  EXPECT_NEAR(out[1], 50 * factor, 1.0);
  EXPECT_NEAR(out[2], 20 * factor, 1.0);

  o.brightness = 0;
  o.saturation = 1.0f;  // gray has no saturation to change
  const Image gray = Noise(6, 6, 3, 0);
  const Image gray3 = ToRgb(ToGrayscale(gray));
  std::vector<uint8_t> gray_out(gray3.pixels.size());
  for (int i = 0; i < 5; ++i) {
    AugmentImage(gray3.pixels.data(), 6, 6, o, &rng, gray_out.data(), 3);
    for (size_t k = 0; k < gray_out.size(); ++k) {
      ASSERT_NEAR(gray_out[k], gray3.pixels[k], 1);
    }
  }
  o.saturation = 0;
  o.contrast = 1.0f;  // a constant gray image has no contrast to change
  const Image flat = Solid(4, 4, {90, 90, 90});
  for (int i = 0; i < 5; ++i) {
    AugmentImage(flat.pixels.data(), 4, 4, o, &rng, out.data(), 3);
    ASSERT_EQ(out, flat.pixels);
  }
}

TEST(Augment, BadOptionsNameTheField) {
  AugmentOptions o;
  EXPECT_TRUE(ValidateAugmentOptions(o).ok());
  EXPECT_TRUE(ValidateAugmentOptions(ColourAugment()).ok());
  o.crop_min_area = 0;
  EXPECT_NE(ValidateAugmentOptions(o).message().find("crop_min_area"),
            std::string::npos);
  o = AugmentOptions();
  o.saturation = 1.5f;
  EXPECT_NE(ValidateAugmentOptions(o).message().find("saturation"),
            std::string::npos);
  o = AugmentOptions();
  o.max_shift = -1;
  EXPECT_EQ(ValidateAugmentOptions(o).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace embedsearch
