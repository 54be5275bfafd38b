// ClassEnergyLoss: the NLL against a softmax over scaled cosines computed
// independently, gradients (embeddings and class vectors, through the
// normalization) by central finite differences, and argument errors.
#include "core/loss/class_energy_loss.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace embedsearch {
namespace {

constexpr int kN = 6, kDim = 5, kClasses = 4;

struct Problem {
  std::vector<float> x;       // unit-norm rows, as the encoder outputs
  std::vector<float> w;       // unnormalized class vectors
  std::vector<int32_t> labels;
};

Problem RandomProblem(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  Problem p;
  p.x.resize(kN * kDim);
  p.w.resize(kClasses * kDim);
  for (float& v : p.w) v = 2.0f * g(rng);
  for (int i = 0; i < kN; ++i) {
    double s = 0;
    for (int j = 0; j < kDim; ++j) {
      p.x[i * kDim + j] = g(rng);
      s += double(p.x[i * kDim + j]) * p.x[i * kDim + j];
    }
    for (int j = 0; j < kDim; ++j) p.x[i * kDim + j] /= std::sqrt(s);
    p.labels.push_back(static_cast<int32_t>(i % kClasses));
  }
  return p;
}

double Loss(const Problem& p, EbmLossKind kind, const EbmOptions& o) {
  auto r = ClassEnergyLoss(p.x.data(), kN, kDim, p.labels.data(), p.w.data(),
                           kClasses, kind, o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->loss : 0;
}

// The EBM NLL is (1/beta) times the cross-entropy of softmax(-beta E), and
// -beta E = 2 beta cos - 2 beta: a cosine classifier with scale 2 beta.
TEST(ClassEnergyLoss, NllIsSoftmaxCrossEntropyOverScaledCosines) {
  const Problem p = RandomProblem(1);
  EbmOptions o;
  o.beta = 8;
  double expected = 0;
  for (int i = 0; i < kN; ++i) {
    std::vector<double> logit(kClasses);
    for (int c = 0; c < kClasses; ++c) {
      double dot = 0, ww = 0;
      for (int j = 0; j < kDim; ++j) {
        dot += double(p.x[i * kDim + j]) * p.w[c * kDim + j];
        ww += double(p.w[c * kDim + j]) * p.w[c * kDim + j];
      }
      logit[c] = 2 * o.beta * dot / std::sqrt(ww);
    }
    double z = 0;
    for (double l : logit) z += std::exp(l);
    expected += -(logit[p.labels[i]] - std::log(z)) / kN / o.beta;
  }
  EXPECT_NEAR(Loss(p, EbmLossKind::kNll, o), expected, 1e-9);
}

// Central differences in float inputs (the API's type): step 1e-3, so the
// tolerance allows for the second-order term.
void ExpectGradientsMatch(EbmLossKind kind, const EbmOptions& o, uint64_t seed) {
  Problem p = RandomProblem(seed);
  auto r = ClassEnergyLoss(p.x.data(), kN, kDim, p.labels.data(), p.w.data(),
                           kClasses, kind, o);
  ASSERT_TRUE(r.ok()) << r.status();
  constexpr float h = 1e-3f;
  for (std::vector<float>* v : {&p.x, &p.w}) {
    const std::vector<float>& analytic =
        v == &p.x ? r->grad_embeddings : r->grad_prototypes;
    ASSERT_EQ(analytic.size(), v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      const float keep = (*v)[i];
      (*v)[i] = keep + h;
      const double plus = Loss(p, kind, o);
      (*v)[i] = keep - h;
      const double minus = Loss(p, kind, o);
      (*v)[i] = keep;
      const double numeric = (plus - minus) / (2.0 * double(h));
      EXPECT_NEAR(analytic[i], numeric, 2e-3 * std::max(1.0, std::abs(numeric)))
          << (v == &p.x ? "embedding" : "class vector") << " entry " << i;
    }
  }
}

TEST(ClassEnergyLoss, GradientsMatchFiniteDifferences) {
  EbmOptions o;
  o.beta = 4;
  o.margin = 5;  // above every energy gap (energies lie in [0, 4]): no kinks
  ExpectGradientsMatch(EbmLossKind::kNll, o, 2);
  ExpectGradientsMatch(EbmLossKind::kLog, o, 3);
  ExpectGradientsMatch(EbmLossKind::kHinge, o, 4);
  ExpectGradientsMatch(EbmLossKind::kSquareSquare, o, 5);
}

TEST(ClassEnergyLoss, ClassVectorGradientIsOrthogonalToTheVector) {
  // The energy sees only the direction of w_c, so scaling w_c changes
  // nothing and the gradient has no component along w_c.
  const Problem p = RandomProblem(6);
  auto r = ClassEnergyLoss(p.x.data(), kN, kDim, p.labels.data(), p.w.data(),
                           kClasses, EbmLossKind::kNll, EbmOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  for (int c = 0; c < kClasses; ++c) {
    double along = 0, size = 0;
    for (int j = 0; j < kDim; ++j) {
      along += double(r->grad_prototypes[c * kDim + j]) * p.w[c * kDim + j];
      size += std::abs(r->grad_prototypes[c * kDim + j]);
    }
    EXPECT_GT(size, 1e-6) << "class " << c;
    EXPECT_NEAR(along, 0.0, 1e-6) << "class " << c;
  }
}

TEST(ClassEnergyLoss, CountsImagesClosestToTheirOwnClass) {
  Problem p = RandomProblem(7);
  // Put every image exactly on its own class vector's direction.
  for (int i = 0; i < kN; ++i) {
    const int c = p.labels[i];
    double s = 0;
    for (int j = 0; j < kDim; ++j) s += double(p.w[c * kDim + j]) * p.w[c * kDim + j];
    for (int j = 0; j < kDim; ++j) p.x[i * kDim + j] = p.w[c * kDim + j] / std::sqrt(s);
  }
  auto r = ClassEnergyLoss(p.x.data(), kN, kDim, p.labels.data(), p.w.data(),
                           kClasses, EbmLossKind::kHinge, EbmOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->correct, kN);
  EXPECT_NEAR(r->mean_positive_energy, 0.0, 1e-9);
  EXPECT_GT(r->mean_negative_energy, 0.0);
}

TEST(ClassEnergyLoss, RejectsBadArguments) {
  Problem p = RandomProblem(8);
  const auto call = [&](int n, int classes, const EbmOptions& o) {
    return ClassEnergyLoss(p.x.data(), n, kDim, p.labels.data(), p.w.data(),
                           classes, EbmLossKind::kNll, o)
        .status();
  };
  EXPECT_EQ(call(0, kClasses, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(call(kN, 1, {}).code(), absl::StatusCode::kInvalidArgument);
  EbmOptions bad_beta;
  bad_beta.beta = 0;
  EXPECT_EQ(call(kN, kClasses, bad_beta).code(), absl::StatusCode::kInvalidArgument);
  // Label 3 exists in the problem; with 3 classes it is out of range.
  absl::Status s = call(kN, 3, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("label 3"), std::string::npos) << s;
  std::fill(p.w.begin(), p.w.begin() + kDim, 0.0f);
  s = call(kN, kClasses, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("class vector 0"), std::string::npos) << s;
}

}  // namespace
}  // namespace embedsearch
