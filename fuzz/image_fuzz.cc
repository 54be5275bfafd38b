// The image decoders: arbitrary bytes as an uploaded query image. Must give
// InvalidArgument or a well-formed image, never crash, never allocate more
// than the limits allow, and whatever decodes must survive the rest of the
// query path (grayscale, resize, re-encode).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/data/preprocess.h"
#include "core/image/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using embedsearch::DecodeLimits;
  using embedsearch::Image;
  DecodeLimits limits;
  limits.max_pixels = 4'000'000;  // Keeps each run fast; same code path.
  limits.max_side = 4096;
  auto image = embedsearch::DecodeImage(
      absl::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (!image.ok()) {
    if (image.status().code() != absl::StatusCode::kInvalidArgument) abort();
    return 0;
  }
  if (image->width <= 0 || image->height <= 0 ||
      static_cast<int64_t>(image->width) * image->height > limits.max_pixels ||
      (image->channels != 1 && image->channels != 3 && image->channels != 4) ||
      image->pixels.size() !=
          static_cast<size_t>(image->width) * image->height * image->channels) {
    abort();
  }
  float input[28 * 28];
  if (!embedsearch::PreprocessImage(*image, embedsearch::InputSpec(), input)
           .ok()) {
    abort();  // Every decodable image preprocesses.
  }
  auto png = embedsearch::EncodePng(embedsearch::Resize(*image, 16, 16));
  if (!png.ok()) abort();
  auto back = embedsearch::DecodePng(*png);
  if (!back.ok() || back->width != 16) abort();
  return 0;
}
