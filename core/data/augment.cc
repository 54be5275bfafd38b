#include "core/data/augment.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/image/image.h"

namespace embedsearch {
namespace {

// Everything one image's augmentation draws, drawn up front in a fixed
// order so the number of draws per image does not depend on the outcomes.
struct Draws {
  bool flip = false;
  int dx = 0, dy = 0;
  bool erase = false;
  int ex = 0, ey = 0, ew = 0, eh = 0;
  bool crop = false;
  int cx = 0, cy = 0, cw = 0, ch = 0;
  bool jitter = false;
  float brightness = 1, contrast = 1, saturation = 1;
};

bool Jitters(const AugmentOptions& o) {
  return o.brightness > 0 || o.contrast > 0 || o.saturation > 0;
}

// Uniform in [1 - s, 1 + s].
float Factor(float strength, Rng* rng) {
  return 1.0f + strength * (2.0f * rng->UniformFloat() - 1.0f);
}

void DrawCrop(const AugmentOptions& o, int height, int width, Rng* rng,
              Draws* d) {
  const double area =
      (o.crop_min_area + (1.0 - o.crop_min_area) * rng->UniformFloat()) *
      height * width;
  const double log_ratio =
      std::log(0.75) +
      (std::log(4.0 / 3.0) - std::log(0.75)) * rng->UniformFloat();
  const double ratio = std::exp(log_ratio);  // width / height
  d->cw = std::clamp(static_cast<int>(std::lround(std::sqrt(area * ratio))), 1,
                     width);
  d->ch = std::clamp(static_cast<int>(std::lround(std::sqrt(area / ratio))), 1,
                     height);
  d->cx = std::min(width - d->cw,
                   static_cast<int>(rng->UniformFloat() * (width - d->cw + 1)));
  d->cy = std::min(height - d->ch, static_cast<int>(rng->UniformFloat() *
                                                    (height - d->ch + 1)));
  d->crop = d->cw < width || d->ch < height;
}

Draws DrawAll(const AugmentOptions& o, int height, int width, Rng* rng) {
  Draws d;
  d.flip = o.horizontal_flip && (rng->Next() & 1) != 0;
  if (o.max_shift > 0) {
    const uint64_t span = 2 * static_cast<uint64_t>(o.max_shift) + 1;
    d.dx = static_cast<int>(rng->Uniform(span)) - o.max_shift;
    d.dy = static_cast<int>(rng->Uniform(span)) - o.max_shift;
  }
  if (o.erase_probability > 0) {
    d.erase = rng->UniformFloat() < o.erase_probability;
    const int lo = std::max(1, o.erase_min_side);
    const int hi = std::max(lo, o.erase_max_side);
    d.ew = std::min(width, lo + static_cast<int>(rng->Uniform(hi - lo + 1)));
    d.eh = std::min(height, lo + static_cast<int>(rng->Uniform(hi - lo + 1)));
    d.ex =
        static_cast<int>(rng->Uniform(static_cast<uint64_t>(width - d.ew + 1)));
    d.ey = static_cast<int>(
        rng->Uniform(static_cast<uint64_t>(height - d.eh + 1)));
  }
  if (o.crop_min_area < 1.0f) DrawCrop(o, height, width, rng, &d);
  if (Jitters(o)) {
    d.jitter = true;
    d.brightness = Factor(o.brightness, rng);
    d.contrast = Factor(o.contrast, rng);
    d.saturation = Factor(o.saturation, rng);
  }
  return d;
}

// The crop window of `in`, resized back to the full size.
std::vector<uint8_t> CropResized(const uint8_t* in, int height, int width,
                                 int c, const Draws& d) {
  Image image;
  image.width = width;
  image.height = height;
  image.channels = c;
  image.pixels.assign(in, in + static_cast<size_t>(height) * width * c);
  return ResizeBilinear(Crop(image, d.cx, d.cy, d.cw, d.ch), width, height)
      .pixels;
}

// out(y, x) = in(y - dy, flip ? width - 1 - (x - dx) : x - dx), 0 outside;
// then the erased rectangle set to 0.
void ShiftFlipErase(const uint8_t* in, int height, int width, int c,
                    const Draws& d, uint8_t* out) {
  const size_t row_bytes = static_cast<size_t>(width) * c;
  for (int y = 0; y < height; ++y) {
    uint8_t* row = out + static_cast<size_t>(y) * row_bytes;
    const int sy = y - d.dy;
    if (sy < 0 || sy >= height) {
      std::memset(row, 0, row_bytes);
      continue;
    }
    const uint8_t* src = in + static_cast<size_t>(sy) * row_bytes;
    for (int x = 0; x < width; ++x) {
      int sx = x - d.dx;
      if (sx < 0 || sx >= width) {
        std::memset(row + x * c, 0, c);
        continue;
      }
      if (d.flip) sx = width - 1 - sx;
      std::memcpy(row + x * c, src + sx * c, c);
    }
  }
  if (d.erase) {
    for (int y = d.ey; y < d.ey + d.eh; ++y) {
      std::memset(out + static_cast<size_t>(y) * row_bytes + d.ex * c, 0,
                  static_cast<size_t>(d.ew) * c);
    }
  }
}

float Luma(const float* p, int c) {
  return c == 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
}

// Brightness, then contrast around the mean luma, then saturation.
void Jitter(int pixels, int c, const Draws& d, uint8_t* image) {
  std::vector<float> v(image, image + static_cast<size_t>(pixels) * c);
  double luma_sum = 0;
  for (int i = 0; i < pixels; ++i) {
    for (int k = 0; k < c; ++k) v[i * c + k] *= d.brightness;
    luma_sum += Luma(&v[i * c], c);
  }
  const float mean = static_cast<float>(luma_sum / std::max(1, pixels));
  for (int i = 0; i < pixels; ++i) {
    float* p = &v[i * c];
    for (int k = 0; k < c; ++k) p[k] = mean + (p[k] - mean) * d.contrast;
    if (c == 3) {
      const float luma = Luma(p, c);
      for (int k = 0; k < c; ++k) p[k] = luma + (p[k] - luma) * d.saturation;
    }
    for (int k = 0; k < c; ++k) {
      image[i * c + k] =
          static_cast<uint8_t>(std::clamp(std::lround(p[k]), 0L, 255L));
    }
  }
}

}  // namespace

absl::Status ValidateAugmentOptions(const AugmentOptions& o) {
  auto bad = [](auto... parts) {
    return absl::InvalidArgumentError(absl::StrCat("augmentation: ", parts...));
  };
  if (o.max_shift < 0) return bad("max_shift ", o.max_shift, " must be >= 0");
  if (!(o.erase_probability >= 0 && o.erase_probability <= 1)) {
    return bad("erase_probability ", o.erase_probability, " must be in [0, 1]");
  }
  if (!(o.crop_min_area > 0 && o.crop_min_area <= 1)) {
    return bad("crop_min_area ", o.crop_min_area,
               " must be in (0, 1] (1: no crop)");
  }
  for (auto [name, value] : {std::pair{"brightness", o.brightness},
                             {"contrast", o.contrast},
                             {"saturation", o.saturation}}) {
    if (!(value >= 0 && value <= 1))
      return bad(name, " ", value, " must be in [0, 1]");
  }
  return absl::OkStatus();
}

void AugmentImage(const uint8_t* in, int height, int width,
                  const AugmentOptions& options, Rng* rng, uint8_t* out,
                  int channels) {
  const Draws d = DrawAll(options, height, width, rng);
  std::vector<uint8_t> cropped;
  if (d.crop) {
    cropped = CropResized(in, height, width, channels, d);
    in = cropped.data();
  }
  ShiftFlipErase(in, height, width, channels, d, out);
  if (d.jitter) Jitter(height * width, channels, d, out);
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
