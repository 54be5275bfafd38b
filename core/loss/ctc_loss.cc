#include "core/loss/ctc_loss.h"

#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr double kInf = std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b) + exp(c)) as ATen writes it (max shifted; all -inf
// gives -inf).
double LogSumExp3(double a, double b, double c) {
  double m = std::max(a, std::max(b, c));
  if (m == kNegInf) m = 0;
  return std::log(std::exp(a - m) + std::exp(b - m) + std::exp(c - m)) + m;
}

double LogAddExp(double a, double b) {
  double m = std::max(a, b);
  if (m == kNegInf) return kNegInf;
  return std::log(std::exp(a - m) + std::exp(b - m)) + m;
}

}  // namespace

absl::StatusOr<LossResult> CtcLoss(const RowMatrix& log_probs, int64_t max_time,
                                   const CtcTargets& targets,
                                   const std::vector<int64_t>& input_lengths,
                                   const CtcOptions& options,
                                   const Eigen::VectorXd& grad_output) {
  constexpr absl::string_view kWhat = "CTCLoss";
  const int64_t num_classes = log_probs.cols();
  if (max_time < 1 || log_probs.rows() == 0 ||
      log_probs.rows() % max_time != 0 || num_classes < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, ": log_probs has ", log_probs.rows(), " rows of ", num_classes,
        " classes, which is not (T=", max_time, ") x N x C"));
  }
  const int64_t batch = log_probs.rows() / max_time;
  if (options.blank < 0 || options.blank >= num_classes) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": blank ", options.blank,
                     " is not a class in [0, ", num_classes, ")"));
  }
  if (static_cast<int64_t>(input_lengths.size()) != batch ||
      static_cast<int64_t>(targets.lengths.size()) != batch) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, ": expected ", batch, " input and target lengths, got ",
        input_lengths.size(), " and ", targets.lengths.size()));
  }
  // Offsets of each sample's labels.
  std::vector<int64_t> offset(batch);
  int64_t next = 0;
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t il = input_lengths[n], tl = targets.lengths[n];
    if (il < 1 || il > max_time) {
      return absl::InvalidArgumentError(
          absl::StrCat(kWhat, ": input_lengths[", n, "] = ", il,
                       " must be in [1, T=", max_time, "]"));
    }
    if (tl < 0 || (targets.padded_width > 0 && tl > targets.padded_width)) {
      return absl::InvalidArgumentError(absl::StrCat(
          kWhat, ": target_lengths[", n, "] = ", tl, " must be in [0, ",
          targets.padded_width > 0 ? targets.padded_width : tl, "]"));
    }
    offset[n] = targets.padded_width > 0 ? n * targets.padded_width : next;
    next += tl;
    if (offset[n] + tl > static_cast<int64_t>(targets.labels.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat(kWhat, ": sample ", n, " needs ", tl,
                       " target labels but the targets end early"));
    }
    for (int64_t s = 0; s < tl; ++s) {
      const int64_t l = targets.labels[offset[n] + s];
      if (l < 0 || l >= num_classes || l == options.blank) {
        return absl::InvalidArgumentError(
            absl::StrCat(kWhat, ": target label ", l, " of sample ", n,
                         " must be a class in [0, ", num_classes,
                         ") other than the blank ", options.blank));
      }
    }
  }

  const int64_t blank = options.blank;
  auto lp = [&](int64_t t, int64_t n, int64_t c) {
    return log_probs(t * batch + n, c);
  };
  Eigen::VectorXd nll(batch);
  std::vector<RowMatrix> alphas(batch), betas(batch);
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t il = input_lengths[n], tl = targets.lengths[n];
    const int64_t width = 2 * tl + 1;
    const int64_t* tgt = targets.labels.data() + offset[n];
    // l'_s: blank at even s, target label (s-1)/2 at odd s.
    auto ext = [&](int64_t s) { return s % 2 == 0 ? blank : tgt[s / 2]; };
    RowMatrix& a = alphas[n];
    a = RowMatrix::Constant(il, width, kNegInf);
    a(0, 0) = lp(0, n, blank);
    if (tl > 0) a(0, 1) = lp(0, n, ext(1));
    for (int64_t t = 1; t < il; ++t) {
      for (int64_t s = 0; s < width; ++s) {
        const double la1 = a(t - 1, s);
        const double la2 = s > 0 ? a(t - 1, s - 1) : kNegInf;
        const double la3 =
            s > 1 && ext(s - 2) != ext(s) ? a(t - 1, s - 2) : kNegInf;
        a(t, s) = LogSumExp3(la1, la2, la3) + lp(t, n, ext(s));
      }
    }
    if (tl > 0) {
      nll[n] = -LogAddExp(a(il - 1, width - 1), a(il - 1, width - 2));
    } else {
      nll[n] = -a(il - 1, 0);
    }
    RowMatrix& b = betas[n];
    b = RowMatrix::Constant(il, width, kNegInf);
    b(il - 1, width - 1) = lp(il - 1, n, blank);
    if (tl > 0) b(il - 1, width - 2) = lp(il - 1, n, ext(width - 2));
    for (int64_t t = il - 2; t >= 0; --t) {
      for (int64_t s = 0; s < width; ++s) {
        const double lb1 = b(t + 1, s);
        const double lb2 = s < width - 1 ? b(t + 1, s + 1) : kNegInf;
        const double lb3 =
            s < width - 2 && ext(s + 2) != ext(s) ? b(t + 1, s + 2) : kNegInf;
        b(t, s) = LogSumExp3(lb1, lb2, lb3) + lp(t, n, ext(s));
      }
    }
  }

  Eigen::VectorXd terms = nll;
  if (options.zero_infinity) {
    for (int64_t n = 0; n < batch; ++n) {
      if (terms[n] == kInf) terms[n] = 0;
    }
  }
  LossResult result;
  Eigen::VectorXd g;
  if (options.reduction == Reduction::kMean) {
    Eigen::VectorXd scaled(batch);
    for (int64_t n = 0; n < batch; ++n) {
      scaled[n] = terms[n] /
                  static_cast<double>(std::max<int64_t>(targets.lengths[n], 1));
    }
    RETURN_IF_ERROR(
        ReduceTerms(scaled, Reduction::kMean, grad_output, &result.output, &g));
    for (int64_t n = 0; n < batch; ++n) {
      g[n] /= static_cast<double>(std::max<int64_t>(targets.lengths[n], 1));
    }
  } else {
    RETURN_IF_ERROR(
        ReduceTerms(terms, options.reduction, grad_output, &result.output, &g));
  }

  RowMatrix grad = RowMatrix::Zero(log_probs.rows(), num_classes);
  for (int64_t n = 0; n < batch; ++n) {
    if (options.zero_infinity && nll[n] == kInf) continue;
    const int64_t il = input_lengths[n], tl = targets.lengths[n];
    const int64_t width = 2 * tl + 1;
    const int64_t* tgt = targets.labels.data() + offset[n];
    auto ext = [&](int64_t s) { return s % 2 == 0 ? blank : tgt[s / 2]; };
    std::vector<double> lcab(num_classes);
    for (int64_t t = 0; t < il; ++t) {
      std::fill(lcab.begin(), lcab.end(), kNegInf);
      for (int64_t s = 0; s < width; ++s) {
        const int64_t c = ext(s);
        lcab[c] = LogAddExp(lcab[c], alphas[n](t, s) + betas[n](t, s));
      }
      for (int64_t c = 0; c < num_classes; ++c) {
        const double l = lp(t, n, c);
        grad(t * batch + n, c) =
            (std::exp(l) - std::exp(lcab[c] + nll[n] - l)) * g[n];
      }
    }
  }
  result.grads = {grad};
  return result;
}

}  // namespace embedsearch
