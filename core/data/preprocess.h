// The one preprocessing path shared by trainer and server, so a query image
// is prepared exactly as the training images were.
#ifndef EMBEDSEARCH_CORE_DATA_PREPROCESS_H_
#define EMBEDSEARCH_CORE_DATA_PREPROCESS_H_

#include <cstdint>

#include "core/image/image.h"

namespace embedsearch {

struct Normalization {
  float mean = 0.2860f;  // default: Fashion-MNIST train pixel mean (of p/255)
  float std = 0.3530f;   // default: Fashion-MNIST train pixel std
};

// Gray 8-bit pixels (height*width) to model input: (p / 255 - mean) / std.
void NormalizePixels(const uint8_t* pixels, int count, const Normalization& n,
                     float* out);

// Any decoded image: grayscale, resize to height x width (area when
// shrinking), then NormalizePixels. `out` holds height*width floats.
void PreprocessImage(const Image& image, int height, int width,
                     const Normalization& n, float* out);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_DATA_PREPROCESS_H_
