#include "core/nn/l2norm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace embedsearch {
namespace nn {

void L2NormalizeForward(const float* x, int n, int d, float* y, float* norms) {
  for (int i = 0; i < n; ++i) {
    const float* xi = x + static_cast<int64_t>(i) * d;
    float* yi = y + static_cast<int64_t>(i) * d;
    double sq = 0.0;
    for (int j = 0; j < d; ++j) sq += static_cast<double>(xi[j]) * xi[j];
    const float norm = std::max(static_cast<float>(std::sqrt(sq)), kL2NormEps);
    const float inv = 1.0f / norm;
    for (int j = 0; j < d; ++j) yi[j] = xi[j] * inv;
    if (norms != nullptr) norms[i] = norm;
  }
}

void L2NormalizeBackward(const float* y, const float* norms, const float* dy,
                         int n, int d, float* dx) {
  for (int i = 0; i < n; ++i) {
    const float* yi = y + static_cast<int64_t>(i) * d;
    const float* gi = dy + static_cast<int64_t>(i) * d;
    float* dxi = dx + static_cast<int64_t>(i) * d;
    const float inv = 1.0f / norms[i];
    if (norms[i] <= kL2NormEps) {
      // Clamped: y = x / eps is linear in x.
      for (int j = 0; j < d; ++j) dxi[j] = gi[j] * inv;
      continue;
    }
    double dot = 0.0;
    for (int j = 0; j < d; ++j) dot += static_cast<double>(yi[j]) * gi[j];
    const float fdot = static_cast<float>(dot);
    for (int j = 0; j < d; ++j) dxi[j] = (gi[j] - yi[j] * fdot) * inv;
  }
}

}  // namespace nn
}  // namespace embedsearch
