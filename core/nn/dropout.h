// Inverted dropout: in training each element is kept with probability 1-p
// and scaled by 1/(1-p), so eval mode is the identity. The mask is drawn
// from the caller's seeded Rng, so training is reproducible.
#ifndef EMBEDSEARCH_CORE_NN_DROPOUT_H_
#define EMBEDSEARCH_CORE_NN_DROPOUT_H_

#include <cstdint>

#include "core/nn/random.h"

namespace embedsearch {
namespace nn {

// mask[i] = 0 or 1/(1-p); y = x * mask. p in [0, 1). In-place allowed.
void DropoutForward(const float* x, int64_t count, float p, Rng* rng,
                    float* y, float* mask);
// dx = dy * mask. In-place allowed.
void DropoutBackward(const float* dy, const float* mask, int64_t count,
                     float* dx);

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_DROPOUT_H_
