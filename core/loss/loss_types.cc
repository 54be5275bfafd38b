#include "core/loss/loss_types.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace embedsearch {

absl::StatusOr<Reduction> ParseReduction(absl::string_view name) {
  if (name == "none") return Reduction::kNone;
  if (name == "mean") return Reduction::kMean;
  if (name == "sum") return Reduction::kSum;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown reduction '", name, "'; expected none, mean or sum"));
}

absl::Status ReduceTerms(const Eigen::VectorXd& terms, Reduction reduction,
                         const Eigen::VectorXd& grad_output,
                         Eigen::VectorXd* output, Eigen::VectorXd* term_grad) {
  const Eigen::Index n = terms.size();
  const Eigen::Index out_size = reduction == Reduction::kNone ? n : 1;
  if (grad_output.size() != 0 && grad_output.size() != out_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("grad_output has ", grad_output.size(),
                     " values; the output has ", out_size));
  }
  switch (reduction) {
    case Reduction::kNone:
      *output = terms;
      *term_grad =
          grad_output.size() == 0 ? Eigen::VectorXd::Ones(n) : grad_output;
      break;
    case Reduction::kMean: {
      // Mean of nothing is NaN, as in PyTorch.
      const double g = grad_output.size() == 0 ? 1.0 : grad_output[0];
      *output = Eigen::VectorXd::Constant(1, terms.sum() / double(n));
      *term_grad = Eigen::VectorXd::Constant(n, g / double(n));
      break;
    }
    case Reduction::kSum: {
      const double g = grad_output.size() == 0 ? 1.0 : grad_output[0];
      *output = Eigen::VectorXd::Constant(1, terms.sum());
      *term_grad = Eigen::VectorXd::Constant(n, g);
      break;
    }
  }
  return absl::OkStatus();
}

}  // namespace embedsearch
