// PyTorch 1.13's CTCLoss (CPU algorithm of ATen's LossCTC.cpp), in double.
//
// log_probs: (T, N, C) log-probabilities, passed as a (T*N) x C matrix whose
// row t*N + n is time t of sample n. For each sample the loss is
// -log p(target | input) summed over all alignments (log-space
// forward-backward over the blank-extended target l' of length 2L+1).
//
// Reduction: kNone gives N values; kMean is mean_n(loss_n / max(L_n, 1))
// (PyTorch divides by the target lengths first); kSum sums.
// zero_infinity: an infinite loss (no feasible alignment) becomes 0 and its
// gradient 0; without it the loss is +inf and the gradient NaN, as in ATen.
//
// Gradient convention (ATen's, NOT the plain partial derivative): for
// t < input_length_n,
//   grad[t, n, c] = (exp(lp[t,n,c]) - exp(log sum_{s: l'_s = c}
//                   alpha_t(s) beta_t(s) + nll_n - lp[t,n,c])) * g_n,
// i.e. the gradient with respect to the logits under a log_softmax, which
// equals the true gradient once it is pushed through log_softmax; rows
// t >= input_length_n get 0.
//
// Errors: InvalidArgument for shapes that do not divide, blank outside
// [0, C), input lengths outside [1, T], negative target lengths, target
// lengths beyond the padded width, missing targets, or a target label that
// is the blank or outside [0, C).
#ifndef EMBEDSEARCH_CORE_LOSS_CTC_LOSS_H_
#define EMBEDSEARCH_CORE_LOSS_CTC_LOSS_H_

#include <cstdint>
#include <vector>

#include "core/loss/loss_types.h"

namespace embedsearch {

struct CtcTargets {
  // Either padded, (N, padded_width) row-major with padded_width > 0, or
  // concatenated (padded_width == 0): sample n's labels follow sample n-1's.
  std::vector<int64_t> labels;
  int64_t padded_width = 0;
  std::vector<int64_t> lengths;  // N target lengths
};

struct CtcOptions {
  int64_t blank = 0;                       // default 0
  Reduction reduction = Reduction::kMean;  // default mean
  bool zero_infinity = false;              // default off
};

// grads: {log_probs} in the (T*N) x C layout.
absl::StatusOr<LossResult> CtcLoss(
    const RowMatrix& log_probs, int64_t max_time, const CtcTargets& targets,
    const std::vector<int64_t>& input_lengths, const CtcOptions& options,
    const Eigen::VectorXd& grad_output = Eigen::VectorXd());

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_CTC_LOSS_H_
