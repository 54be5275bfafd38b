// Row-wise L2 normalization, y = x / max(||x||, eps) (torch's F.normalize).
// Thread-safe; in-place allowed.
#ifndef EMBEDSEARCH_CORE_NN_L2NORM_H_
#define EMBEDSEARCH_CORE_NN_L2NORM_H_

namespace embedsearch {
namespace nn {

constexpr float kL2NormEps = 1e-12f;

// x, y: [n, d]. norms (nullable): [n], receives max(||x_i||, eps).
void L2NormalizeForward(const float* x, int n, int d, float* y, float* norms);
// dx = (dy - y (y . dy)) / norm for rows with ||x|| > eps, else dy / eps.
void L2NormalizeBackward(const float* y, const float* norms, const float* dy,
                         int n, int d, float* dx);

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_L2NORM_H_
