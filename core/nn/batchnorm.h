// Batch normalization over [n, channels, spatial] (BatchNorm2d; spatial = 1
// gives BatchNorm1d), with PyTorch's semantics: training normalizes with the
// biased batch variance and updates the running statistics with the
// unbiased one, running = (1 - momentum) * running + momentum * batch;
// eval normalizes with the running statistics. Thread-safe.
//
// `threads` (<= 0: the OpenMP default) splits the training-mode functions by
// channel: each channel's sums are still taken by one thread in the same
// order, so results are bit-identical for every thread count.
#ifndef EMBEDSEARCH_CORE_NN_BATCHNORM_H_
#define EMBEDSEARCH_CORE_NN_BATCHNORM_H_

namespace embedsearch {
namespace nn {

struct BatchNormOptions {
  float momentum = 0.1f;  // default: PyTorch's
  float eps = 1e-5f;      // default: PyTorch's
};

// y = gamma * (x - mean_batch) * invstd + beta. Saves the batch mean and
// 1/sqrt(var + eps) per channel for the backward pass; updates running
// stats (skipped if running_mean is null).
void BatchNormForwardTrain(const float* x, int n, int channels, int spatial,
                           const float* gamma, const float* beta,
                           const BatchNormOptions& options,
                           float* running_mean, float* running_var, float* y,
                           float* save_mean, float* save_invstd,
                           int threads = 1);
void BatchNormForwardEval(const float* x, int n, int channels, int spatial,
                          const float* gamma, const float* beta,
                          const float* running_mean, const float* running_var,
                          const BatchNormOptions& options, float* y);
// Gradients of the training-mode forward: dx overwritten, dgamma/dbeta
// accumulated.
void BatchNormBackwardTrain(const float* x, const float* dy, int n,
                            int channels, int spatial, const float* gamma,
                            const float* save_mean, const float* save_invstd,
                            float* dx, float* dgamma, float* dbeta,
                            int threads = 1);
// Gradients of the eval-mode forward (a per-channel affine map).
void BatchNormBackwardEval(const float* x, const float* dy, int n,
                           int channels, int spatial, const float* gamma,
                           const float* running_mean,
                           const float* running_var,
                           const BatchNormOptions& options, float* dx,
                           float* dgamma, float* dbeta);

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_BATCHNORM_H_
