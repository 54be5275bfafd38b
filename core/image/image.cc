// Format sniffing, dispatch, limits and colour conversions.
#include "core/image/image.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/image/codec_internal.h"

namespace embedsearch {
namespace image_internal {

absl::Status CheckDimensions(absl::string_view format, int64_t width,
                             int64_t height, const DecodeLimits& limits) {
  if (width <= 0 || height <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        format, ": invalid image size ", width, "x", height, " in header"));
  }
  if (width > limits.max_side || height > limits.max_side) {
    return absl::InvalidArgumentError(absl::StrCat(
        format, ": image size ", width, "x", height, " exceeds the limit of ",
        limits.max_side, " px per side"));
  }
  if (width * height > limits.max_pixels) {
    return absl::InvalidArgumentError(absl::StrCat(
        format, ": image size ", width, "x", height, " (", width * height,
        " pixels) exceeds the limit of ", limits.max_pixels, " pixels"));
  }
  return absl::OkStatus();
}

absl::Status ValidateImage(absl::string_view what, const Image& image) {
  if (image.width <= 0 || image.height <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": empty image (", image.width, "x", image.height, ")"));
  }
  if (image.channels != 1 && image.channels != 3 && image.channels != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": unsupported channel count ", image.channels,
                     " (want 1, 3 or 4)"));
  }
  const size_t expected = static_cast<size_t>(image.width) * image.height *
                          static_cast<size_t>(image.channels);
  if (image.pixels.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": pixel buffer holds ", image.pixels.size(),
                     " bytes, expected ", expected, " for ", image.width, "x",
                     image.height, "x", image.channels));
  }
  return absl::OkStatus();
}

}  // namespace image_internal

ImageFormat DetectFormat(absl::string_view bytes) {
  static constexpr unsigned char kPngMagic[8] = {0x89, 'P',  'N',  'G',
                                                 '\r', '\n', 0x1A, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngMagic, 8) == 0) {
    return ImageFormat::kPng;
  }
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xD8 &&
      static_cast<unsigned char>(bytes[2]) == 0xFF) {
    return ImageFormat::kJpeg;
  }
  if (bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] == '5') {
    return ImageFormat::kPgm;
  }
  return ImageFormat::kUnknown;
}

absl::StatusOr<Image> DecodeImage(absl::string_view bytes,
                                  const DecodeLimits& limits) {
  switch (DetectFormat(bytes)) {
    case ImageFormat::kPng:
      return DecodePng(bytes, limits);
    case ImageFormat::kJpeg:
      return DecodeJpeg(bytes, limits);
    case ImageFormat::kPgm:
      return DecodePgm(bytes, limits);
    case ImageFormat::kUnknown:
      break;
  }
  if (bytes.empty()) {
    return absl::InvalidArgumentError("image: no bytes to decode");
  }
  return absl::InvalidArgumentError(
      "image: unknown format (expected PNG, JPEG or binary PGM 'P5' magic "
      "bytes)");
}

Image ToGrayscale(const Image& image) {
  if (image.channels == 1) return image;
  Image out;
  out.width = image.width;
  out.height = image.height;
  out.channels = 1;
  const size_t n = static_cast<size_t>(image.width) * image.height;
  out.pixels.resize(n);
  const uint8_t* src = image.pixels.data();
  const int c = image.channels;
  if (c == 2) {  // Gray+alpha (not produced by our decoders, but cheap).
    for (size_t i = 0; i < n; ++i, src += 2) {
      out.pixels[i] =
          static_cast<uint8_t>((src[0] * uint32_t{src[1]} + 127u) / 255u);
    }
    return out;
  }
  if (c < 3) return out;  // Malformed: black rather than a read overrun.
  for (size_t i = 0; i < n; ++i, src += c) {
    // Integer BT.601 weights (x1000), rounded.
    uint32_t y = (299u * src[0] + 587u * src[1] + 114u * src[2] + 500u) / 1000u;
    if (c == 4) y = (y * src[3] + 127u) / 255u;  // Over black.
    out.pixels[i] = static_cast<uint8_t>(y);
  }
  return out;
}

Image ToGrayscale(const Image& image, Rgb background) {
  if (image.channels != 4 || background == Rgb{}) return ToGrayscale(image);
  return ToGrayscale(ToRgb(image, background));
}

Image ToRgb(const Image& image, Rgb background) {
  if (image.channels != 4 || background == Rgb{}) return ToRgb(image);
  Image out;
  out.width = image.width;
  out.height = image.height;
  out.channels = 3;
  const size_t n = static_cast<size_t>(image.width) * image.height;
  out.pixels.resize(n * 3);
  const uint8_t bg[3] = {background.r, background.g, background.b};
  const uint8_t* src = image.pixels.data();
  uint8_t* dst = out.pixels.data();
  for (size_t i = 0; i < n; ++i, src += 4, dst += 3) {
    const uint32_t a = src[3];
    for (int k = 0; k < 3; ++k) {
      dst[k] =
          static_cast<uint8_t>((src[k] * a + bg[k] * (255u - a) + 127u) / 255u);
    }
  }
  return out;
}

Image Crop(const Image& image, int x, int y, int width, int height) {
  const int x0 = std::clamp(x, 0, image.width);
  const int y0 = std::clamp(y, 0, image.height);
  const int x1 = std::clamp(x + std::max(width, 0), x0, image.width);
  const int y1 = std::clamp(y + std::max(height, 0), y0, image.height);
  Image out;
  out.width = x1 - x0;
  out.height = y1 - y0;
  out.channels = image.channels;
  const size_t row = static_cast<size_t>(out.width) * image.channels;
  out.pixels.resize(row * out.height);
  for (int r = 0; r < out.height; ++r) {
    const uint8_t* src =
        image.pixels.data() +
        (static_cast<size_t>(y0 + r) * image.width + x0) * image.channels;
    std::memcpy(out.pixels.data() + r * row, src, row);
  }
  return out;
}

Image BoundImage(const Image& image, int max_side) {
  const int longer = std::max(image.width, image.height);
  if (max_side <= 0 || longer <= max_side) return image;
  const double scale = static_cast<double>(max_side) / longer;
  const int w =
      std::clamp(static_cast<int>(image.width * scale + 0.5), 1, max_side);
  const int h =
      std::clamp(static_cast<int>(image.height * scale + 0.5), 1, max_side);
  return ResizeArea(image, w, h);
}

Image ToRgb(const Image& image) {
  if (image.channels == 3) return image;
  Image out;
  out.width = image.width;
  out.height = image.height;
  out.channels = 3;
  const size_t n = static_cast<size_t>(image.width) * image.height;
  out.pixels.resize(n * 3);
  const uint8_t* src = image.pixels.data();
  uint8_t* dst = out.pixels.data();
  if (image.channels == 1) {
    for (size_t i = 0; i < n; ++i, dst += 3) dst[0] = dst[1] = dst[2] = src[i];
  } else if (image.channels == 4) {
    for (size_t i = 0; i < n; ++i, src += 4, dst += 3) {
      for (int k = 0; k < 3; ++k) {
        dst[k] =
            static_cast<uint8_t>((src[k] * uint32_t{src[3]} + 127u) / 255u);
      }
    }
  }
  return out;
}

}  // namespace embedsearch
