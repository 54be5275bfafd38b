// PyTorch 1.13's element-wise losses on (N, C) inputs, in double, with the
// gradient with respect to the input(s) (targets are not differentiated).
// Reduction kMean divides by N*C (the element count), as PyTorch does; a
// 1-D tensor of C values is passed as a 1 x C matrix.
//
// Errors: InvalidArgument for empty inputs, shape mismatches, weights that
// are neither input-shaped nor 1 x C, BCE inputs outside [0, 1], or a
// grad_output of the wrong size.
#ifndef EMBEDSEARCH_CORE_LOSS_ELEMENTWISE_LOSSES_H_
#define EMBEDSEARCH_CORE_LOSS_ELEMENTWISE_LOSSES_H_

#include "core/loss/loss_types.h"

namespace embedsearch {

// l = (y != 1 ? max(0, margin - x) : 0) + (y != -1 ? x : 0)   (ATen's
// where() form: targets other than +-1 get both terms). grads: {x}.
absl::StatusOr<LossResult> HingeEmbeddingLoss(
    const RowMatrix& x, const RowMatrix& target, double margin /* 1 */,
    Reduction reduction,
    const Eigen::VectorXd& grad_output = Eigen::VectorXd());

// l = max(0, -y (x1 - x2) + margin). grads: {x1, x2}.
absl::StatusOr<LossResult> MarginRankingLoss(
    const RowMatrix& x1, const RowMatrix& x2, const RowMatrix& target,
    double margin /* 0 */, Reduction reduction,
    const Eigen::VectorXd& grad_output = Eigen::VectorXd());

// l = log1p(exp(-y x)); dl/dx = -y z / (1 + z), z = exp(-y x) (ATen's
// soft_margin_loss_backward). grads: {x}.
absl::StatusOr<LossResult> SoftMarginLoss(
    const RowMatrix& x, const RowMatrix& target, Reduction reduction,
    const Eigen::VectorXd& grad_output = Eigen::VectorXd());

// l = -w [y max(log x, -100) + (1 - y) max(log1p(-x), -100)];
// dl/dx = w (x - y) / max(x (1 - x), 1e-12) (ATen's backward, which does
// not see the -100 clamp). `weight` is empty, input-shaped, or 1 x C
// (broadcast over rows). grads: {x}.
absl::StatusOr<LossResult> BceLoss(
    const RowMatrix& x, const RowMatrix& target, const RowMatrix& weight,
    Reduction reduction,
    const Eigen::VectorXd& grad_output = Eigen::VectorXd());

// l = w [(1 - y) x + (1 + (pw - 1) y) softplus(-x)], softplus computed as
// max(-x, 0) + log1p(exp(-|x|)); dl/dx = w [(pw y + 1 - y) sigmoid(x) -
// pw y]. `pos_weight` is empty or 1 x C; `weight` as for BceLoss.
// grads: {x}.
absl::StatusOr<LossResult> BceWithLogitsLoss(
    const RowMatrix& x, const RowMatrix& target, const RowMatrix& weight,
    const RowMatrix& pos_weight, Reduction reduction,
    const Eigen::VectorXd& grad_output = Eigen::VectorXd());

// KLDivLoss's reductions: PyTorch's 'batchmean' is sum / N (rows).
enum class KlReduction { kNone, kMean, kSum, kBatchMean };
absl::StatusOr<KlReduction> ParseKlReduction(absl::string_view name);

// Input x is log-probabilities. l = y (log y - x) with 0 where y == 0
// (xlogy), or with log_target: l = exp(y) (y - x). dl/dx = -y, or -exp(y).
// grads: {x}.
absl::StatusOr<LossResult> KlDivLoss(
    const RowMatrix& x, const RowMatrix& target, KlReduction reduction,
    bool log_target, const Eigen::VectorXd& grad_output = Eigen::VectorXd());

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_ELEMENTWISE_LOSSES_H_
