#include "core/nn/relu.h"

#include <algorithm>

namespace embedsearch {
namespace nn {

void ReluForward(const float* x, int64_t count, float* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = std::max(x[i], 0.0f);
}

void ReluBackward(const float* y, const float* dy, int64_t count, float* dx) {
  for (int64_t i = 0; i < count; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void BiasReluForward(const float* x, const float* bias, int n, int channels,
                     int spatial, float* y) {
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < channels; ++c) {
      const float b = bias[c];
      const int64_t off = (static_cast<int64_t>(i) * channels + c) * spatial;
      for (int j = 0; j < spatial; ++j) y[off + j] = std::max(x[off + j] + b, 0.0f);
    }
  }
}

void BiasReluBackward(const float* y, const float* dy, int n, int channels,
                      int spatial, float* dx, float* dbias) {
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < channels; ++c) {
      const int64_t off = (static_cast<int64_t>(i) * channels + c) * spatial;
      float sum = 0.0f;
      for (int j = 0; j < spatial; ++j) {
        const float g = y[off + j] > 0.0f ? dy[off + j] : 0.0f;
        dx[off + j] = g;
        sum += g;
      }
      if (dbias != nullptr) dbias[c] += sum;
    }
  }
}

}  // namespace nn
}  // namespace embedsearch
