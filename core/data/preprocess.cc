#include "core/data/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace embedsearch {
namespace {

constexpr int kMaxSide = 4096;

bool ValidStat(const std::vector<float>& v, int channels) {
  return v.size() == 1 || v.size() == static_cast<size_t>(channels);
}

// The image in the spec's channels, alpha composited over the background.
Image ToChannels(const Image& image, const InputSpec& spec) {
  const Rgb bg = spec.preprocessing.background;
  return spec.channels == 1 ? ToGrayscale(image, bg) : ToRgb(image, bg);
}

// One pixel of the background in `channels` channels (gray: its luma).
std::vector<uint8_t> BackgroundPixel(Rgb bg, int channels) {
  if (channels == 3) return {bg.r, bg.g, bg.b};
  Image one;
  one.width = one.height = 1;
  one.channels = 3;
  one.pixels = {bg.r, bg.g, bg.b};
  return {ToGrayscale(one).pixels[0]};
}

// The centred window of the target's aspect ratio, then resized.
Image CentreCrop(const Image& image, int width, int height) {
  int cw = image.width, ch = image.height;
  if (static_cast<int64_t>(image.width) * height >
      static_cast<int64_t>(image.height) * width) {
    cw = static_cast<int>(
        std::lround(static_cast<double>(image.height) * width / height));
    cw = std::clamp(cw, 1, image.width);
  } else {
    ch = static_cast<int>(
        std::lround(static_cast<double>(image.width) * height / width));
    ch = std::clamp(ch, 1, image.height);
  }
  return Resize(
      Crop(image, (image.width - cw) / 2, (image.height - ch) / 2, cw, ch),
      width, height);
}

// Scaled to fit inside width x height, centred on the background.
Image PadToFit(const Image& image, int width, int height, Rgb background) {
  const double scale = std::min(static_cast<double>(width) / image.width,
                                static_cast<double>(height) / image.height);
  const int sw =
      std::clamp(static_cast<int>(std::lround(image.width * scale)), 1, width);
  const int sh = std::clamp(static_cast<int>(std::lround(image.height * scale)),
                            1, height);
  const Image scaled = Resize(image, sw, sh);
  const int c = image.channels;
  const std::vector<uint8_t> fill = BackgroundPixel(background, c);
  Image out;
  out.width = width;
  out.height = height;
  out.channels = c;
  out.pixels.resize(static_cast<size_t>(width) * height * c);
  for (size_t i = 0; i < out.pixels.size(); i += c) {
    std::memcpy(out.pixels.data() + i, fill.data(), c);
  }
  const int x0 = (width - sw) / 2, y0 = (height - sh) / 2;
  const size_t row = static_cast<size_t>(sw) * c;
  for (int y = 0; y < sh; ++y) {
    std::memcpy(
        out.pixels.data() + (static_cast<size_t>(y0 + y) * width + x0) * c,
        scaled.pixels.data() + y * row, row);
  }
  return out;
}

absl::Status ValidateDecoded(const Image& image) {
  if (image.width <= 0 || image.height <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "preprocess: empty image (", image.width, "x", image.height, ")"));
  }
  if (image.channels != 1 && image.channels != 3 && image.channels != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("preprocess: unsupported channel count ", image.channels,
                     " (want 1, 3 or 4)"));
  }
  if (image.pixels.size() !=
      static_cast<size_t>(image.width) * image.height * image.channels) {
    return absl::InvalidArgumentError(
        "preprocess: pixel buffer size does not match the image");
  }
  return absl::OkStatus();
}

}  // namespace

const char* ResizePolicyName(ResizePolicy policy) {
  switch (policy) {
    case ResizePolicy::kStretch:
      return "stretch";
    case ResizePolicy::kShorterSideCentreCrop:
      return "crop";
    case ResizePolicy::kPadToSquare:
      return "pad";
  }
  return "unknown";
}

absl::Status ValidatePreprocessing(const Preprocessing& p, int channels) {
  auto bad = [](auto... parts) {
    return absl::InvalidArgumentError(
        absl::StrCat("input preprocessing: ", parts...));
  };
  const int policy = static_cast<int>(p.resize);
  if (policy < 0 || policy > static_cast<int>(ResizePolicy::kPadToSquare)) {
    return bad("unknown resize policy ", policy);
  }
  if (!ValidStat(p.mean, channels) || !ValidStat(p.std, channels)) {
    return bad(p.mean.size(), " means and ", p.std.size(), " stds for ",
               channels, " channels (want 1 or ", channels, " of each)");
  }
  for (size_t c = 0; c < p.mean.size(); ++c) {
    if (!std::isfinite(p.mean[c])) return bad("mean[", c, "] is not finite");
  }
  for (size_t c = 0; c < p.std.size(); ++c) {
    if (!(p.std[c] > 0.0f) || !std::isfinite(p.std[c])) {
      return bad("std[", c, "] = ", p.std[c], " must be positive and finite");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateInputSpec(const InputSpec& spec) {
  if (spec.channels != 1 && spec.channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input spec: ", spec.channels,
        " channels; images are preprocessed to 1 (gray) or 3 (RGB)"));
  }
  if (spec.height < 1 || spec.height > kMaxSide || spec.width < 1 ||
      spec.width > kMaxSide) {
    return absl::InvalidArgumentError(
        absl::StrCat("input spec: size ", spec.height, "x", spec.width,
                     " must be within 1..", kMaxSide));
  }
  return ValidatePreprocessing(spec.preprocessing, spec.channels);
}

absl::StatusOr<Image> FitImage(const Image& image, const InputSpec& spec) {
  if (absl::Status s = ValidateInputSpec(spec); !s.ok()) return s;
  if (absl::Status s = ValidateDecoded(image); !s.ok()) return s;
  // Channels first: converting to gray before resizing is what format-1
  // models did (bit-identical inputs) and shrinks the resize's work.
  const Image converted = ToChannels(image, spec);
  switch (spec.preprocessing.resize) {
    case ResizePolicy::kStretch:
      return Resize(converted, spec.width, spec.height);
    case ResizePolicy::kShorterSideCentreCrop:
      return CentreCrop(converted, spec.width, spec.height);
    case ResizePolicy::kPadToSquare:
      return PadToFit(converted, spec.width, spec.height,
                      spec.preprocessing.background);
  }
  return absl::InvalidArgumentError("preprocess: unknown resize policy");
}

void NormalizeInputs(const uint8_t* pixels, size_t count, const InputSpec& spec,
                     float* out) {
  const int c = spec.channels;
  const size_t plane = static_cast<size_t>(spec.height) * spec.width;
  const Preprocessing& p = spec.preprocessing;
  for (int k = 0; k < c; ++k) {
    const float mean = p.mean.size() == 1 ? p.mean[0] : p.mean[k];
    const float std = p.std.size() == 1 ? p.std[0] : p.std[k];
    for (size_t n = 0; n < count; ++n) {
      const uint8_t* src = pixels + n * plane * c + k;
      float* dst = out + (n * c + k) * plane;
      // Written exactly as the formula (no reciprocal) so a Python reference
      // computing (p / 255 - mean) / std in float32 matches bit for bit.
      for (size_t i = 0; i < plane; ++i) {
        dst[i] = (static_cast<float>(src[i * c]) / 255.0f - mean) / std;
      }
    }
  }
}

void NormalizePixels(const uint8_t* pixels, int count,
                     const Preprocessing& preprocessing, float* out) {
  InputSpec spec;
  spec.height = 1;
  spec.width = count;
  spec.channels = 1;
  spec.preprocessing.mean = {preprocessing.mean[0]};
  spec.preprocessing.std = {preprocessing.std[0]};
  NormalizeInputs(pixels, 1, spec, out);
}

absl::Status PreprocessImage(const Image& image, const InputSpec& spec,
                             float* out) {
  absl::StatusOr<Image> fitted = FitImage(image, spec);
  if (!fitted.ok()) return fitted.status();
  NormalizeInputs(fitted->pixels.data(), 1, spec, out);
  return absl::OkStatus();
}

void MeasureChannelStats(const uint8_t* pixels, size_t count,
                         size_t pixels_per_image, int channels,
                         Preprocessing* preprocessing) {
  const size_t n = count * pixels_per_image;
  if (n == 0 || channels < 1) return;
  std::vector<double> sum(channels, 0.0), sq(channels, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (int k = 0; k < channels; ++k) {
      const double v = pixels[i * channels + k] / 255.0;
      sum[k] += v;
      sq[k] += v * v;
    }
  }
  preprocessing->mean.assign(channels, 0.0f);
  preprocessing->std.assign(channels, 0.0f);
  for (int k = 0; k < channels; ++k) {
    const double mean = sum[k] / n;
    const double var = sq[k] / n - mean * mean;
    preprocessing->mean[k] = static_cast<float>(mean);
    preprocessing->std[k] = static_cast<float>(std::sqrt(std::max(var, 1e-6)));
  }
}

}  // namespace embedsearch
