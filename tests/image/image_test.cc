#include "core/image/image.h"

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/file.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

std::string Fixture(const std::string& name) {
  auto bytes = ReadFile(std::string(EMBEDSEARCH_SOURCE_DIR) +
                        "/tests/testdata/images/" + name);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : std::string();
}

// The pattern of tests/testdata/images/make_fixtures.py (8x6).
int V(int x, int y) { return (x * 31 + y * 17) % 256; }
int Rgb(int x, int y, int c) {
  return c == 0 ? V(x, y) : c == 1 ? 255 - V(x, y) : (x * 40) % 256;
}
int Alpha(int y) { return (y * 50) % 256; }

Image MakeImage(int w, int h, int c, uint32_t seed) {
  Image image;
  image.width = w;
  image.height = h;
  image.channels = c;
  image.pixels.resize(static_cast<size_t>(w) * h * c);
  std::mt19937 rng(seed);
  for (auto& p : image.pixels) p = static_cast<uint8_t>(rng());
  return image;
}

Image Constant(int w, int h, int c, uint8_t value) {
  Image image;
  image.width = w;
  image.height = h;
  image.channels = c;
  image.pixels.assign(static_cast<size_t>(w) * h * c, value);
  return image;
}

// A PNG from raw chunks, to forge headers the encoders would never write.
std::string PngChunk(const std::string& type, const std::string& data) {
  std::string out;
  const uint32_t len = static_cast<uint32_t>(data.size());
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(len >> s));
  out += type + data;
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(type.data()), 4);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), data.size());
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(crc >> s));
  return out;
}

std::string Be32(uint32_t v) {
  std::string out;
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
  return out;
}

TEST(Image, DetectsFormatsByMagic) {
  EXPECT_EQ(DetectFormat(Fixture("gray8.png")), ImageFormat::kPng);
  EXPECT_EQ(DetectFormat(Fixture("smooth.jpg")), ImageFormat::kJpeg);
  EXPECT_EQ(DetectFormat(Fixture("comment.pgm")), ImageFormat::kPgm);
  EXPECT_EQ(DetectFormat("GIF89a"), ImageFormat::kUnknown);
  EXPECT_EQ(DetectFormat(""), ImageFormat::kUnknown);
  auto unknown = DecodeImage("GIF89a....");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeImage("").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Image, DecodesEightBitPngsOfEveryColourType) {
  auto gray = DecodeImage(Fixture("gray8.png"));
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_EQ(gray->channels, 1);
  auto rgb = DecodeImage(Fixture("rgb8.png"));
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(rgb->channels, 3);
  auto rgba = DecodeImage(Fixture("rgba8.png"));
  ASSERT_TRUE(rgba.ok()) << rgba.status();
  EXPECT_EQ(rgba->channels, 4);
  auto graya = DecodeImage(Fixture("graya8.png"));
  ASSERT_TRUE(graya.ok()) << graya.status();
  EXPECT_EQ(graya->channels, 4);  // Gray+alpha widens to RGBA.
  for (const Image* im : {&*gray, &*rgb, &*rgba, &*graya}) {
    ASSERT_EQ(im->width, 8);
    ASSERT_EQ(im->height, 6);
    ASSERT_EQ(im->pixels.size(), 8u * 6 * im->channels);
  }
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 8; ++x) {
      EXPECT_EQ(gray->at(y, x), V(x, y));
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(rgb->at(y, x, c), Rgb(x, y, c));
        EXPECT_EQ(rgba->at(y, x, c), Rgb(x, y, c));
        EXPECT_EQ(graya->at(y, x, c), V(x, y));
      }
      EXPECT_EQ(rgba->at(y, x, 3), Alpha(y));
      EXPECT_EQ(graya->at(y, x, 3), Alpha(y));
    }
  }
}

TEST(Image, StripsSixteenBitPngsToTheHighByte) {
  auto gray = DecodeImage(Fixture("gray16.png"));
  ASSERT_TRUE(gray.ok()) << gray.status();
  auto rgb = DecodeImage(Fixture("rgb16.png"));
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  ASSERT_EQ(gray->channels, 1);
  ASSERT_EQ(rgb->channels, 3);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 8; ++x) {
      EXPECT_EQ(gray->at(y, x), V(x, y));
      for (int c = 0; c < 3; ++c) EXPECT_EQ(rgb->at(y, x, c), Rgb(x, y, c));
    }
  }
}

TEST(Image, ExpandsPalettesLowBitDepthsAndInterlace) {
  auto pal = DecodeImage(Fixture("palette.png"));
  ASSERT_TRUE(pal.ok()) << pal.status();
  ASSERT_EQ(pal->channels, 4);  // Transparency entry gives alpha.
  const int colours[4][4] = {
      {0, 0, 0, 0}, {255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}};
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 8; ++x) {
      for (int c = 0; c < 4; ++c) {
        EXPECT_EQ(pal->at(y, x, c), colours[(x + y) % 4][c]);
      }
    }
  }
  auto bits = DecodeImage(Fixture("gray1.png"));
  ASSERT_TRUE(bits.ok()) << bits.status();
  ASSERT_EQ(bits->channels, 1);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 8; ++x) {
      EXPECT_EQ(bits->at(y, x), V(x, y) >= 128 ? 255 : 0);
    }
  }
  auto interlaced = DecodeImage(Fixture("interlaced.png"));
  ASSERT_TRUE(interlaced.ok()) << interlaced.status();
  auto plain = DecodeImage(Fixture("rgb8.png"));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(interlaced->pixels, plain->pixels);
}

TEST(Image, PngRoundTripIsLosslessForGrayRgbAndRgba) {
  for (int c : {1, 3, 4}) {
    Image image = MakeImage(37, 23, c, 7 + c);
    auto png = EncodePng(image);
    ASSERT_TRUE(png.ok()) << png.status();
    auto back = DecodePng(*png);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->width, 37);
    EXPECT_EQ(back->height, 23);
    EXPECT_EQ(back->channels, c);
    EXPECT_EQ(back->pixels, image.pixels);
  }
}

double MeanAbsDiff(const Image& a, const Image& b) {
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    sum += std::abs(int{a.pixels[i]} - int{b.pixels[i]});
  }
  return sum / a.pixels.size();
}

Image Smooth(int w, int h, int c) {
  Image image = Constant(w, h, c, 0);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int k = 0; k < c; ++k) {
        image.pixels[(y * w + x) * c + k] =
            static_cast<uint8_t>(x * 2 + y * 2 + k * 10);  // No wrap.
      }
    }
  }
  return image;
}

TEST(Image, JpegRoundTripIsCloseWithinTolerance) {
  for (int c : {1, 3}) {
    Image image = Smooth(64, 48, c);
    auto jpeg = EncodeJpeg(image, 95);
    ASSERT_TRUE(jpeg.ok()) << jpeg.status();
    auto back = DecodeImage(*jpeg);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->width, 64);
    ASSERT_EQ(back->height, 48);
    ASSERT_EQ(back->channels, c);
    EXPECT_LT(MeanAbsDiff(image, *back), 2.0) << "channels " << c;
  }
  // RGBA has no JPEG form: alpha is composited over black first.
  Image rgba = Smooth(16, 16, 4);
  for (size_t i = 3; i < rgba.pixels.size(); i += 4) rgba.pixels[i] = 0;
  auto jpeg = EncodeJpeg(rgba, 95);
  ASSERT_TRUE(jpeg.ok());
  auto back = DecodeImage(*jpeg);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->channels, 3);
  EXPECT_LT(MeanAbsDiff(Constant(16, 16, 3, 0), *back), 2.0);
  EXPECT_EQ(EncodeJpeg(rgba, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Image, DecodesThirdPartyJpegsBaselineProgressiveGrayAndCmyk) {
  for (const char* name :
       {"smooth.jpg", "progressive.jpg", "gray.jpg", "cmyk.jpg"}) {
    auto image = DecodeImage(Fixture(name));
    ASSERT_TRUE(image.ok()) << name << ": " << image.status();
    EXPECT_EQ(image->width, 32) << name;
    EXPECT_EQ(image->height, 24) << name;
    const bool gray = std::string(name) == "gray.jpg";
    ASSERT_EQ(image->channels, gray ? 1 : 3) << name;
    double sum = 0;
    for (int y = 0; y < 24; ++y) {
      for (int x = 0; x < 32; ++x) {
        const int expected[3] = {x * 8, y * 10, (x + y) * 4};
        for (int c = 0; c < image->channels; ++c) {
          sum += std::abs(image->at(y, x, c) - expected[c]);
        }
      }
    }
    EXPECT_LT(sum / image->pixels.size(), 4.0) << name;
  }
}

TEST(Image, PgmRoundTripAndCommentsAndMaxval) {
  Image image = MakeImage(13, 9, 1, 3);
  auto pgm = EncodePgm(image);
  ASSERT_TRUE(pgm.ok());
  auto back = DecodePgm(*pgm);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->pixels, image.pixels);
  EXPECT_EQ(back->width, 13);

  auto commented = DecodeImage(Fixture("comment.pgm"));
  ASSERT_TRUE(commented.ok()) << commented.status();
  ASSERT_EQ(commented->width, 4);
  ASSERT_EQ(commented->height, 2);
  EXPECT_EQ(commented->pixels,
            (std::vector<uint8_t>{0, 85, 170, 255, 255, 170, 85, 0}));

  EXPECT_EQ(DecodePgm("P5 2 1 255\n\x05\x06").value().pixels,
            (std::vector<uint8_t>{5, 6}));
  auto wide = DecodePgm("P5 1 1 65535\n\x01\x02");
  EXPECT_EQ(wide.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wide.status().message().find("maxval"), std::string::npos);
  auto above = DecodePgm("P5 1 1 15\n\x10");
  EXPECT_EQ(above.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Image, EncodersRejectMalformedImages) {
  Image bad = Constant(4, 4, 3, 0);
  bad.pixels.pop_back();
  EXPECT_EQ(EncodePng(bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeJpeg(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePgm(bad).status().code(), absl::StatusCode::kInvalidArgument);
  Image two = Constant(4, 4, 2, 0);
  EXPECT_EQ(EncodePng(two).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(Image{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Every prefix of a valid file is an error naming the format, never a crash
// and never an image built from missing bytes.
void ExpectEveryTruncationFails(const std::string& bytes,
                                const std::string& format) {
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto image = DecodeImage(absl::string_view(bytes.data(), n));
    ASSERT_FALSE(image.ok()) << format << " truncated to " << n << " of "
                             << bytes.size() << " bytes decoded";
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
    if (n >= 8) {  // Past the magic, the message names the format.
      EXPECT_NE(image.status().message().find(format), std::string::npos)
          << image.status();
    }
  }
}

TEST(Image, EveryTruncationOfEveryFormatIsAnError) {
  for (const char* name : {"gray8.png", "rgba8.png", "palette.png",
                           "interlaced.png", "gray16.png"}) {
    SCOPED_TRACE(name);
    ExpectEveryTruncationFails(Fixture(name), "PNG");
  }
  for (const char* name : {"smooth.jpg", "progressive.jpg", "cmyk.jpg"}) {
    SCOPED_TRACE(name);
    ExpectEveryTruncationFails(Fixture(name), "JPEG");
  }
  ExpectEveryTruncationFails(Fixture("comment.pgm"), "PGM");
  ExpectEveryTruncationFails(*EncodePgm(MakeImage(5, 5, 1, 1)), "PGM");
}

// Random corruption: the decoder returns an error or a well-formed image.
TEST(Image, RandomByteFlipsGiveAnErrorOrAValidImage) {
  std::mt19937 rng(1234);
  int decoded = 0, refused = 0;
  for (const char* name : {"gray8.png", "rgb16.png", "palette.png",
                           "smooth.jpg", "progressive.jpg", "comment.pgm"}) {
    const std::string original = Fixture(name);
    for (int trial = 0; trial < 300; ++trial) {
      std::string bytes = original;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
      }
      auto image = DecodeImage(bytes);
      if (image.ok()) {
        ++decoded;
        ASSERT_GT(image->width, 0);
        ASSERT_GT(image->height, 0);
        ASSERT_EQ(image->pixels.size(), static_cast<size_t>(image->width) *
                                            image->height * image->channels);
      } else {
        ++refused;
        ASSERT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument)
            << name << ": " << image.status();
      }
    }
  }
  EXPECT_GT(refused, 0);
}

TEST(Image, PngBombHeaderIsRefusedBeforeAllocation) {
  std::string ihdr =
      Be32(100000) + Be32(100000) + std::string("\x08\x00\x00\x00\x00", 5);
  std::string png =
      std::string("\x89PNG\r\n\x1a\n", 8) + PngChunk("IHDR", ihdr) +
      PngChunk("IDAT", std::string(16, '\0')) + PngChunk("IEND", "");
  auto image = DecodeImage(png);
  ASSERT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(image.status().message().find("100000x100000"), std::string::npos)
      << image.status();
  // Under the side limit but above the pixel budget.
  DecodeLimits small;
  small.max_pixels = 100;
  auto budget = DecodePng(Fixture("rgb16.png"), small);  // 8x6 = 48: fine.
  EXPECT_TRUE(budget.ok());
  small.max_pixels = 40;
  budget = DecodePng(Fixture("rgb16.png"), small);
  EXPECT_EQ(budget.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(budget.status().message().find("pixels"), std::string::npos);
}

TEST(Image, JpegBombHeaderIsRefusedBeforeAllocation) {
  std::string jpeg = Fixture("smooth.jpg");
  // Patch the SOF marker's height and width to 30000 (0x7530): 900 MP.
  size_t sof = std::string::npos;
  for (size_t i = 2; i + 9 < jpeg.size(); ++i) {
    const unsigned char m = static_cast<unsigned char>(jpeg[i + 1]);
    if (static_cast<unsigned char>(jpeg[i]) == 0xFF &&
        (m == 0xC0 || m == 0xC2)) {
      sof = i;
      break;
    }
  }
  ASSERT_NE(sof, std::string::npos);
  for (int k : {5, 7}) {
    jpeg[sof + k] = '\x75';
    jpeg[sof + k + 1] = '\x30';
  }
  auto image = DecodeImage(jpeg);
  ASSERT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(image.status().message().find("30000x30000"), std::string::npos)
      << image.status();
}

TEST(Image, PgmBombHeaderIsRefusedBeforeAllocation) {
  auto image = DecodeImage("P5\n100000 100000\n255\n\x01\x02\x03");
  ASSERT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(image.status().message().find("100000x100000"), std::string::npos)
      << image.status();
  auto huge = DecodeImage("P5\n99999999999999999999 1\n255\n");
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Image, GrayscaleUsesBt601AndCompositesAlphaOverBlack) {
  Image rgb = Constant(1, 1, 3, 0);
  rgb.pixels = {255, 0, 0};
  EXPECT_EQ(ToGrayscale(rgb).pixels[0], 76);  // 0.299 * 255.
  rgb.pixels = {0, 255, 0};
  EXPECT_EQ(ToGrayscale(rgb).pixels[0], 150);  // 0.587 * 255.
  rgb.pixels = {200, 200, 200};
  EXPECT_EQ(ToGrayscale(rgb).pixels[0], 200);
  Image rgba = Constant(2, 1, 4, 0);
  rgba.pixels = {200, 200, 200, 0, 200, 200, 200, 255};
  Image gray = ToGrayscale(rgba);
  EXPECT_EQ(gray.channels, 1);
  EXPECT_EQ(gray.pixels, (std::vector<uint8_t>{0, 200}));
  Image back = ToRgb(gray);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels, (std::vector<uint8_t>{0, 0, 0, 200, 200, 200}));
}

// (This file has a function named Rgb; the colour struct by another name.)
using Colour = struct Rgb;

TEST(Image, ConversionsCompositeAlphaOverTheGivenBackground) {
  Image rgba = Constant(3, 1, 4, 0);
  rgba.pixels = {200, 100, 0, 0, 200, 100, 0, 255, 200, 100, 0, 128};
  const Image white = ToRgb(rgba, Colour{255, 255, 255});
  EXPECT_EQ(white.channels, 3);
  EXPECT_EQ(white.pixels,
            (std::vector<uint8_t>{
                255, 255, 255, 200, 100, 0, (200 * 128 + 255 * 127 + 127) / 255,
                (100 * 128 + 255 * 127 + 127) / 255, (255 * 127 + 127) / 255}));
  EXPECT_EQ(ToRgb(rgba, Colour{}).pixels, ToRgb(rgba).pixels);
  EXPECT_EQ(ToGrayscale(rgba, Colour{}).pixels, ToGrayscale(rgba).pixels);
  EXPECT_EQ(ToGrayscale(rgba, Colour{255, 255, 255}).pixels,
            ToGrayscale(white).pixels);
  EXPECT_EQ(ToGrayscale(rgba, Colour{255, 255, 255}).pixels[0], 255);
  const Image gray = Constant(2, 2, 1, 9);  // no alpha: nothing to composite
  EXPECT_EQ(ToRgb(gray, Colour{1, 2, 3}).pixels, ToRgb(gray).pixels);
}

TEST(Image, CropClipsToTheImage) {
  Image image = Constant(4, 3, 3, 0);
  for (size_t i = 0; i < image.pixels.size(); ++i)
    image.pixels[i] = static_cast<uint8_t>(i);
  const Image mid = Crop(image, 1, 1, 2, 2);
  EXPECT_EQ(mid.width, 2);
  EXPECT_EQ(mid.height, 2);
  EXPECT_EQ(mid.at(0, 0, 0), image.at(1, 1, 0));
  EXPECT_EQ(mid.at(1, 1, 2), image.at(2, 2, 2));
  const Image clipped = Crop(image, 3, -5, 10, 10);
  EXPECT_EQ(clipped.width, 1);
  EXPECT_EQ(clipped.height, 3);
  EXPECT_EQ(clipped.at(2, 0, 1), image.at(2, 3, 1));
  EXPECT_EQ(Crop(image, 9, 9, 2, 2).pixels.size(), 0u);
}

TEST(Image, BoundImageShrinksTheLongerSideKeepingTheAspect) {
  const Image wide = Constant(1000, 300, 3, 40);
  const Image bounded = BoundImage(wide, 256);
  EXPECT_EQ(bounded.width, 256);
  EXPECT_EQ(bounded.height, 77);
  EXPECT_EQ(bounded.channels, 3);
  EXPECT_EQ(bounded.at(40, 100, 1), 40);
  const Image strip = BoundImage(Constant(1, 5000, 4, 7), 256);
  EXPECT_EQ(strip.width, 1);
  EXPECT_EQ(strip.height, 256);
  EXPECT_EQ(BoundImage(wide, 0).width, 1000);     // 0: full size
  EXPECT_EQ(BoundImage(wide, 1000).width, 1000);  // already small enough
}

TEST(Image, AreaShrinkOfAConstantImageIsConstant) {
  for (int c : {1, 3}) {
    Image image = Constant(97, 61, c, 173);
    for (auto [w, h] : {std::pair{28, 28}, {13, 7}, {1, 1}, {96, 60}}) {
      Image out = ResizeArea(image, w, h);
      ASSERT_EQ(out.pixels.size(), static_cast<size_t>(w) * h * c);
      for (uint8_t p : out.pixels) ASSERT_EQ(p, 173) << w << "x" << h;
      Image any = Resize(image, w, h);
      for (uint8_t p : any.pixels) ASSERT_EQ(p, 173) << w << "x" << h;
    }
  }
  Image grow = ResizeBilinear(Constant(3, 2, 1, 9), 17, 11);
  for (uint8_t p : grow.pixels) ASSERT_EQ(p, 9);
}

TEST(Image, AreaShrinkAveragesBlocks) {
  Image image = Constant(2, 2, 1, 0);
  image.pixels = {10, 20, 30, 40};
  EXPECT_EQ(Resize(image, 1, 1).pixels, (std::vector<uint8_t>{25}));
  Image four = Constant(4, 2, 1, 0);
  four.pixels = {0, 4, 8, 12, 2, 6, 10, 14};
  EXPECT_EQ(ResizeArea(four, 2, 1).pixels, (std::vector<uint8_t>{3, 11}));
  // A non-integer factor: 3 -> 2 weighs the middle pixel half to each side.
  Image three = Constant(3, 1, 1, 0);
  three.pixels = {0, 90, 180};
  EXPECT_EQ(ResizeArea(three, 2, 1).pixels, (std::vector<uint8_t>{30, 150}));
}

TEST(Image, BilinearGrowInterpolatesBetweenNeighbours) {
  Image image = Constant(2, 1, 1, 0);
  image.pixels = {0, 100};
  Image out = ResizeBilinear(image, 4, 1);
  // Centres at -0.25, 0.25, 0.75, 1.25 source px: clamped at the edges.
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{0, 25, 75, 100}));
  EXPECT_EQ(Resize(image, 4, 1).pixels, out.pixels);    // Growing: bilinear.
  EXPECT_EQ(Resize(image, 2, 1).pixels, image.pixels);  // Same size: copy.
}

}  // namespace
}  // namespace embedsearch
