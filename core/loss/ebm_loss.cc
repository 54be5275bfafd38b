#include "core/loss/ebm_loss.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace embedsearch {

double Softplus(double z) {
  return std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z)));
}

double Sigmoid(double z) {
  if (z >= 0) return 1 / (1 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1 + e);
}

double EbmSampleLoss(EbmLossKind kind, const double* e, int k, int correct,
                     const EbmOptions& options, double g, double* grad) {
  const double ec = e[correct];
  // Most offending incorrect answer (first on ties); -1 if there is none.
  int bar = -1;
  for (int y = 0; y < k; ++y) {
    if (y != correct && (bar < 0 || e[y] < e[bar])) bar = y;
  }
  auto add = [&](int y, double v) {
    if (grad != nullptr) grad[y] += g * v;
  };
  switch (kind) {
    case EbmLossKind::kEnergy:
      add(correct, 1);
      return ec;
    case EbmLossKind::kNll: {
      // -beta E is the logit; log-sum-exp shifted by its max.
      const double beta = options.beta;
      double mx = -beta * e[0];
      for (int y = 1; y < k; ++y) mx = std::max(mx, -beta * e[y]);
      double z = 0;
      for (int y = 0; y < k; ++y) z += std::exp(-beta * e[y] - mx);
      const double lse = std::log(z) + mx;
      add(correct, 1);
      for (int y = 0; y < k; ++y) add(y, -std::exp(-beta * e[y] - lse));
      return ec + lse / beta;
    }
    case EbmLossKind::kPerceptron: {
      int arg = 0;
      for (int y = 1; y < k; ++y) {
        if (e[y] < e[arg]) arg = y;
      }
      if (e[correct] == e[arg]) arg = correct;  // loss 0 is flat there
      add(correct, 1);
      add(arg, -1);
      return ec - e[arg];
    }
    case EbmLossKind::kHinge: {
      const double z = options.margin + ec - e[bar];
      if (z >= 0) {
        add(correct, 1);
        add(bar, -1);
      }
      return std::max(z, 0.0);
    }
    case EbmLossKind::kLog: {
      const double z = ec - e[bar];
      const double s = Sigmoid(z);
      add(correct, s);
      add(bar, -s);
      return Softplus(z);
    }
    case EbmLossKind::kSquareSquare: {
      const double h = options.margin - e[bar];
      add(correct, 2 * ec);
      if (h >= 0) add(bar, -2 * h);
      const double hp = std::max(h, 0.0);
      return ec * ec + hp * hp;
    }
  }
  return 0;
}

namespace {

absl::Status CheckEnergies(const RowMatrix& energies,
                           const std::vector<int>& correct, int min_k) {
  if (energies.rows() < 1 || energies.cols() < min_k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "EBM loss: energies are ", energies.rows(), "x", energies.cols(),
        "; need at least 1 sample and ", min_k, " candidates"));
  }
  if (static_cast<Eigen::Index>(correct.size()) != energies.rows()) {
    return absl::InvalidArgumentError(
        absl::StrCat("EBM loss: ", correct.size(), " correct answers for ",
                     energies.rows(), " samples"));
  }
  for (size_t i = 0; i < correct.size(); ++i) {
    if (correct[i] < 0 || correct[i] >= energies.cols()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "EBM loss: correct answer of sample ", i, " is ", correct[i],
          ", not a candidate in [0, ", energies.cols(), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckEbmOptions(const EbmOptions& options) {
  if (!(options.beta > 0) || !std::isfinite(options.beta)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "EBM loss: beta must be finite and > 0, got ", options.beta));
  }
  return absl::OkStatus();
}

absl::StatusOr<LossResult> EbmLoss(const RowMatrix& energies,
                                   const std::vector<int>& correct,
                                   EbmLossKind kind,
                                   const EbmOptions& options) {
  const bool needs_incorrect = kind == EbmLossKind::kHinge ||
                               kind == EbmLossKind::kLog ||
                               kind == EbmLossKind::kSquareSquare;
  absl::Status s = CheckEnergies(energies, correct, needs_incorrect ? 2 : 1);
  if (!s.ok()) return s;
  s = CheckEbmOptions(options);
  if (!s.ok()) return s;
  const Eigen::Index p = energies.rows();
  const int k = static_cast<int>(energies.cols());
  const double g = 1.0 / static_cast<double>(p);
  LossResult result;
  RowMatrix grad = RowMatrix::Zero(p, k);
  double total = 0;
  for (Eigen::Index i = 0; i < p; ++i) {
    total += EbmSampleLoss(kind, energies.row(i).data(), k, correct[i], options,
                           g, grad.row(i).data());
  }
  result.output = Eigen::VectorXd::Constant(1, total * g);
  result.grads = {grad};
  return result;
}

double GeneralMarginSampleLoss(const double* e, const double* cost, int k,
                               int correct, HingeFunction h, double g,
                               double* grad) {
  double total = 0;
  for (int y = 0; y < k; ++y) {
    if (y == correct) continue;
    const double z = e[correct] - e[y] + cost[y];
    double value = 0, slope = 0;
    switch (h) {
      case HingeFunction::kHinge:
        value = std::max(z, 0.0);
        slope = z >= 0 ? 1.0 : 0.0;  // clamp_min convention at the kink
        break;
      case HingeFunction::kSoftHinge:
        value = Softplus(z);
        slope = Sigmoid(z);
        break;
      case HingeFunction::kSquaredHinge:
        value = z > 0 ? z * z : 0.0;
        slope = z > 0 ? 2 * z : 0.0;
        break;
    }
    total += value;
    if (grad != nullptr) {
      grad[correct] += g * slope;
      grad[y] -= g * slope;
    }
  }
  return total;
}

absl::StatusOr<LossResult> GeneralMarginLoss(const RowMatrix& energies,
                                             const std::vector<int>& correct,
                                             const RowMatrix& cost,
                                             HingeFunction h) {
  absl::Status s = CheckEnergies(energies, correct, 1);
  if (!s.ok()) return s;
  if (cost.rows() != energies.rows() || cost.cols() != energies.cols()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GeneralMarginLoss: cost is ", cost.rows(), "x", cost.cols(),
        " but energies are ", energies.rows(), "x", energies.cols()));
  }
  const Eigen::Index p = energies.rows();
  const int k = static_cast<int>(energies.cols());
  const double g = 1.0 / static_cast<double>(p);
  RowMatrix grad = RowMatrix::Zero(p, k);
  double total = 0;
  for (Eigen::Index i = 0; i < p; ++i) {
    total += GeneralMarginSampleLoss(energies.row(i).data(), cost.row(i).data(),
                                     k, correct[i], h, g, grad.row(i).data());
  }
  LossResult result;
  result.output = Eigen::VectorXd::Constant(1, total * g);
  result.grads = {grad};
  return result;
}

}  // namespace embedsearch
