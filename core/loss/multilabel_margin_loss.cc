#include "core/loss/multilabel_margin_loss.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace embedsearch {

absl::StatusOr<LossResult> MultiLabelMarginLoss(
    const RowMatrix& x, const std::vector<int64_t>& target, Reduction reduction,
    const Eigen::VectorXd& grad_output) {
  constexpr absl::string_view kWhat = "MultiLabelMarginLoss";
  const Eigen::Index n = x.rows(), c = x.cols();
  if (x.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": input must not be empty"));
  }
  if (static_cast<Eigen::Index>(target.size()) != x.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": target has ", target.size(),
                     " entries but the input is ", n, "x", c));
  }
  for (size_t k = 0; k < target.size(); ++k) {
    if (target[k] < -1 || target[k] >= c) {
      return absl::InvalidArgumentError(absl::StrCat(
          kWhat, ": target entry ", k, " is ", target[k],
          "; class indices must be in [0, ", c, ") with -1 ending a row"));
    }
  }
  Eigen::VectorXd terms = Eigen::VectorXd::Zero(n);
  // Active (j, c) pairs, remembered for the backward pass.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> active(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    std::vector<bool> is_target(c, false);
    std::vector<int64_t> targets;
    for (Eigen::Index k = 0; k < c; ++k) {
      const int64_t t = target[i * c + k];
      if (t < 0) break;
      targets.push_back(t);
      is_target[t] = true;
    }
    double sum = 0;
    for (int64_t j : targets) {
      for (Eigen::Index d = 0; d < c; ++d) {
        if (is_target[d]) continue;
        const double z = 1 - x(i, j) + x(i, d);
        if (z > 0) {
          sum += z;
          active[i].push_back({j, d});
        }
      }
    }
    terms[i] = sum / static_cast<double>(c);
  }
  LossResult result;
  Eigen::VectorXd g;
  RETURN_IF_ERROR(
      ReduceTerms(terms, reduction, grad_output, &result.output, &g));
  RowMatrix dx = RowMatrix::Zero(n, c);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double s = g[i] / static_cast<double>(c);
    for (const auto& [j, d] : active[i]) {
      dx(i, j) -= s;
      dx(i, d) += s;
    }
  }
  result.grads = {dx};
  return result;
}

}  // namespace embedsearch
