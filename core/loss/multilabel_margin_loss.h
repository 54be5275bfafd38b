// PyTorch 1.13's MultiLabelMarginLoss (multi-class hinge) on (N, C) scores.
//
// For sample i, the targets are target(i, 0..k-1) up to the first -1 (the
// rest of the row is ignored); J = that set, and
//   l_i = sum_{j in J} sum_{c not in J} max(0, 1 - (x[j] - x[c])) / C.
// Gradient as ATen's backward: only terms with 1 - (x[j] - x[c]) > 0
// (strictly) contribute: -1/C to x[j], +1/C to x[c]. A 1-D input of C scores
// is passed as a 1 x C matrix (kMean then divides by 1, as PyTorch).
//
// Errors: InvalidArgument for empty input, shape mismatch, or a target
// outside [-1, C).
#ifndef EMBEDSEARCH_CORE_LOSS_MULTILABEL_MARGIN_LOSS_H_
#define EMBEDSEARCH_CORE_LOSS_MULTILABEL_MARGIN_LOSS_H_

#include <cstdint>
#include <vector>

#include "core/loss/loss_types.h"

namespace embedsearch {

// `target` holds N*C class indices, row-major. Reduction over the N samples.
// grads: {x}.
absl::StatusOr<LossResult> MultiLabelMarginLoss(
    const RowMatrix& x, const std::vector<int64_t>& target, Reduction reduction,
    const Eigen::VectorXd& grad_output = Eigen::VectorXd());

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_MULTILABEL_MARGIN_LOSS_H_
