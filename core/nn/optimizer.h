// Optimizers over encoder parameters, with PyTorch's update rules, and
// their state as bytes so a trainer can checkpoint and resume exactly.
//
//   SGD:   g = grad + wd*p; buf = momentum*buf + g (buf = g on the first
//          step); g = nesterov ? g + momentum*buf : buf; p -= lr*g.
//   Adam:  g = grad + wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
//          p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
//   AdamW: as Adam, but weight decay is decoupled: p *= 1 - lr*wd first,
//          and g = grad.
// Only parameters with trainable = true are updated. Not thread-safe: one
// optimizer belongs to one training loop; parameters must outlive it.
#ifndef EMBEDSEARCH_CORE_NN_OPTIMIZER_H_
#define EMBEDSEARCH_CORE_NN_OPTIMIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/nn/encoder.h"

namespace embedsearch {

struct SgdOptions {
  float momentum = 0.9f;      // default: 0.9 (0 = plain SGD)
  bool nesterov = false;      // default: off
  float weight_decay = 0.0f;  // default: none (L2 added to the gradient)
};

struct AdamOptions {
  float beta1 = 0.9f;         // default: 0.9
  float beta2 = 0.999f;       // default: 0.999
  float eps = 1e-8f;          // default: 1e-8
  float weight_decay = 0.0f;  // default: none
  bool decoupled_weight_decay = false;  // default: Adam; true = AdamW
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every trainable parameter from its gradient with learning
  // rate `lr` (take it from LearningRateAt(schedule, steps())).
  virtual void Step(float lr) = 0;
  // Zeroes the gradients of all parameters.
  void ZeroGrad();
  // Number of Step calls so far (restored by LoadState).
  int64_t steps() const { return steps_; }
  const std::vector<Parameter*>& parameters() const { return params_; }
  // OpenMP threads for Step (default 1; 0 = the OpenMP default). Updates
  // are elementwise, so the result does not depend on the thread count.
  void set_threads(int threads) { threads_ = threads < 0 ? 1 : threads; }
  int threads() const { return threads_; }

  // Step count and per-parameter buffers (momentum, Adam moments), tagged
  // with the optimizer kind and parameter names and sizes.
  std::string SaveState() const;
  // Restores SaveState output. InvalidArgument if it belongs to another
  // optimizer kind or other parameters (names the first mismatch);
  // DataLoss if the bytes are truncated or corrupt. On error the optimizer
  // is unchanged.
  absl::Status LoadState(absl::string_view bytes);

 protected:
  Optimizer(std::vector<Parameter*> params, uint8_t kind, int buffers);
  // buffers_[b][i]: buffer b of parameter i (same size as its value).
  std::vector<Parameter*> params_;
  std::vector<std::vector<std::vector<float>>> buffers_;
  int64_t steps_ = 0;
  int threads_ = 1;

 private:
  uint8_t kind_;
};

std::unique_ptr<Optimizer> MakeSgd(std::vector<Parameter*> params,
                                   const SgdOptions& options = {});
std::unique_ptr<Optimizer> MakeAdam(std::vector<Parameter*> params,
                                    const AdamOptions& options = {});
// AdamW: MakeAdam with decoupled_weight_decay = true.
std::unique_ptr<Optimizer> MakeAdamW(std::vector<Parameter*> params,
                                     AdamOptions options = {});

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_OPTIMIZER_H_
