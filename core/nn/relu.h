// ReLU, plain and fused with a per-channel bias (the conv layers' bias is
// added after pooling, where it is 4x cheaper and gives the same result:
// max-pool commutes with adding a per-channel constant and with ReLU).
// In-place use (y == x, dx == dy) is allowed. Thread-safe.
#ifndef EMBEDSEARCH_CORE_NN_RELU_H_
#define EMBEDSEARCH_CORE_NN_RELU_H_

#include <cstdint>

namespace embedsearch {
namespace nn {

// y = max(0, x).
void ReluForward(const float* x, int64_t count, float* y);
// dx = dy where y > 0, else 0 (y is the forward output).
void ReluBackward(const float* y, const float* dy, int64_t count, float* dx);

// x, y: [n, channels, spatial]. y = max(0, x + bias[c]).
void BiasReluForward(const float* x, const float* bias, int n, int channels,
                     int spatial, float* y);
// dx = dy * (y > 0); dbias[c] += sum over n and spatial of dx (if non-null).
void BiasReluBackward(const float* y, const float* dy, int n, int channels,
                      int spatial, float* dx, float* dbias);

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_RELU_H_
