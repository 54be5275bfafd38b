#include "core/nn/batchnorm.h"

#include <cmath>
#include <cstdint>

namespace embedsearch {
namespace nn {
namespace {

inline int64_t Offset(int i, int c, int channels, int spatial) {
  return (static_cast<int64_t>(i) * channels + c) * spatial;
}

}  // namespace

void BatchNormForwardTrain(const float* x, int n, int channels, int spatial,
                           const float* gamma, const float* beta,
                           const BatchNormOptions& options,
                           float* running_mean, float* running_var, float* y,
                           float* save_mean, float* save_invstd) {
  const int64_t m = static_cast<int64_t>(n) * spatial;
  for (int c = 0; c < channels; ++c) {
    // Two passes in double: the variance of activations with a large mean
    // loses everything to cancellation in one-pass float.
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      const float* p = x + Offset(i, c, channels, spatial);
      for (int j = 0; j < spatial; ++j) sum += p[j];
    }
    const double mean = sum / m;
    double sq = 0.0;
    for (int i = 0; i < n; ++i) {
      const float* p = x + Offset(i, c, channels, spatial);
      for (int j = 0; j < spatial; ++j) sq += (p[j] - mean) * (p[j] - mean);
    }
    const double var = sq / m;
    const float invstd = static_cast<float>(1.0 / std::sqrt(var + options.eps));
    save_mean[c] = static_cast<float>(mean);
    save_invstd[c] = invstd;
    if (running_mean != nullptr) {
      const double unbiased = m > 1 ? sq / (m - 1) : var;
      running_mean[c] = static_cast<float>((1.0 - options.momentum) * running_mean[c] +
                                           options.momentum * mean);
      running_var[c] = static_cast<float>((1.0 - options.momentum) * running_var[c] +
                                          options.momentum * unbiased);
    }
    const float scale = gamma[c] * invstd;
    const float shift = beta[c] - static_cast<float>(mean) * scale;
    for (int i = 0; i < n; ++i) {
      const int64_t off = Offset(i, c, channels, spatial);
      for (int j = 0; j < spatial; ++j) y[off + j] = x[off + j] * scale + shift;
    }
  }
}

void BatchNormForwardEval(const float* x, int n, int channels, int spatial,
                          const float* gamma, const float* beta,
                          const float* running_mean, const float* running_var,
                          const BatchNormOptions& options, float* y) {
  for (int c = 0; c < channels; ++c) {
    const float scale = gamma[c] / std::sqrt(running_var[c] + options.eps);
    const float shift = beta[c] - running_mean[c] * scale;
    for (int i = 0; i < n; ++i) {
      const int64_t off = Offset(i, c, channels, spatial);
      for (int j = 0; j < spatial; ++j) y[off + j] = x[off + j] * scale + shift;
    }
  }
}

void BatchNormBackwardTrain(const float* x, const float* dy, int n,
                            int channels, int spatial, const float* gamma,
                            const float* save_mean, const float* save_invstd,
                            float* dx, float* dgamma, float* dbeta) {
  const int64_t m = static_cast<int64_t>(n) * spatial;
  for (int c = 0; c < channels; ++c) {
    const float mean = save_mean[c], invstd = save_invstd[c];
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int i = 0; i < n; ++i) {
      const int64_t off = Offset(i, c, channels, spatial);
      for (int j = 0; j < spatial; ++j) {
        const double xhat = (x[off + j] - mean) * invstd;
        sum_dy += dy[off + j];
        sum_dy_xhat += dy[off + j] * xhat;
      }
    }
    dgamma[c] += static_cast<float>(sum_dy_xhat);
    dbeta[c] += static_cast<float>(sum_dy);
    // dx = gamma*invstd/m * (m*dy - sum(dy) - xhat*sum(dy*xhat)).
    const double k = static_cast<double>(gamma[c]) * invstd / m;
    for (int i = 0; i < n; ++i) {
      const int64_t off = Offset(i, c, channels, spatial);
      for (int j = 0; j < spatial; ++j) {
        const double xhat = (x[off + j] - mean) * invstd;
        dx[off + j] =
            static_cast<float>(k * (m * dy[off + j] - sum_dy - xhat * sum_dy_xhat));
      }
    }
  }
}

void BatchNormBackwardEval(const float* x, const float* dy, int n,
                           int channels, int spatial, const float* gamma,
                           const float* running_mean,
                           const float* running_var,
                           const BatchNormOptions& options, float* dx,
                           float* dgamma, float* dbeta) {
  for (int c = 0; c < channels; ++c) {
    const float invstd = 1.0f / std::sqrt(running_var[c] + options.eps);
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int i = 0; i < n; ++i) {
      const int64_t off = Offset(i, c, channels, spatial);
      for (int j = 0; j < spatial; ++j) {
        sum_dy += dy[off + j];
        sum_dy_xhat += dy[off + j] * (x[off + j] - running_mean[c]) * invstd;
        dx[off + j] = dy[off + j] * gamma[c] * invstd;
      }
    }
    dgamma[c] += static_cast<float>(sum_dy_xhat);
    dbeta[c] += static_cast<float>(sum_dy);
  }
}

}  // namespace nn
}  // namespace embedsearch
