#include "core/nn/batchnorm.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/nn/parallel.h"

namespace embedsearch {
namespace nn {
namespace {

inline int64_t Offset(int i, int c, int channels, int spatial) {
  return (static_cast<int64_t>(i) * channels + c) * spatial;
}

// Each channel's sums are one chain of dependent double additions, bound by
// the add latency rather than by memory. The sweeps below advance G
// channels together, so G chains overlap, while every channel still adds
// its own terms in (image, position) order with the same expressions as a
// one-channel loop: the results are bit-identical to summing channels one
// at a time (and to this code before it was grouped).
constexpr int kChannelGroup = 8;

// Forward statistics of channels [c0, c0 + G): sum, then the sum of squared
// deviations from the mean (two passes in double: the variance of
// activations with a large mean loses everything to cancellation in
// one-pass float).
template <int G>
void ForwardSums(const float* x, int n, int channels, int spatial, int c0,
                 double* sum, double* sq) {
  const int64_t m = static_cast<int64_t>(n) * spatial;
  double s[G] = {}, q[G] = {}, mean[G];
  for (int i = 0; i < n; ++i) {
    const float* p = x + Offset(i, c0, channels, spatial);
    for (int j = 0; j < spatial; ++j) {
      for (int g = 0; g < G; ++g) s[g] += p[g * spatial + j];
    }
  }
  for (int g = 0; g < G; ++g) mean[g] = s[g] / m;
  for (int i = 0; i < n; ++i) {
    const float* p = x + Offset(i, c0, channels, spatial);
    for (int j = 0; j < spatial; ++j) {
      for (int g = 0; g < G; ++g) {
        q[g] += (p[g * spatial + j] - mean[g]) * (p[g * spatial + j] - mean[g]);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    sum[g] = s[g];
    sq[g] = q[g];
  }
}

// Backward sums of channels [c0, c0 + G): sum(dy) and sum(dy * xhat).
template <int G>
void BackwardSums(const float* x, const float* dy, int n, int channels,
                  int spatial, int c0, const float* save_mean,
                  const float* save_invstd, double* sum_dy,
                  double* sum_dy_xhat) {
  double sd[G] = {}, sx[G] = {};
  float mean[G], invstd[G];
  for (int g = 0; g < G; ++g) {
    mean[g] = save_mean[c0 + g];
    invstd[g] = save_invstd[c0 + g];
  }
  for (int i = 0; i < n; ++i) {
    const int64_t off = Offset(i, c0, channels, spatial);
    for (int j = 0; j < spatial; ++j) {
      for (int g = 0; g < G; ++g) {
        const int64_t k = off + g * spatial + j;
        const double xhat = (x[k] - mean[g]) * invstd[g];
        sd[g] += dy[k];
        sx[g] += dy[k] * xhat;
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    sum_dy[g] = sd[g];
    sum_dy_xhat[g] = sx[g];
  }
}

// Calls sums<G>(c0, ...) over [begin, end) in groups of kChannelGroup, then
// one channel at a time for the rest.
template <typename Group>
void ForChannelGroups(int64_t begin, int64_t end, Group&& group) {
  int64_t c = begin;
  for (; c + kChannelGroup <= end; c += kChannelGroup) {
    group(std::integral_constant<int, kChannelGroup>(), static_cast<int>(c));
  }
  for (; c < end; ++c)
    group(std::integral_constant<int, 1>(), static_cast<int>(c));
}

}  // namespace

void BatchNormForwardTrain(const float* x, int n, int channels, int spatial,
                           const float* gamma, const float* beta,
                           const BatchNormOptions& options, float* running_mean,
                           float* running_var, float* y, float* save_mean,
                           float* save_invstd, int threads) {
  const int64_t m = static_cast<int64_t>(n) * spatial;
  ParallelChunks(channels, threads, [&](int64_t c_begin, int64_t c_end, int) {
    ForChannelGroups(c_begin, c_end, [&](auto group_size, int c0) {
      constexpr int G = decltype(group_size)::value;
      double sums[G], sqs[G];
      ForwardSums<G>(x, n, channels, spatial, c0, sums, sqs);
      for (int g = 0; g < G; ++g) {
        const int c = c0 + g;
        const double mean = sums[g] / m;
        const double sq = sqs[g];
        const double var = sq / m;
        const float invstd =
            static_cast<float>(1.0 / std::sqrt(var + options.eps));
        save_mean[c] = static_cast<float>(mean);
        save_invstd[c] = invstd;
        if (running_mean != nullptr) {
          const double unbiased = m > 1 ? sq / (m - 1) : var;
          running_mean[c] =
              static_cast<float>((1.0 - options.momentum) * running_mean[c] +
                                 options.momentum * mean);
          running_var[c] =
              static_cast<float>((1.0 - options.momentum) * running_var[c] +
                                 options.momentum * unbiased);
        }
        const float scale = gamma[c] * invstd;
        const float shift = beta[c] - static_cast<float>(mean) * scale;
        for (int i = 0; i < n; ++i) {
          const int64_t off = Offset(i, c, channels, spatial);
          for (int j = 0; j < spatial; ++j)
            y[off + j] = x[off + j] * scale + shift;
        }
      }
    });
  });
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
                            float* dx, float* dgamma, float* dbeta,
                            int threads) {
  const int64_t m = static_cast<int64_t>(n) * spatial;
  ParallelChunks(channels, threads, [&](int64_t c_begin, int64_t c_end, int) {
    ForChannelGroups(c_begin, c_end, [&](auto group_size, int c0) {
      constexpr int G = decltype(group_size)::value;
      double sums_dy[G], sums_dy_xhat[G];
      BackwardSums<G>(x, dy, n, channels, spatial, c0, save_mean, save_invstd,
                      sums_dy, sums_dy_xhat);
      for (int g = 0; g < G; ++g) {
        const int c = c0 + g;
        const float mean = save_mean[c], invstd = save_invstd[c];
        const double sum_dy = sums_dy[g], sum_dy_xhat = sums_dy_xhat[g];
        dgamma[c] += static_cast<float>(sum_dy_xhat);
        dbeta[c] += static_cast<float>(sum_dy);
        // dx = gamma*invstd/m * (m*dy - sum(dy) - xhat*sum(dy*xhat)).
        const double k = static_cast<double>(gamma[c]) * invstd / m;
        for (int i = 0; i < n; ++i) {
          const int64_t off = Offset(i, c, channels, spatial);
          for (int j = 0; j < spatial; ++j) {
            const double xhat = (x[off + j] - mean) * invstd;
            dx[off + j] = static_cast<float>(
                k * (m * dy[off + j] - sum_dy - xhat * sum_dy_xhat));
          }
        }
      }
    });
  });
}

void BatchNormBackwardEval(const float* x, const float* dy, int n, int channels,
                           int spatial, const float* gamma,
                           const float* running_mean, const float* running_var,
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
