// Training-time augmentation of small gray images (Fashion-MNIST's 28x28):
// label-preserving changes so the encoder learns what is invariant.
#ifndef EMBEDSEARCH_CORE_DATA_AUGMENT_H_
#define EMBEDSEARCH_CORE_DATA_AUGMENT_H_

#include <cstdint>

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
};

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
