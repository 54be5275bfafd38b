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

// An opaque colour: alpha is composited over it, padding is filled with it.
struct Rgb {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
};
inline bool operator==(Rgb a, Rgb b) {
  return a.r == b.r && a.g == b.g && a.b == b.b;
}
inline bool operator!=(Rgb a, Rgb b) { return !(a == b); }

struct DecodeLimits {
  // Refuse images with more pixels than this (decompression bombs).
  int64_t max_pixels = 40'000'000;  // default: 40 MP
  int max_side = 20'000;            // default: 20000 px on either side
};

enum class ImageFormat { kUnknown, kPng, kJpeg, kPgm };

// Sniffs the magic bytes.
ImageFormat DetectFormat(absl::string_view bytes);

// Decodes PNG, JPEG or binary PGM (P5) by sniffing the content.
// Output channels: PNG gray -> 1, gray+alpha -> 4 (RGBA), RGB -> 3, RGBA and
// palettes with transparency -> 4; 16-bit samples keep their high byte and
// 1/2/4-bit samples are scaled to 8 bits. JPEG gray -> 1, everything else
// (YCbCr, Adobe CMYK/YCCK) -> 3. PGM -> 1, with maxval < 255 scaled to
// 0..255. JPEG warnings (e.g. premature end of data) count as errors, and
// PNG trailing chunks are CRC-checked, so a truncated file never decodes.
absl::StatusOr<Image> DecodeImage(absl::string_view bytes,
                                  const DecodeLimits& limits = {});
absl::StatusOr<Image> DecodePng(absl::string_view bytes,
                                const DecodeLimits& limits = {});
absl::StatusOr<Image> DecodeJpeg(absl::string_view bytes,
                                 const DecodeLimits& limits = {});
absl::StatusOr<Image> DecodePgm(absl::string_view bytes,
                                const DecodeLimits& limits = {});

// Encoders; InvalidArgument for a malformed Image. PNG is lossless (gray,
// RGB or RGBA). JPEG (quality 1..100) composites RGBA over black first. PGM
// is P5 8-bit gray (colour input is converted with ToGrayscale).
absl::StatusOr<std::string> EncodePng(const Image& image);
absl::StatusOr<std::string> EncodeJpeg(const Image& image, int quality = 90);
absl::StatusOr<std::string> EncodePgm(const Image& image);

// Luma (ITU-R BT.601, integer weights .299/.587/.114, rounded); alpha is
// composited over black, which matches Fashion-MNIST's black background.
// Gray input is returned as is.
Image ToGrayscale(const Image& image);
// Gray to RGB by replication (for contact sheets); RGBA is composited over
// black like ToGrayscale. RGB input is returned as is.
Image ToRgb(const Image& image);

// The same over `background` instead of black: RGBA is composited, then
// luma taken (the background's luma for fully transparent pixels). With a
// black background it equals ToGrayscale(image) bit for bit.
Image ToGrayscale(const Image& image, Rgb background);
// The same over `background` instead of black.
Image ToRgb(const Image& image, Rgb background);

// The rectangle [x, x + width) x [y, y + height), clipped to the image (an
// empty intersection gives an empty image). Channels are kept.
Image Crop(const Image& image, int x, int y, int width, int height);

// Shrinks (area averaging) so that the longer side is at most `max_side`,
// keeping the aspect ratio (each side at least 1 px); smaller images and
// max_side <= 0 return a copy. Channels are kept.
Image BoundImage(const Image& image, int max_side);

// Resampling; the result has the input's channel count. Each axis is
// handled on its own: area averaging where it shrinks (no aliasing),
// bilinear where it grows (pixel centres aligned, edges clamped). Same size
// returns a copy. A zero-sized input or target gives a zero-filled (or
// empty) image of the target size rather than an error. Rounds to nearest.
Image Resize(const Image& image, int width, int height);
// Bilinear on both axes.
Image ResizeBilinear(const Image& image, int width, int height);
// Box-overlap averaging on both axes (also when growing).
Image ResizeArea(const Image& image, int width, int height);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_IMAGE_IMAGE_H_
