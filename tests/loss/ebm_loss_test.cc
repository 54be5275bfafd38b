// The EBM losses on energies: formulas checked by hand, gradients by central
// finite differences in double (PyTorch ships none of these).
#include "core/loss/ebm_loss.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace embedsearch {
namespace {

RowMatrix RandomEnergies(int p, int k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 3.0);
  RowMatrix e(p, k);
  for (Eigen::Index i = 0; i < e.size(); ++i) e.data()[i] = u(rng);
  return e;
}

// Central differences of f at e, compared with the analytic gradient.
template <typename F>
void ExpectGradientMatchesFiniteDifferences(const RowMatrix& e,
                                            const RowMatrix& analytic, F f) {
  constexpr double h = 1e-6;
  for (Eigen::Index i = 0; i < e.size(); ++i) {
    RowMatrix plus = e, minus = e;
    plus.data()[i] += h;
    minus.data()[i] -= h;
    const double numeric = (f(plus) - f(minus)) / (2 * h);
    EXPECT_NEAR(analytic.data()[i], numeric,
                1e-6 * std::max(1.0, std::abs(numeric)))
        << "entry " << i;
  }
}

// True if no hinge of the margin kinds sits within `tol` of its kink, so
// finite differences see a smooth function.
bool AwayFromKinks(const RowMatrix& e, const std::vector<int>& correct,
                   double m, double tol) {
  for (Eigen::Index i = 0; i < e.rows(); ++i) {
    const int c = correct[i];
    double bar = INFINITY, second = INFINITY;
    for (Eigen::Index y = 0; y < e.cols(); ++y) {
      if (y == c) continue;
      if (e(i, y) < bar) {
        second = bar;
        bar = e(i, y);
      } else if (e(i, y) < second) {
        second = e(i, y);
      }
    }
    if (std::abs(m + e(i, c) - bar) < tol || std::abs(m - bar) < tol ||
        second - bar < tol) {
      return false;
    }
  }
  return true;
}

// Six samples of five candidates, margin 1: hinge active in rows 1, 2, 4, 5
// and inactive in 0, 3; no energy within 1e-3 of a kink or a tie.
RowMatrix HandEnergies() {
  RowMatrix e(6, 5);
  e << 0.2, 1.5, 2.7, 1.9, 3.1,  //
      0.9, 2.2, 1.4, 0.6, 2.9,   //
      2.4, 1.1, 0.3, 1.7, 2.0,   //
      2.6, 3.3, 2.1, 2.8, 0.4,   //
      1.2, 0.75, 1.6, 2.5, 3.0,  //
      1.3, 2.35, 1.95, 0.45, 2.65;
  return e;
}

const EbmLossKind kAllKinds[] = {
    EbmLossKind::kEnergy, EbmLossKind::kNll, EbmLossKind::kPerceptron,
    EbmLossKind::kHinge,  EbmLossKind::kLog, EbmLossKind::kSquareSquare};

TEST(Loss, EbmGradientsMatchFiniteDifferences) {
  const RowMatrix e = HandEnergies();
  const std::vector<int> correct = {0, 3, 1, 4, 2, 0};
  EbmOptions o;
  o.margin = 1.0;
  o.beta = 0.7;
  ASSERT_TRUE(AwayFromKinks(e, correct, o.margin, 1e-3));
  for (EbmLossKind kind : kAllKinds) {
    SCOPED_TRACE(static_cast<int>(kind));
    absl::StatusOr<LossResult> r = EbmLoss(e, correct, kind, o);
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectGradientMatchesFiniteDifferences(
        e, r->grads[0], [&](const RowMatrix& x) {
          return EbmLoss(x, correct, kind, o)->output[0];
        });
  }
}

TEST(Loss, EbmMarginKindsHaveActiveAndInactiveSamplesInTheGradientCheck) {
  // Guards the test above: with margin 1 some hinge samples are active and
  // some are not, so both branches were differentiated.
  const RowMatrix e = HandEnergies();
  const std::vector<int> correct = {0, 3, 1, 4, 2, 0};
  int active = 0;
  for (int i = 0; i < 6; ++i) {
    double bar = INFINITY;
    for (int y = 0; y < 5; ++y) {
      if (y != correct[i]) bar = std::min(bar, e(i, y));
    }
    active += 1.0 + e(i, correct[i]) - bar > 0;
  }
  EXPECT_GT(active, 0);
  EXPECT_LT(active, 6);
}

TEST(Loss, EbmFormulasMatchTheNotes) {
  // One sample, candidates y0 (correct), y1, y2.
  RowMatrix e(1, 3);
  e << 0.5, 0.9, 2.0;
  EbmOptions o;
  o.margin = 1.0;
  o.beta = 2.0;
  auto loss = [&](EbmLossKind k) { return EbmLoss(e, {0}, k, o)->output[0]; };
  EXPECT_DOUBLE_EQ(loss(EbmLossKind::kEnergy), 0.5);
  // Most offending incorrect answer is y1 (0.9).
  EXPECT_DOUBLE_EQ(loss(EbmLossKind::kHinge), 1.0 + 0.5 - 0.9);
  EXPECT_DOUBLE_EQ(loss(EbmLossKind::kLog), std::log1p(std::exp(0.5 - 0.9)));
  EXPECT_DOUBLE_EQ(loss(EbmLossKind::kSquareSquare),
                   0.25 + (1.0 - 0.9) * (1.0 - 0.9));
  EXPECT_DOUBLE_EQ(loss(EbmLossKind::kPerceptron), 0.0);  // correct is min
  const double z =
      std::exp(-2.0 * 0.5) + std::exp(-2.0 * 0.9) + std::exp(-2.0 * 2.0);
  EXPECT_NEAR(loss(EbmLossKind::kNll), 0.5 + std::log(z) / 2.0, 1e-12);
  // NLL is the cross-entropy of softmax(-beta E) at the correct answer,
  // divided by beta.
  EXPECT_NEAR(loss(EbmLossKind::kNll),
              -std::log(std::exp(-2.0 * 0.5) / z) / 2.0, 1e-12);
}

TEST(Loss, EbmNllApproachesPerceptronAsBetaGrows) {
  RowMatrix e(2, 4);
  e << 1.0, 0.2, 0.7, 3.0,  //
      0.4, 0.9, 1.5, 2.0;
  EbmOptions o;
  o.beta = 20;
  const double perceptron =
      EbmLoss(e, {0, 0}, EbmLossKind::kPerceptron, o)->output[0];
  const double nll = EbmLoss(e, {0, 0}, EbmLossKind::kNll, o)->output[0];
  EXPECT_NEAR(perceptron, (0.8 + 0.0) / 2, 1e-12);
  EXPECT_NEAR(nll, perceptron, 1e-2);
  EXPECT_GT(nll, perceptron);  // log-sum-exp is above the min
}

TEST(Loss, EbmHingePassesGradientAtTheKinkLikeClampMin) {
  RowMatrix e(1, 2);
  e << 0.5, 1.5;  // m + E(c) - E(ybar) == 0 exactly
  EbmOptions o;
  o.margin = 1.0;
  absl::StatusOr<LossResult> r = EbmLoss(e, {0}, EbmLossKind::kHinge, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output[0], 0.0);
  EXPECT_EQ(r->grads[0](0, 0), 1.0);
  EXPECT_EQ(r->grads[0](0, 1), -1.0);
}

TEST(Loss, GeneralMarginGradientsMatchFiniteDifferences) {
  const RowMatrix e = RandomEnergies(4, 5, 7);
  const RowMatrix cost = RandomEnergies(4, 5, 8) * 0.5;
  const std::vector<int> correct = {1, 0, 4, 2};
  for (HingeFunction h : {HingeFunction::kHinge, HingeFunction::kSoftHinge,
                          HingeFunction::kSquaredHinge}) {
    SCOPED_TRACE(static_cast<int>(h));
    // No hinge argument within 1e-3 of zero.
    for (int i = 0; i < 4; ++i) {
      for (int y = 0; y < 5; ++y) {
        if (y == correct[i]) continue;
        ASSERT_GT(std::abs(e(i, correct[i]) - e(i, y) + cost(i, y)), 1e-3);
      }
    }
    absl::StatusOr<LossResult> r = GeneralMarginLoss(e, correct, cost, h);
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectGradientMatchesFiniteDifferences(
        e, r->grads[0], [&](const RowMatrix& x) {
          return GeneralMarginLoss(x, correct, cost, h)->output[0];
        });
  }
}

TEST(Loss, GeneralMarginWithOneIncorrectAnswerIsTheHinge) {
  RowMatrix e(1, 2);
  e << 0.3, 0.8;
  RowMatrix cost(1, 2);
  cost << 0.0, 1.0;  // C(Y, y) = m
  EbmOptions o;
  o.margin = 1.0;
  EXPECT_DOUBLE_EQ(
      GeneralMarginLoss(e, {0}, cost, HingeFunction::kHinge)->output[0],
      EbmLoss(e, {0}, EbmLossKind::kHinge, o)->output[0]);
  EXPECT_DOUBLE_EQ(
      GeneralMarginLoss(e, {0}, cost, HingeFunction::kSoftHinge)->output[0],
      std::log1p(std::exp(0.3 - 0.8 + 1.0)));
}

TEST(Loss, EbmRejectsBadArguments) {
  RowMatrix e = RandomEnergies(2, 3, 1);
  EXPECT_EQ(EbmLoss(e, {0}, EbmLossKind::kHinge).status().code(),
            absl::StatusCode::kInvalidArgument);  // 1 correct for 2 samples
  EXPECT_EQ(EbmLoss(e, {0, 3}, EbmLossKind::kHinge).status().code(),
            absl::StatusCode::kInvalidArgument);  // index out of range
  EbmOptions bad_beta;
  bad_beta.beta = 0;
  EXPECT_EQ(EbmLoss(e, {0, 1}, EbmLossKind::kNll, bad_beta).status().code(),
            absl::StatusCode::kInvalidArgument);
  RowMatrix one(2, 1);
  one << 1, 2;
  EXPECT_EQ(EbmLoss(one, {0, 0}, EbmLossKind::kHinge).status().code(),
            absl::StatusCode::kInvalidArgument);  // no incorrect answer
  EXPECT_TRUE(EbmLoss(one, {0, 0}, EbmLossKind::kEnergy).ok());
  EXPECT_EQ(GeneralMarginLoss(e, {0, 1}, RowMatrix(1, 3), HingeFunction::kHinge)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);  // cost shape
}

}  // namespace
}  // namespace embedsearch
