#include "core/data/preprocess.h"

namespace embedsearch {

void NormalizePixels(const uint8_t* pixels, int count, const Normalization& n,
                     float* out) {
  // Written exactly as the formula (no reciprocal) so a Python reference
  // computing (p / 255 - mean) / std in float32 matches bit for bit.
  for (int i = 0; i < count; ++i) {
    out[i] = (static_cast<float>(pixels[i]) / 255.0f - n.mean) / n.std;
  }
}

void PreprocessImage(const Image& image, int height, int width,
                     const Normalization& n, float* out) {
  const Image gray = Resize(ToGrayscale(image), width, height);
  NormalizePixels(gray.pixels.data(), height * width, n, out);
}

}  // namespace embedsearch
