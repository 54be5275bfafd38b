#include "core/nn/dropout.h"

namespace embedsearch {
namespace nn {

void DropoutForward(const float* x, int64_t count, float p, Rng* rng,
                    float* y, float* mask) {
  const float keep_scale = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < count; ++i) {
    mask[i] = rng->Uniform() >= p ? keep_scale : 0.0f;
    y[i] = x[i] * mask[i];
  }
}

void DropoutBackward(const float* dy, const float* mask, int64_t count,
                     float* dx) {
  for (int64_t i = 0; i < count; ++i) dx[i] = dy[i] * mask[i];
}

}  // namespace nn
}  // namespace embedsearch
