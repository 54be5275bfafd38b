#include "core/loss/pairwise_losses.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/loss/distance.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

constexpr double kCosineEpsilon = 1e-12;  // ATen's EPSILON in Loss.cpp

absl::Status CheckSameShape(absl::string_view what, const RowMatrix& a,
                            absl::string_view a_name, const RowMatrix& b,
                            absl::string_view b_name) {
  if (a.rows() == b.rows() && a.cols() == b.cols()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": ", a_name, " is ", a.rows(), "x", a.cols(), " but ", b_name,
      " is ", b.rows(), "x", b.cols(), "; they must have the same shape"));
}

absl::Status CheckNonEmpty(absl::string_view what, const RowMatrix& a) {
  if (a.rows() > 0 && a.cols() > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": inputs must have at least one row and column"));
}

}  // namespace

absl::StatusOr<LossResult> TripletMarginLoss(
    const RowMatrix& anchor, const RowMatrix& positive,
    const RowMatrix& negative, const TripletMarginOptions& options,
    const Eigen::VectorXd& grad_output) {
  constexpr absl::string_view kWhat = "TripletMarginLoss";
  RETURN_IF_ERROR(CheckNonEmpty(kWhat, anchor));
  RETURN_IF_ERROR(
      CheckSameShape(kWhat, anchor, "anchor", positive, "positive"));
  RETURN_IF_ERROR(
      CheckSameShape(kWhat, anchor, "anchor", negative, "negative"));
  if (!(options.p >= 1) || !std::isfinite(options.p)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": p must be finite and >= 1, got ", options.p));
  }
  if (!(options.eps >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": eps must be >= 0, got ", options.eps));
  }
  const Eigen::Index n = anchor.rows();
  const int dim = static_cast<int>(anchor.cols());
  const double p = options.p, eps = options.eps;
  const Eigen::VectorXd d_pos = PairwiseDistance(anchor, positive, p, eps);
  const Eigen::VectorXd d_an = PairwiseDistance(anchor, negative, p, eps);
  Eigen::VectorXd d_pn;
  Eigen::VectorXd d_neg = d_an;
  if (options.swap) {
    d_pn = PairwiseDistance(positive, negative, p, eps);
    d_neg = d_an.cwiseMin(d_pn);
  }
  Eigen::VectorXd z = (options.margin + d_pos.array() - d_neg.array()).matrix();
  Eigen::VectorXd terms = z.cwiseMax(0.0);

  LossResult result;
  Eigen::VectorXd g;
  RETURN_IF_ERROR(
      ReduceTerms(terms, options.reduction, grad_output, &result.output, &g));
  result.grads.assign(3, RowMatrix::Zero(n, dim));
  RowMatrix& ga = result.grads[0];
  RowMatrix& gp = result.grads[1];
  RowMatrix& gn = result.grads[2];
  for (Eigen::Index i = 0; i < n; ++i) {
    if (!(z[i] >= 0)) continue;  // clamp_min backward: mask z >= 0
    const double gi = g[i];
    AddRowDistanceGrad(anchor.row(i).data(), positive.row(i).data(), dim, p,
                       eps, d_pos[i], gi, ga.row(i).data(), gp.row(i).data());
    // d_neg enters with -1; at::minimum splits ties in half.
    double w_an = 1, w_pn = 0;
    if (options.swap) {
      if (d_an[i] == d_pn[i]) {
        w_an = w_pn = 0.5;
      } else if (d_pn[i] < d_an[i]) {
        w_an = 0, w_pn = 1;
      }
    }
    if (w_an != 0) {
      AddRowDistanceGrad(anchor.row(i).data(), negative.row(i).data(), dim, p,
                         eps, d_an[i], -gi * w_an, ga.row(i).data(),
                         gn.row(i).data());
    }
    if (w_pn != 0) {
      AddRowDistanceGrad(positive.row(i).data(), negative.row(i).data(), dim, p,
                         eps, d_pn[i], -gi * w_pn, gp.row(i).data(),
                         gn.row(i).data());
    }
  }
  return result;
}

double RowCosine(const double* x1, const double* x2, int dim) {
  double s = 0, m1 = kCosineEpsilon, m2 = kCosineEpsilon;
  for (int k = 0; k < dim; ++k) {
    s += x1[k] * x2[k];
    m1 += x1[k] * x1[k];
    m2 += x2[k] * x2[k];
  }
  return s / std::sqrt(m1 * m2);
}

void AddRowCosineGrad(const double* x1, const double* x2, int dim, double g,
                      double* gx1, double* gx2) {
  double s = 0, m1 = kCosineEpsilon, m2 = kCosineEpsilon;
  for (int k = 0; k < dim; ++k) {
    s += x1[k] * x2[k];
    m1 += x1[k] * x1[k];
    m2 += x2[k] * x2[k];
  }
  const double den = std::sqrt(m1 * m2);
  const double cos = s / den;
  for (int k = 0; k < dim; ++k) {
    if (gx1 != nullptr) gx1[k] += g * (x2[k] / den - cos * x1[k] / m1);
    if (gx2 != nullptr) gx2[k] += g * (x1[k] / den - cos * x2[k] / m2);
  }
}

absl::StatusOr<LossResult> CosineEmbeddingLoss(
    const RowMatrix& x1, const RowMatrix& x2, const Eigen::VectorXd& target,
    const CosineEmbeddingOptions& options, const Eigen::VectorXd& grad_output) {
  constexpr absl::string_view kWhat = "CosineEmbeddingLoss";
  RETURN_IF_ERROR(CheckNonEmpty(kWhat, x1));
  RETURN_IF_ERROR(CheckSameShape(kWhat, x1, "input1", x2, "input2"));
  if (target.size() != x1.rows()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": target has ", target.size(),
                     " values but the inputs have ", x1.rows(), " rows"));
  }
  const Eigen::Index n = x1.rows();
  const int dim = static_cast<int>(x1.cols());
  Eigen::VectorXd cos(n), terms(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    cos[i] = RowCosine(x1.row(i).data(), x2.row(i).data(), dim);
    if (target[i] == 1) {
      terms[i] = 1 - cos[i];
    } else if (target[i] == -1) {
      terms[i] = std::max(cos[i] - options.margin, 0.0);
    } else {
      terms[i] = 0;
    }
  }
  LossResult result;
  Eigen::VectorXd g;
  RETURN_IF_ERROR(
      ReduceTerms(terms, options.reduction, grad_output, &result.output, &g));
  result.grads.assign(2, RowMatrix::Zero(n, dim));
  for (Eigen::Index i = 0; i < n; ++i) {
    double gcos = 0;
    if (target[i] == 1) {
      gcos = -g[i];
    } else if (target[i] == -1 && cos[i] - options.margin >= 0) {
      gcos = g[i];
    }
    if (gcos == 0) continue;
    AddRowCosineGrad(x1.row(i).data(), x2.row(i).data(), dim, gcos,
                     result.grads[0].row(i).data(),
                     result.grads[1].row(i).data());
  }
  return result;
}

}  // namespace embedsearch
