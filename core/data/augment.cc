#include "core/data/augment.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace embedsearch {

void AugmentImage(const uint8_t* in, int height, int width,
                  const AugmentOptions& options, Rng* rng, uint8_t* out,
                  int channels) {
  const int c = channels;
  const size_t row_bytes = static_cast<size_t>(width) * c;
  // Draw everything up front, in a fixed order, so the number of draws per
  // image does not depend on earlier outcomes.
  const bool flip = options.horizontal_flip && (rng->Next() & 1) != 0;
  int dx = 0, dy = 0;
  if (options.max_shift > 0) {
    const uint64_t span = 2 * static_cast<uint64_t>(options.max_shift) + 1;
    dx = static_cast<int>(rng->Uniform(span)) - options.max_shift;
    dy = static_cast<int>(rng->Uniform(span)) - options.max_shift;
  }
  bool erase = false;
  int ex = 0, ey = 0, ew = 0, eh = 0;
  if (options.erase_probability > 0) {
    erase = rng->UniformFloat() < options.erase_probability;
    const int lo = std::max(1, options.erase_min_side);
    const int hi = std::max(lo, options.erase_max_side);
    ew = std::min(width, lo + static_cast<int>(rng->Uniform(hi - lo + 1)));
    eh = std::min(height, lo + static_cast<int>(rng->Uniform(hi - lo + 1)));
    ex = static_cast<int>(rng->Uniform(static_cast<uint64_t>(width - ew + 1)));
    ey = static_cast<int>(rng->Uniform(static_cast<uint64_t>(height - eh + 1)));
  }

  // out(y, x) = in(y - dy, flip ? width - 1 - (x - dx) : x - dx), 0 outside.
  for (int y = 0; y < height; ++y) {
    uint8_t* row = out + static_cast<size_t>(y) * row_bytes;
    const int sy = y - dy;
    if (sy < 0 || sy >= height) {
      std::memset(row, 0, row_bytes);
      continue;
    }
    const uint8_t* src = in + static_cast<size_t>(sy) * row_bytes;
    for (int x = 0; x < width; ++x) {
      int sx = x - dx;
      if (sx < 0 || sx >= width) {
        std::memset(row + x * c, 0, c);
        continue;
      }
      if (flip) sx = width - 1 - sx;
      std::memcpy(row + x * c, src + sx * c, c);
    }
  }
  if (erase) {
    for (int y = ey; y < ey + eh; ++y) {
      std::memset(out + static_cast<size_t>(y) * row_bytes + ex * c, 0,
                  static_cast<size_t>(ew) * c);
    }
  }
}

void AugmentBatch(uint8_t* pixels, size_t count, int height, int width,
                  const AugmentOptions& options, Rng* rng, int channels) {
  const size_t n = static_cast<size_t>(height) * width * channels;
  std::vector<uint8_t> scratch(n);
  for (size_t i = 0; i < count; ++i) {
    uint8_t* image = pixels + i * n;
    AugmentImage(image, height, width, options, rng, scratch.data(), channels);
    std::memcpy(image, scratch.data(), n);
  }
}

}  // namespace embedsearch
