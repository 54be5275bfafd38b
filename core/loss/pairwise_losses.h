// PyTorch 1.13's TripletMarginLoss and CosineEmbeddingLoss on (N, D) rows,
// in double, with the gradients autograd would produce.
//
// Errors: InvalidArgument for empty inputs, mismatched shapes, p < 1 or
// non-finite p, negative eps, a target of the wrong length, or a
// grad_output of the wrong size.
#ifndef EMBEDSEARCH_CORE_LOSS_PAIRWISE_LOSSES_H_
#define EMBEDSEARCH_CORE_LOSS_PAIRWISE_LOSSES_H_

#include "core/loss/loss_types.h"

namespace embedsearch {

struct TripletMarginOptions {
  double margin = 1.0;  // default 1 (PyTorch's)
  double p = 2;         // default 2; finite, >= 1
  double eps = 1e-6;    // default 1e-6, added to the difference
  bool swap = false;    // default off
  Reduction reduction = Reduction::kMean;  // default mean
};

// l_i = max(0, margin + d(a_i, p_i) - d(a_i, n_i)), d = pairwise_distance;
// with swap, d(a_i, n_i) is replaced by min(d(a_i, n_i), d(p_i, n_i))
// (at::minimum: a tie sends half the gradient each way). The hinge passes
// its gradient where its argument is >= 0 (clamp_min's mask).
// grads: {anchor, positive, negative}.
absl::StatusOr<LossResult> TripletMarginLoss(
    const RowMatrix& anchor, const RowMatrix& positive,
    const RowMatrix& negative, const TripletMarginOptions& options,
    const Eigen::VectorXd& grad_output = Eigen::VectorXd());

struct CosineEmbeddingOptions {
  double margin = 0.0;                     // default 0 (PyTorch's)
  Reduction reduction = Reduction::kMean;  // default mean
};

// cos_i = <x1_i, x2_i> / sqrt((|x1_i|^2 + 1e-12) (|x2_i|^2 + 1e-12)) (ATen
// adds EPSILON to each squared norm, so zero vectors give cos = 0);
// l_i = 1 - cos_i if y_i == 1, max(0, cos_i - margin) if y_i == -1, and 0
// for any other target value (ATen's where() form). grads: {x1, x2}.
absl::StatusOr<LossResult> CosineEmbeddingLoss(
    const RowMatrix& x1, const RowMatrix& x2, const Eigen::VectorXd& target,
    const CosineEmbeddingOptions& options,
    const Eigen::VectorXd& grad_output = Eigen::VectorXd());

// The cosine above for one pair of rows and its gradient pieces:
// dcos/dx1 = x2/den - cos*x1/m1, dcos/dx2 = x1/den - cos*x2/m2.
double RowCosine(const double* x1, const double* x2, int dim);
// Adds g * dcos/dx1 to gx1 and g * dcos/dx2 to gx2 (either may be null).
void AddRowCosineGrad(const double* x1, const double* x2, int dim, double g,
                      double* gx1, double* gx2);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_PAIRWISE_LOSSES_H_
