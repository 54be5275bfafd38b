// The one preprocessing path shared by trainer and server, so a query image
// is prepared exactly as the training images were:
//
//   decoded image (gray, RGB or RGBA; any size)
//     -> FitImage: alpha composited over the background colour, converted to
//        the model's channels (colour to gray by BT.601 luma, gray to RGB by
//        replication), resized to height x width by the resize policy
//     -> NormalizeInputs: x = (p / 255 - mean[c]) / std[c], planar (CHW)
//
// PreprocessImage does both. The trainer keeps FitImage's bytes in memory
// (core/data/dataset.h), augments them, and calls NormalizeInputs per batch.
//
// The preprocessing is part of the model (EncoderConfig::preprocessing,
// stored in the model file), so a bundle always carries how its inputs
// were made. The defaults are exactly what format-1 models did: stretch to
// the input size, black background, Fashion-MNIST's gray mean and std.
//
// Thread safety: all functions are pure (no shared state).
#ifndef EMBEDSEARCH_CORE_DATA_PREPROCESS_H_
#define EMBEDSEARCH_CORE_DATA_PREPROCESS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/image/image.h"

namespace embedsearch {

// How an image of another aspect ratio becomes height x width.
// The numbers are stored in model files (EncoderConfigProto.resize_policy):
// never renumber.
enum class ResizePolicy {
  // Each axis scaled on its own (the aspect ratio is not kept): what every
  // format-1 model did. Fine for data that is already the input's shape.
  kStretch = 0,
  // Scale so the shorter side fits, then cut the centre: nothing is
  // distorted, the borders of the longer side are lost.
  kShorterSideCentreCrop = 1,
  // Scale so the longer side fits, then pad the rest with the background
  // colour, centred: nothing is lost or distorted.
  kPadToSquare = 2,
};

// "stretch", "crop" or "pad" (flag and log spelling).
const char* ResizePolicyName(ResizePolicy policy);

// Everything about turning pixels into model input except the shape.
struct Preprocessing {
  ResizePolicy resize = ResizePolicy::kStretch;  // default: format-1 models
  // Alpha is composited over it, pad borders are filled with it (gray
  // models use its luma). default: black, Fashion-MNIST's background; image
  // folders use white (the usual background of product photos and icons).
  Rgb background = {0, 0, 0};
  // Per-channel statistics of p / 255 over the training images: one value
  // (used for every channel) or one per input channel.
  // default: Fashion-MNIST's published gray mean and std.
  std::vector<float> mean = {0.2860f};
  std::vector<float> std = {0.3530f};
};

// The full description of a model input.
struct InputSpec {
  int height = 28;  // default: Fashion-MNIST 28x28
  int width = 28;
  int channels = 1;  // 1 (gray) or 3 (RGB)
  Preprocessing preprocessing;
};

// InvalidArgument naming the field: channels not 1 or 3, height or width
// outside 1..4096, an unknown resize policy, mean/std sizes other than 1 or
// `channels`, a non-finite mean, a std that is not positive and finite.
absl::Status ValidateInputSpec(const InputSpec& spec);
// The checks on `preprocessing` alone for a `channels`-channel input (any
// channel count: the encoder also takes inputs we never decode).
absl::Status ValidatePreprocessing(const Preprocessing& preprocessing,
                                   int channels);

// The decoded image as spec.height x spec.width x spec.channels bytes
// (interleaved, like every Image). Errors: InvalidArgument for an invalid
// spec or a malformed image. Any aspect ratio works (a 1x5000 strip is
// cropped to its centre pixels or padded, never refused).
absl::StatusOr<Image> FitImage(const Image& image, const InputSpec& spec);

// `count` images of spec.height x spec.width x spec.channels bytes each
// (FitImage's layout, contiguous) to count * C*H*W floats, planar per image
// (NCHW, the encoder's layout). For one channel the result is exactly
// (p / 255 - mean) / std in float, as format-1 models and Python compute it.
// The spec must be valid (checked by the caller; not re-checked here).
void NormalizeInputs(const uint8_t* pixels, size_t count, const InputSpec& spec,
                     float* out);

// NormalizeInputs for `count` gray pixels (one channel, mean[0]/std[0]):
// for callers holding gray datasets such as Fashion-MNIST's.
void NormalizePixels(const uint8_t* pixels, int count,
                     const Preprocessing& preprocessing, float* out);

// FitImage then NormalizeInputs: `out` receives C*H*W floats. The function
// the server calls on every query and the trainer's data path is built
// from. Errors as FitImage.
absl::Status PreprocessImage(const Image& image, const InputSpec& spec,
                             float* out);

// Per-channel mean and std of p / 255 over `count` images of
// `pixels_per_image` pixels with `channels` interleaved channels, written
// into preprocessing->mean/std (one value per channel). A std below 1e-3
// (a constant channel) becomes 1e-3 so inputs stay finite. count == 0
// leaves `preprocessing` unchanged.
void MeasureChannelStats(const uint8_t* pixels, size_t count,
                         size_t pixels_per_image, int channels,
                         Preprocessing* preprocessing);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_DATA_PREPROCESS_H_
