// Separable resampling: each output pixel of an axis is a weighted sum of
// input pixels, with area (box-overlap) weights or bilinear weights.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/image/image.h"

namespace embedsearch {
namespace {

// Taps of one output coordinate: weights[first .. first + count).
struct AxisTaps {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<float> weights;  // count[i] weights per output, concatenated.
  std::vector<size_t> offset;  // Where output i's weights start.
};

// Output pixel i covers input interval [i * s, (i + 1) * s) with s = in/out;
// each input pixel weighs its overlap with that interval.
AxisTaps AreaTaps(int in, int out) {
  AxisTaps taps;
  const double scale = static_cast<double>(in) / out;
  for (int i = 0; i < out; ++i) {
    const double lo = i * scale, hi = (i + 1) * scale;
    const int first = static_cast<int>(std::floor(lo));
    const int last = std::min(in - 1, static_cast<int>(std::ceil(hi)) - 1);
    taps.first.push_back(first);
    taps.offset.push_back(taps.weights.size());
    double total = 0;
    std::vector<double> w;
    for (int j = first; j <= last; ++j) {
      const double overlap =
          std::min<double>(hi, j + 1) - std::max<double>(lo, j);
      w.push_back(std::max(0.0, overlap));
      total += w.back();
    }
    for (double v : w) taps.weights.push_back(static_cast<float>(v / total));
    taps.count.push_back(static_cast<int>(w.size()));
  }
  return taps;
}

// Pixel centres aligned (half-pixel convention), edges clamped.
AxisTaps BilinearTaps(int in, int out) {
  AxisTaps taps;
  const double scale = static_cast<double>(in) / out;
  for (int i = 0; i < out; ++i) {
    double src = (i + 0.5) * scale - 0.5;
    src = std::clamp(src, 0.0, static_cast<double>(in - 1));
    const int j0 = static_cast<int>(std::floor(src));
    const int j1 = std::min(j0 + 1, in - 1);
    const double frac = src - j0;
    taps.first.push_back(j0);
    taps.offset.push_back(taps.weights.size());
    if (j1 == j0 || frac == 0.0) {
      taps.weights.push_back(1.0f);
      taps.count.push_back(1);
    } else {
      taps.weights.push_back(static_cast<float>(1.0 - frac));
      taps.weights.push_back(static_cast<float>(frac));
      taps.count.push_back(2);
    }
  }
  return taps;
}

Image Resample(const Image& image, int width, int height, const AxisTaps& tx,
               const AxisTaps& ty) {
  const int c = image.channels;
  // Horizontal pass into floats: image.height x width x c.
  std::vector<float> tmp(static_cast<size_t>(image.height) * width * c);
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* src =
        image.pixels.data() + static_cast<size_t>(y) * image.width * c;
    float* dst = tmp.data() + static_cast<size_t>(y) * width * c;
    for (int x = 0; x < width; ++x) {
      const float* w = tx.weights.data() + tx.offset[x];
      for (int k = 0; k < c; ++k) {
        float acc = 0;
        for (int t = 0; t < tx.count[x]; ++t) {
          acc += w[t] * src[(tx.first[x] + t) * c + k];
        }
        dst[x * c + k] = acc;
      }
    }
  }
  Image out;
  out.width = width;
  out.height = height;
  out.channels = c;
  out.pixels.resize(static_cast<size_t>(height) * width * c);
  const size_t stride = static_cast<size_t>(width) * c;
  for (int y = 0; y < height; ++y) {
    const float* w = ty.weights.data() + ty.offset[y];
    uint8_t* dst = out.pixels.data() + y * stride;
    for (size_t i = 0; i < stride; ++i) {
      float acc = 0;
      for (int t = 0; t < ty.count[y]; ++t) {
        acc += w[t] * tmp[(ty.first[y] + t) * stride + i];
      }
      dst[i] = static_cast<uint8_t>(std::clamp(std::lround(acc), 0L, 255L));
    }
  }
  return out;
}

bool IsEmpty(const Image& image, int width, int height) {
  return image.width <= 0 || image.height <= 0 || width <= 0 || height <= 0;
}

Image EmptyLike(const Image& image, int width, int height) {
  Image out;
  out.width = std::max(width, 0);
  out.height = std::max(height, 0);
  out.channels = image.channels;
  out.pixels.assign(
      static_cast<size_t>(out.width) * out.height * image.channels, 0);
  return out;
}

}  // namespace

Image ResizeArea(const Image& image, int width, int height) {
  if (IsEmpty(image, width, height)) return EmptyLike(image, width, height);
  if (width == image.width && height == image.height) return image;
  return Resample(image, width, height, AreaTaps(image.width, width),
                  AreaTaps(image.height, height));
}

Image ResizeBilinear(const Image& image, int width, int height) {
  if (IsEmpty(image, width, height)) return EmptyLike(image, width, height);
  if (width == image.width && height == image.height) return image;
  return Resample(image, width, height, BilinearTaps(image.width, width),
                  BilinearTaps(image.height, height));
}

// Each axis on its own: area where it shrinks, bilinear where it grows.
Image Resize(const Image& image, int width, int height) {
  if (IsEmpty(image, width, height)) return EmptyLike(image, width, height);
  if (width == image.width && height == image.height) return image;
  const AxisTaps tx = width < image.width ? AreaTaps(image.width, width)
                                          : BilinearTaps(image.width, width);
  const AxisTaps ty = height < image.height
                          ? AreaTaps(image.height, height)
                          : BilinearTaps(image.height, height);
  return Resample(image, width, height, tx, ty);
}

}  // namespace embedsearch
