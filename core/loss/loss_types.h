// Shared vocabulary of the PyTorch-compatible losses: reductions, the
// row-major double matrix they take, and the result (value + gradients).
//
// Gradient convention: every loss takes an optional `grad_output`, the
// upstream gradient dL/d(output) with the shape of the output (N values for
// Reduction::kNone, 1 value otherwise). Empty means "all ones", i.e. the
// gradients are those of output.sum(). This is what autograd does.
#ifndef EMBEDSEARCH_CORE_LOSS_LOSS_TYPES_H_
#define EMBEDSEARCH_CORE_LOSS_LOSS_TYPES_H_

#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedsearch {

using RowMatrix =
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// PyTorch's reduction argument ('none', 'mean', 'sum').
enum class Reduction { kNone, kMean, kSum };

absl::StatusOr<Reduction> ParseReduction(absl::string_view name);

struct LossResult {
  // kNone: one value per element / sample (row-major); kMean/kSum: 1 value.
  Eigen::VectorXd output;
  // dL/d(input) for each differentiable input, in the order the function
  // documents, each with its input's shape.
  std::vector<RowMatrix> grads;
};

// Applies `reduction` to per-term values `terms` and turns `grad_output`
// into the upstream gradient of every term (`term_grad`, same size as
// `terms`). InvalidArgument if grad_output has the wrong size.
absl::Status ReduceTerms(const Eigen::VectorXd& terms, Reduction reduction,
                         const Eigen::VectorXd& grad_output,
                         Eigen::VectorXd* output, Eigen::VectorXd* term_grad);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_LOSS_TYPES_H_
