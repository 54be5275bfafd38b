// Images in memory and the codecs the service accepts.
//
// Contract: an Image is 8-bit, row-major, channels interleaved (1 = gray,
// 3 = RGB, 4 = RGBA). Decoders never trust a header: dimensions are checked
// against DecodeLimits before any pixel buffer is allocated, and malformed or
// truncated data gives InvalidArgument (never a crash or a short read).
// All functions are thread-safe (no shared state).
#ifndef EMBEDSEARCH_CORE_IMAGE_IMAGE_H_
#define EMBEDSEARCH_CORE_IMAGE_IMAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedsearch {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;             // 1, 3 or 4.
  std::vector<uint8_t> pixels;  // height * width * channels bytes.

  uint8_t at(int y, int x, int c = 0) const {
    return pixels[(static_cast<size_t>(y) * width + x) * channels + c];
  }
};

struct DecodeLimits {
  // Refuse images with more pixels than this (decompression bombs).
  int64_t max_pixels = 40'000'000;  // default: 40 MP
  int max_side = 20'000;            // default: 20000 px on either side
};

enum class ImageFormat { kUnknown, kPng, kJpeg, kPgm };

// Sniffs the magic bytes.
ImageFormat DetectFormat(absl::string_view bytes);

// Decodes PNG, JPEG or binary PGM (P5) by sniffing the content.
absl::StatusOr<Image> DecodeImage(absl::string_view bytes,
                                  const DecodeLimits& limits = {});
absl::StatusOr<Image> DecodePng(absl::string_view bytes,
                                const DecodeLimits& limits = {});
absl::StatusOr<Image> DecodeJpeg(absl::string_view bytes,
                                 const DecodeLimits& limits = {});
absl::StatusOr<Image> DecodePgm(absl::string_view bytes,
                                const DecodeLimits& limits = {});

// Encoders. PNG is lossless (gray, RGB or RGBA); PGM is P5 8-bit gray.
absl::StatusOr<std::string> EncodePng(const Image& image);
absl::StatusOr<std::string> EncodeJpeg(const Image& image, int quality = 90);
absl::StatusOr<std::string> EncodePgm(const Image& image);

// Luma (ITU-R BT.601); alpha is composited over black, which matches
// Fashion-MNIST's black background.
Image ToGrayscale(const Image& image);
// Gray to RGB by replication (for contact sheets).
Image ToRgb(const Image& image);

// Area averaging when shrinking (no aliasing), bilinear when growing.
Image Resize(const Image& image, int width, int height);
Image ResizeBilinear(const Image& image, int width, int height);
Image ResizeArea(const Image& image, int width, int height);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_IMAGE_IMAGE_H_
