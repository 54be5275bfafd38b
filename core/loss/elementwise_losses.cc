#include "core/loss/elementwise_losses.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

absl::Status CheckInputs(absl::string_view what, const RowMatrix& x,
                         const RowMatrix& target) {
  if (x.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": input must not be empty"));
  }
  if (x.rows() != target.rows() || x.cols() != target.cols()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": input is ", x.rows(), "x", x.cols(), " but target is ",
        target.rows(), "x", target.cols(), "; they must have the same shape"));
  }
  return absl::OkStatus();
}

// Weight of element (i, j): empty -> 1, input-shaped, or 1 x C broadcast.
absl::Status CheckWeight(absl::string_view what, absl::string_view name,
                         const RowMatrix& x, const RowMatrix& w) {
  if (w.size() == 0) return absl::OkStatus();
  if (w.rows() == x.rows() && w.cols() == x.cols()) return absl::OkStatus();
  if (w.rows() == 1 && w.cols() == x.cols()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": ", name, " is ", w.rows(), "x", w.cols(), " but must be ",
      x.rows(), "x", x.cols(), " or 1x", x.cols()));
}

double WeightAt(const RowMatrix& w, Eigen::Index i, Eigen::Index j,
                double dflt) {
  if (w.size() == 0) return dflt;
  return w.rows() == 1 ? w(0, j) : w(i, j);
}

// Flattens per-element terms, reduces, and returns per-element gradient
// factors laid out like x.
absl::Status Reduce(const RowMatrix& terms, Reduction reduction,
                    const Eigen::VectorXd& grad_output, LossResult* result,
                    RowMatrix* g) {
  Eigen::VectorXd flat =
      Eigen::Map<const Eigen::VectorXd>(terms.data(), terms.size());
  Eigen::VectorXd gflat;
  RETURN_IF_ERROR(
      ReduceTerms(flat, reduction, grad_output, &result->output, &gflat));
  *g = Eigen::Map<const RowMatrix>(gflat.data(), terms.rows(), terms.cols());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LossResult> HingeEmbeddingLoss(
    const RowMatrix& x, const RowMatrix& target, double margin,
    Reduction reduction, const Eigen::VectorXd& grad_output) {
  RETURN_IF_ERROR(CheckInputs("HingeEmbeddingLoss", x, target));
  RowMatrix terms(x.rows(), x.cols()), dx(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const double v = x.data()[i], y = target.data()[i];
    double l = 0, d = 0;
    if (y != 1) {
      l += std::max(margin - v, 0.0);
      if (margin - v >= 0) d -= 1;  // clamp_min mask
    }
    if (y != -1) {
      l += v;
      d += 1;
    }
    terms.data()[i] = l;
    dx.data()[i] = d;
  }
  LossResult result;
  RowMatrix g;
  RETURN_IF_ERROR(Reduce(terms, reduction, grad_output, &result, &g));
  result.grads = {dx.cwiseProduct(g)};
  return result;
}

absl::StatusOr<LossResult> MarginRankingLoss(
    const RowMatrix& x1, const RowMatrix& x2, const RowMatrix& target,
    double margin, Reduction reduction, const Eigen::VectorXd& grad_output) {
  RETURN_IF_ERROR(CheckInputs("MarginRankingLoss", x1, target));
  RETURN_IF_ERROR(CheckInputs("MarginRankingLoss", x2, target));
  RowMatrix terms(x1.rows(), x1.cols()), dx1(x1.rows(), x1.cols());
  for (Eigen::Index i = 0; i < x1.size(); ++i) {
    const double y = target.data()[i];
    const double z = -y * (x1.data()[i] - x2.data()[i]) + margin;
    terms.data()[i] = std::max(z, 0.0);
    dx1.data()[i] = z >= 0 ? -y : 0.0;
  }
  LossResult result;
  RowMatrix g;
  RETURN_IF_ERROR(Reduce(terms, reduction, grad_output, &result, &g));
  RowMatrix g1 = dx1.cwiseProduct(g);
  result.grads = {g1, -g1};
  return result;
}

absl::StatusOr<LossResult> SoftMarginLoss(const RowMatrix& x,
                                          const RowMatrix& target,
                                          Reduction reduction,
                                          const Eigen::VectorXd& grad_output) {
  RETURN_IF_ERROR(CheckInputs("SoftMarginLoss", x, target));
  RowMatrix terms(x.rows(), x.cols()), dx(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const double y = target.data()[i];
    const double z = std::exp(-y * x.data()[i]);
    terms.data()[i] = std::log1p(z);
    dx.data()[i] = -y * z / (1 + z);
  }
  LossResult result;
  RowMatrix g;
  RETURN_IF_ERROR(Reduce(terms, reduction, grad_output, &result, &g));
  result.grads = {dx.cwiseProduct(g)};
  return result;
}

absl::StatusOr<LossResult> BceLoss(const RowMatrix& x, const RowMatrix& target,
                                   const RowMatrix& weight, Reduction reduction,
                                   const Eigen::VectorXd& grad_output) {
  constexpr absl::string_view kWhat = "BCELoss";
  RETURN_IF_ERROR(CheckInputs(kWhat, x, target));
  RETURN_IF_ERROR(CheckWeight(kWhat, "weight", x, weight));
  RowMatrix terms(x.rows(), x.cols()), dx(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double v = x(i, j), y = target(i, j);
      if (!(v >= 0 && v <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            kWhat, ": every input must be a probability in [0, 1]; input(", i,
            ", ", j, ") = ", v));
      }
      const double w = WeightAt(weight, i, j, 1.0);
      terms(i, j) = w * ((y - 1) * std::max(std::log1p(-v), -100.0) -
                         y * std::max(std::log(v), -100.0));
      dx(i, j) = w * (v - y) / std::max((1 - v) * v, 1e-12);
    }
  }
  LossResult result;
  RowMatrix g;
  RETURN_IF_ERROR(Reduce(terms, reduction, grad_output, &result, &g));
  result.grads = {dx.cwiseProduct(g)};
  return result;
}

absl::StatusOr<LossResult> BceWithLogitsLoss(
    const RowMatrix& x, const RowMatrix& target, const RowMatrix& weight,
    const RowMatrix& pos_weight, Reduction reduction,
    const Eigen::VectorXd& grad_output) {
  constexpr absl::string_view kWhat = "BCEWithLogitsLoss";
  RETURN_IF_ERROR(CheckInputs(kWhat, x, target));
  RETURN_IF_ERROR(CheckWeight(kWhat, "weight", x, weight));
  if (pos_weight.size() != 0 &&
      !(pos_weight.rows() == 1 && pos_weight.cols() == x.cols())) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": pos_weight is ", pos_weight.rows(), "x",
                     pos_weight.cols(), " but must be 1x", x.cols()));
  }
  RowMatrix terms(x.rows(), x.cols()), dx(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double v = x(i, j), y = target(i, j);
      const double w = WeightAt(weight, i, j, 1.0);
      const double pw = WeightAt(pos_weight, 0, j, 1.0);
      const double softplus_neg =
          std::max(-v, 0.0) + std::log1p(std::exp(-std::abs(v)));
      const double log_weight = 1 + (pw - 1) * y;
      terms(i, j) = w * ((1 - y) * v + log_weight * softplus_neg);
      const double sig = 1 / (1 + std::exp(-v));
      dx(i, j) = w * ((pw * y + 1 - y) * sig - pw * y);
    }
  }
  LossResult result;
  RowMatrix g;
  RETURN_IF_ERROR(Reduce(terms, reduction, grad_output, &result, &g));
  result.grads = {dx.cwiseProduct(g)};
  return result;
}

absl::StatusOr<KlReduction> ParseKlReduction(absl::string_view name) {
  if (name == "batchmean") return KlReduction::kBatchMean;
  ASSIGN_OR_RETURN(Reduction r, ParseReduction(name));
  switch (r) {
    case Reduction::kNone:
      return KlReduction::kNone;
    case Reduction::kMean:
      return KlReduction::kMean;
    case Reduction::kSum:
      return KlReduction::kSum;
  }
  return KlReduction::kMean;
}

absl::StatusOr<LossResult> KlDivLoss(const RowMatrix& x,
                                     const RowMatrix& target,
                                     KlReduction reduction, bool log_target,
                                     const Eigen::VectorXd& grad_output) {
  RETURN_IF_ERROR(CheckInputs("KLDivLoss", x, target));
  RowMatrix terms(x.rows(), x.cols()), dx(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const double v = x.data()[i], y = target.data()[i];
    if (log_target) {
      const double e = std::exp(y);
      terms.data()[i] = e * (y - v);
      dx.data()[i] = -e;
    } else {
      // xlogy(y, y) - y * x: 0 * log 0 is 0.
      const double xlogy = y == 0 ? 0.0 : y * std::log(y);
      terms.data()[i] = xlogy - y * v;
      dx.data()[i] = -y;
    }
  }
  LossResult result;
  RowMatrix g;
  Reduction r = Reduction::kSum;
  if (reduction == KlReduction::kNone) r = Reduction::kNone;
  if (reduction == KlReduction::kMean) r = Reduction::kMean;
  Eigen::VectorXd go = grad_output;
  if (reduction == KlReduction::kBatchMean && go.size() == 0) {
    go = Eigen::VectorXd::Ones(1);
  }
  if (reduction == KlReduction::kBatchMean && go.size() == 1) {
    go[0] /= static_cast<double>(x.rows());
  }
  RETURN_IF_ERROR(Reduce(terms, r, go, &result, &g));
  if (reduction == KlReduction::kBatchMean) {
    result.output[0] /= static_cast<double>(x.rows());
  }
  result.grads = {dx.cwiseProduct(g)};
  return result;
}

}  // namespace embedsearch
