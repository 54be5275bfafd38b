// Training-time augmentation of gray or RGB images held at the model's
// input size: label-preserving changes so the encoder learns what is
// invariant. Every random draw comes from the caller's Rng, whose state
// (Rng::state / set_state) the trainer keeps in its checkpoint, so a
// resumed run augments exactly as an uninterrupted one.
#ifndef EMBEDSEARCH_CORE_DATA_AUGMENT_H_
#define EMBEDSEARCH_CORE_DATA_AUGMENT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/data/rng.h"

namespace embedsearch {

struct AugmentOptions {
  // Mirror left-right with probability 1/2 (clothes are mostly symmetric).
  bool horizontal_flip = true;  // default: on
  // Shift by a uniform integer in [-max_shift, max_shift] on each axis;
  // pixels moved in are 0 (the black background).
  int max_shift = 2;  // default: 2 px
  // With this probability set one random rectangle (sides uniform in
  // [erase_min_side, erase_max_side]) to 0: random erasing.
  float erase_probability = 0.0f;  // default: off
  int erase_min_side = 4;          // default: 4 px
  int erase_max_side = 10;         // default: 10 px
  // Random resized crop (first, before flip and shift): a window covering a
  // uniform fraction in [crop_min_area, 1] of the image, aspect ratio
  // log-uniform in [3/4, 4/3] (clipped to the image), at a uniform
  // position, resized back to height x width (bilinear).
  float crop_min_area = 1.0f;  // default 1: off
  // Colour jitter (last), factors uniform in [1 - s, 1 + s] for strength s:
  // brightness scales every value; contrast scales the distance to the
  // image's mean luma; saturation scales each pixel's distance to its own
  // luma (RGB only: gray images draw the factor and ignore it).
  float brightness = 0.0f;  // default: off
  float contrast = 0.0f;    // default: off
  float saturation = 0.0f;  // default: off
};

// InvalidArgument naming the field for values outside their ranges
// (max_shift >= 0, erase_probability and crop_min_area in [0, 1] with
// crop_min_area > 0, jitter strengths in [0, 1]).
absl::Status ValidateAugmentOptions(const AugmentOptions& options);

// Writes an augmented copy of `in` (height * width * channels bytes,
// interleaved) to `out`
// (same size; must not alias `in`). The result depends only on the inputs and
// the state of `rng`, which advances by the same number of draws for every
// call with the same options. Thread-compatible: one Rng per thread.
void AugmentImage(const uint8_t* in, int height, int width,
                  const AugmentOptions& options, Rng* rng, uint8_t* out,
                  int channels = 1);

// In place over `count` contiguous images.
void AugmentBatch(uint8_t* pixels, size_t count, int height, int width,
                  const AugmentOptions& options, Rng* rng, int channels = 1);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_DATA_AUGMENT_H_
