// ComputeEmbeddingLoss (the trainer's API) and mining: gradients by central
// finite differences for every kind x mining, agreement with the
// PyTorch-parity losses it is built on, mining picks, and argument errors.
#include "core/loss/embedding_loss.h"

#include <cmath>
#include <random>
#include <vector>

#include "core/loss/elementwise_losses.h"
#include "core/loss/mining.h"
#include "core/loss/pairwise_losses.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

struct Batch {
  int n, dim;
  std::vector<double> x;
  std::vector<int32_t> labels;
};

// 3 classes x 3 samples, dim 4, class means apart but overlapping so every
// loss has active and inactive terms.
Batch RandomBatch(uint64_t seed) {
  Batch b{9, 4, {}, {}};
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int i = 0; i < b.n; ++i) {
    b.labels.push_back(i % 3);
    for (int k = 0; k < b.dim; ++k) {
      b.x.push_back(normal(rng) + (k == i % 3 ? 1.0 : 0.0));
    }
  }
  return b;
}

double Loss(const Batch& b, const std::vector<double>& x,
            const EmbeddingLossOptions& o) {
  std::vector<double> grad;
  return ComputeEmbeddingLossDouble(x.data(), b.n, b.dim, b.labels.data(), o,
                                    &grad)
      ->loss;
}

const EmbeddingLossKind kKinds[] = {EmbeddingLossKind::kTriplet,
                                    EmbeddingLossKind::kCosine,
                                    EmbeddingLossKind::kHingeEmbedding,
                                    EmbeddingLossKind::kMarginHinge,
                                    EmbeddingLossKind::kMarginLog,
                                    EmbeddingLossKind::kMarginSquareSquare,
                                    EmbeddingLossKind::kNll,
                                    EmbeddingLossKind::kEnergy,
                                    EmbeddingLossKind::kPerceptron,
                                    EmbeddingLossKind::kGeneralHinge};
const Mining kMinings[] = {Mining::kAll, Mining::kBatchHard, Mining::kSemiHard};

// Margins that put the kink of each kind among the batch's distances.
double MarginFor(EmbeddingLossKind kind) {
  switch (kind) {
    case EmbeddingLossKind::kCosine:
      return 0.1;
    case EmbeddingLossKind::kHingeEmbedding:
    case EmbeddingLossKind::kMarginSquareSquare:
      return 2.0;
    default:
      return 0.7;
  }
}

// Central differences (h = 1e-6) against the analytic gradient. The inputs
// are random continuous values, so with probability ~1 no hinge and no
// mining decision lies within h of a switch; the test also requires the
// loss to agree at h and h/2 (a kink inside the stencil would break that).
void CheckGradient(const Batch& b, const EmbeddingLossOptions& o) {
  std::vector<double> grad;
  absl::StatusOr<EmbeddingLossResult> r = ComputeEmbeddingLossDouble(
      b.x.data(), b.n, b.dim, b.labels.data(), o, &grad);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->total, 0);
  EXPECT_GT(r->active, 0);  // a zero gradient would check nothing
  ASSERT_EQ(grad.size(), b.x.size());
  for (size_t i = 0; i < b.x.size(); ++i) {
    auto fd = [&](double h) {
      std::vector<double> plus = b.x, minus = b.x;
      plus[i] += h;
      minus[i] -= h;
      return (Loss(b, plus, o) - Loss(b, minus, o)) / (2 * h);
    };
    const double numeric = fd(1e-6);
    ASSERT_NEAR(numeric, fd(5e-7), 1e-5 * std::max(1.0, std::abs(numeric)))
        << "a kink lies inside the stencil at coordinate " << i;
    EXPECT_NEAR(grad[i], numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
        << "coordinate " << i;
  }
}

TEST(Loss, EmbeddingGradientsMatchFiniteDifferencesForEveryKindAndMining) {
  const Batch b = RandomBatch(2024);
  for (EmbeddingLossKind kind : kKinds) {
    for (Mining mining : kMinings) {
      SCOPED_TRACE(std::string(EmbeddingLossKindName(kind)) + "/" +
                   std::string(MiningName(mining)));
      EmbeddingLossOptions o;
      o.kind = kind;
      o.mining = mining;
      o.margin = MarginFor(kind);
      o.beta = 1.5;
      CheckGradient(b, o);
    }
  }
}

TEST(Loss, EmbeddingGradientsMatchFiniteDifferencesWithOptions) {
  const Batch b = RandomBatch(77);
  for (Mining mining : kMinings) {
    SCOPED_TRACE(std::string(MiningName(mining)));
    EmbeddingLossOptions o;
    o.mining = mining;
    o.margin = 1.0;
    o.swap = true;
    CheckGradient(b, o);
    o.swap = false;
    o.p = 3;
    CheckGradient(b, o);
    o.p = 1.5;
    CheckGradient(b, o);
    o.p = 2;
    o.average_over_active = false;
    CheckGradient(b, o);
    for (EmbeddingLossKind kind :
         {EmbeddingLossKind::kMarginHinge, EmbeddingLossKind::kMarginLog,
          EmbeddingLossKind::kMarginSquareSquare, EmbeddingLossKind::kNll}) {
      o.kind = kind;
      o.squared_energy = true;
      o.margin = 3.0;
      CheckGradient(b, o);
    }
  }
}

TEST(Loss, EmbeddingFloatApiMatchesDoubleApi) {
  const Batch b = RandomBatch(5);
  std::vector<float> xf(b.x.begin(), b.x.end());
  std::vector<double> xd(xf.begin(), xf.end());
  for (EmbeddingLossKind kind : kKinds) {
    EmbeddingLossOptions o;
    o.kind = kind;
    o.margin = MarginFor(kind);
    absl::StatusOr<EmbeddingLossResult> rf =
        ComputeEmbeddingLoss(xf.data(), b.n, b.dim, b.labels.data(), o);
    std::vector<double> gd;
    absl::StatusOr<EmbeddingLossResult> rd = ComputeEmbeddingLossDouble(
        xd.data(), b.n, b.dim, b.labels.data(), o, &gd);
    ASSERT_TRUE(rf.ok() && rd.ok());
    EXPECT_DOUBLE_EQ(rf->loss, rd->loss);
    EXPECT_EQ(rf->active, rd->active);
    ASSERT_EQ(rf->grad.size(), gd.size());
    for (size_t i = 0; i < gd.size(); ++i) {
      EXPECT_EQ(rf->grad[i], static_cast<float>(gd[i]));
    }
  }
}

RowMatrix Rows(const Batch& b, const std::vector<int>& idx) {
  RowMatrix m(idx.size(), b.dim);
  for (size_t r = 0; r < idx.size(); ++r) {
    for (int k = 0; k < b.dim; ++k) m(r, k) = b.x[idx[r] * b.dim + k];
  }
  return m;
}

TEST(Loss, EmbeddingTripletAllEqualsPyTorchTripletMarginOverAllTriplets) {
  const Batch b = RandomBatch(11);
  std::vector<int> a, p, q;
  for (int i = 0; i < b.n; ++i) {
    for (int j = 0; j < b.n; ++j) {
      if (i == j || b.labels[i] != b.labels[j]) continue;
      for (int k = 0; k < b.n; ++k) {
        if (b.labels[k] == b.labels[i]) continue;
        a.push_back(i);
        p.push_back(j);
        q.push_back(k);
      }
    }
  }
  for (bool swap : {false, true}) {
    TripletMarginOptions t;
    t.margin = 0.7;
    t.swap = swap;
    t.reduction = Reduction::kSum;
    absl::StatusOr<LossResult> ref =
        TripletMarginLoss(Rows(b, a), Rows(b, p), Rows(b, q), t);
    ASSERT_TRUE(ref.ok());
    EmbeddingLossOptions o;
    o.margin = 0.7;
    o.swap = swap;
    o.average_over_active = false;
    std::vector<double> grad;
    absl::StatusOr<EmbeddingLossResult> r = ComputeEmbeddingLossDouble(
        b.x.data(), b.n, b.dim, b.labels.data(), o, &grad);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->total, static_cast<int64_t>(a.size()));  // 9 * 2 * 6
    EXPECT_NEAR(r->loss, ref->output[0] / double(a.size()), 1e-12);
    // Batch-all: the same sum over the active triplets only.
    o.average_over_active = true;
    r = ComputeEmbeddingLossDouble(b.x.data(), b.n, b.dim, b.labels.data(), o,
                                   &grad);
    ASSERT_TRUE(r.ok());
    ASSERT_GT(r->active, 0);
    ASSERT_LT(r->active, r->total);
    EXPECT_NEAR(r->loss, ref->output[0] / double(r->active), 1e-12);
  }
}

TEST(Loss, EmbeddingGeneralHingeSumsTheTripletHingeOverAllNegatives) {
  // Balanced batch: every anchor has 6 negatives, so the mean over (a, p) of
  // the sum over negatives is 6 x the mean over all triplets.
  const Batch b = RandomBatch(13);
  EmbeddingLossOptions o;
  o.margin = 0.7;
  o.average_over_active = false;
  std::vector<double> grad;
  const double triplet_mean =
      ComputeEmbeddingLossDouble(b.x.data(), b.n, b.dim, b.labels.data(), o,
                                 &grad)
          ->loss;
  o.kind = EmbeddingLossKind::kGeneralHinge;
  absl::StatusOr<EmbeddingLossResult> r = ComputeEmbeddingLossDouble(
      b.x.data(), b.n, b.dim, b.labels.data(), o, &grad);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->total, 9 * 2);
  EXPECT_GT(triplet_mean, 0);
  EXPECT_NEAR(r->loss, 6 * triplet_mean, 1e-12);
}

TEST(Loss, EmbeddingCosineAndHingeAllEqualPyTorchLossesOverAllPairs) {
  const Batch b = RandomBatch(12);
  std::vector<int> i1, i2;
  std::vector<double> target;
  for (int i = 0; i < b.n; ++i) {
    for (int j = i + 1; j < b.n; ++j) {
      i1.push_back(i);
      i2.push_back(j);
      target.push_back(b.labels[i] == b.labels[j] ? 1 : -1);
    }
  }
  Eigen::VectorXd y = Eigen::Map<Eigen::VectorXd>(target.data(), target.size());
  CosineEmbeddingOptions c;
  c.margin = 0.1;
  const double cos_ref =
      CosineEmbeddingLoss(Rows(b, i1), Rows(b, i2), y, c)->output[0];
  EmbeddingLossOptions o;
  o.kind = EmbeddingLossKind::kCosine;
  o.margin = 0.1;
  std::vector<double> grad;
  EXPECT_NEAR(ComputeEmbeddingLossDouble(b.x.data(), b.n, b.dim,
                                         b.labels.data(), o, &grad)
                  ->loss,
              cos_ref, 1e-12);

  // HingeEmbeddingLoss on pairwise_distance(x_i, x_j).
  RowMatrix d(1, i1.size());
  const RowMatrix r1 = Rows(b, i1), r2 = Rows(b, i2);
  for (size_t k = 0; k < i1.size(); ++k) {
    d(0, k) = ((r1.row(k) - r2.row(k)).array() + 1e-6).matrix().norm();
  }
  const double hinge_ref =
      HingeEmbeddingLoss(d, y.transpose(), 2.0, Reduction::kMean)->output[0];
  o.kind = EmbeddingLossKind::kHingeEmbedding;
  o.margin = 2.0;
  EXPECT_NEAR(ComputeEmbeddingLossDouble(b.x.data(), b.n, b.dim,
                                         b.labels.data(), o, &grad)
                  ->loss,
              hinge_ref, 1e-12);
}

// Points on a line: labels 0 at 0, 1, 3; labels 1 at 1.5, 2.5, 6.
const std::vector<double> kLine = {0, 1, 3, 1.5, 2.5, 6};
const std::vector<int32_t> kLineLabels = {0, 0, 0, 1, 1, 1};

RowMatrix LineDistances() {
  RowMatrix d(6, 6);
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 6; ++j) d(i, j) = std::abs(kLine[i] - kLine[j]);
  }
  return d;
}

TEST(Loss, MiningAllEnumeratesEveryValidTriplet) {
  const std::vector<Triplet> t =
      MineTriplets(LineDistances(), kLineLabels.data(), Mining::kAll);
  EXPECT_EQ(t.size(), 6u * 2 * 3);
  for (const Triplet& x : t) {
    EXPECT_NE(x.anchor, x.positive);
    EXPECT_EQ(kLineLabels[x.anchor], kLineLabels[x.positive]);
    EXPECT_NE(kLineLabels[x.anchor], kLineLabels[x.negative]);
  }
}

TEST(Loss, MiningBatchHardPicksFarthestPositiveAndClosestNegative) {
  const std::vector<Triplet> t =
      MineTriplets(LineDistances(), kLineLabels.data(), Mining::kBatchHard);
  ASSERT_EQ(t.size(), 6u);
  // Anchor 0 (at 0): positives 1 (d 1), 2 (d 3) -> 2; negatives at 1.5, 2.5,
  // 6 -> 3.
  EXPECT_EQ(t[0].positive, 2);
  EXPECT_EQ(t[0].negative, 3);
  // Anchor 4 (at 2.5): positives 3 (d 1), 5 (d 3.5) -> 5; negatives 0 (2.5),
  // 1 (1.5), 2 (0.5) -> 2.
  EXPECT_EQ(t[4].positive, 5);
  EXPECT_EQ(t[4].negative, 2);
}

TEST(Loss, MiningSemiHardPicksClosestNegativeFartherThanThePositive) {
  const std::vector<Triplet> t =
      MineTriplets(LineDistances(), kLineLabels.data(), Mining::kSemiHard);
  ASSERT_EQ(t.size(), 6u * 2);
  // (0, 1): d = 1; negatives at 1.5, 2.5, 6 -> the closest beyond 1 is 3.
  EXPECT_EQ(t[0].anchor, 0);
  EXPECT_EQ(t[0].positive, 1);
  EXPECT_EQ(t[0].negative, 3);
  // (0, 2): d = 3; negatives beyond 3: only 5 (6).
  EXPECT_EQ(t[1].positive, 2);
  EXPECT_EQ(t[1].negative, 5);
  // (4, 5): d = 3.5 from 2.5; negatives at 2.5, 1.5, 0.5: none beyond ->
  // the farthest, 0.
  const Triplet& last = t.back();
  EXPECT_EQ(last.anchor, 5);
  const Triplet& x = t[2 * 4 + 1];
  EXPECT_EQ(x.anchor, 4);
  EXPECT_EQ(x.positive, 5);
  EXPECT_EQ(x.negative, 0);
}

TEST(Loss, PairsCoverTheBatchWithPlusMinusOneTargets) {
  const std::vector<LabeledPair> pairs = AllPairs(kLineLabels.data(), 6);
  ASSERT_EQ(pairs.size(), 15u);
  int positives = 0;
  for (const LabeledPair& p : pairs) {
    EXPECT_LT(p.first, p.second);
    EXPECT_EQ(p.target,
              kLineLabels[p.first] == kLineLabels[p.second] ? 1.0 : -1.0);
    positives += p.target > 0;
  }
  EXPECT_EQ(positives, 6);
  const std::vector<LabeledPair> from =
      PairsFromTriplets({{0, 2, 3}, {4, 5, 2}});
  ASSERT_EQ(from.size(), 4u);
  EXPECT_EQ(from[1].second, 3);
  EXPECT_EQ(from[1].target, -1.0);
}

TEST(Loss, EmbeddingBatchHardReportsDistancesAndActiveCount) {
  std::vector<float> x(kLine.begin(), kLine.end());
  EmbeddingLossOptions o;
  o.mining = Mining::kBatchHard;
  o.margin = 0.5;
  o.eps = 0;
  absl::StatusOr<EmbeddingLossResult> r =
      ComputeEmbeddingLoss(x.data(), 6, 1, kLineLabels.data(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total, 6);
  // Per anchor (hardest positive, closest negative):
  // 0:(3,1.5) 1:(2,0.5) 2:(3,0.5) 3:(4.5,0.5) 4:(3.5,0.5) 5:(4.5,3).
  const double dp[] = {3, 2, 3, 4.5, 3.5, 4.5};
  const double dn[] = {1.5, 0.5, 0.5, 0.5, 0.5, 3};
  double loss = 0, sp = 0, sn = 0;
  for (int i = 0; i < 6; ++i) {
    loss += std::max(0.0, 0.5 + dp[i] - dn[i]);
    sp += dp[i];
    sn += dn[i];
  }
  EXPECT_NEAR(r->loss, loss / 6, 1e-6);
  EXPECT_EQ(r->active, 6);
  EXPECT_NEAR(r->mean_positive_distance, sp / 6, 1e-6);
  EXPECT_NEAR(r->mean_negative_distance, sn / 6, 1e-6);
  ASSERT_EQ(r->grad.size(), 6u);
}

TEST(Loss, EmbeddingWellSeparatedBatchHasNoActiveTriplets) {
  std::vector<float> x = {0, 0.1f, 0.2f, 10, 10.1f, 10.2f};
  EmbeddingLossOptions o;  // triplet, batch-all
  absl::StatusOr<EmbeddingLossResult> r =
      ComputeEmbeddingLoss(x.data(), 6, 1, kLineLabels.data(), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->active, 0);
  EXPECT_EQ(r->total, 36);
  EXPECT_EQ(r->loss, 0.0);
  for (float g : r->grad) EXPECT_EQ(g, 0.0f);
}

TEST(Loss, EmbeddingGradientDescentLowersTheLoss) {
  // One step against the gradient must lower every kind's loss.
  const Batch b = RandomBatch(3);
  for (EmbeddingLossKind kind : kKinds) {
    SCOPED_TRACE(std::string(EmbeddingLossKindName(kind)));
    EmbeddingLossOptions o;
    o.kind = kind;
    o.margin = MarginFor(kind);
    std::vector<double> grad;
    const double before = ComputeEmbeddingLossDouble(b.x.data(), b.n, b.dim,
                                                     b.labels.data(), o, &grad)
                              ->loss;
    std::vector<double> x = b.x;
    for (size_t i = 0; i < x.size(); ++i) x[i] -= 1e-3 * grad[i];
    EXPECT_LT(Loss(b, x, o), before);
  }
}

TEST(Loss, EmbeddingRejectsInvalidBatchesAndOptions) {
  const std::vector<float> x = {0, 1, 2, 3};
  const std::vector<int32_t> distinct = {0, 1, 2, 3};
  const std::vector<int32_t> same = {5, 5, 5, 5};
  const std::vector<int32_t> ok_labels = {0, 0, 1, 1};
  EmbeddingLossOptions o;
  auto code = [](const absl::StatusOr<EmbeddingLossResult>& r) {
    return r.status().code();
  };
  EXPECT_TRUE(ComputeEmbeddingLoss(x.data(), 4, 1, ok_labels.data(), o).ok());
  absl::StatusOr<EmbeddingLossResult> r =
      ComputeEmbeddingLoss(x.data(), 4, 1, distinct.data(), o);
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("same label"), std::string::npos)
      << r.status();
  EXPECT_EQ(code(ComputeEmbeddingLoss(x.data(), 4, 1, same.data(), o)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(ComputeEmbeddingLoss(x.data(), 1, 4, ok_labels.data(), o)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(ComputeEmbeddingLoss(x.data(), 4, 0, ok_labels.data(), o)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(ComputeEmbeddingLoss(nullptr, 4, 1, ok_labels.data(), o)),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> nan_x = x;
  nan_x[2] = NAN;
  EXPECT_EQ(code(ComputeEmbeddingLoss(nan_x.data(), 4, 1, ok_labels.data(), o)),
            absl::StatusCode::kInvalidArgument);
  EmbeddingLossOptions bad = o;
  bad.p = 0.5;
  EXPECT_EQ(code(ComputeEmbeddingLoss(x.data(), 4, 1, ok_labels.data(), bad)),
            absl::StatusCode::kInvalidArgument);
  bad = o;
  bad.beta = 0;
  EXPECT_EQ(code(ComputeEmbeddingLoss(x.data(), 4, 1, ok_labels.data(), bad)),
            absl::StatusCode::kInvalidArgument);
  bad = o;
  bad.margin = INFINITY;
  EXPECT_EQ(code(ComputeEmbeddingLoss(x.data(), 4, 1, ok_labels.data(), bad)),
            absl::StatusCode::kInvalidArgument);
  // The energy loss needs positives only.
  EmbeddingLossOptions energy = o;
  energy.kind = EmbeddingLossKind::kEnergy;
  EXPECT_TRUE(ComputeEmbeddingLoss(x.data(), 4, 1, same.data(), energy).ok());
}

TEST(Loss, NamesParseAndRoundTrip) {
  for (EmbeddingLossKind kind : kKinds) {
    absl::StatusOr<EmbeddingLossKind> parsed =
        ParseEmbeddingLossKind(EmbeddingLossKindName(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(*ParseEmbeddingLossKind("hinge-embedding"),
            EmbeddingLossKind::kHingeEmbedding);
  EXPECT_EQ(*ParseEmbeddingLossKind("square-square"),
            EmbeddingLossKind::kMarginSquareSquare);
  EXPECT_EQ(ParseEmbeddingLossKind("contrastive").status().code(),
            absl::StatusCode::kInvalidArgument);
  for (Mining m : kMinings) EXPECT_EQ(*ParseMining(MiningName(m)), m);
  EXPECT_EQ(*ParseMining("batch-hard"), Mining::kBatchHard);
  EXPECT_EQ(ParseMining("hard").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseReduction("sum"), Reduction::kSum);
  EXPECT_EQ(ParseReduction("avg").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseKlReduction("batchmean"), KlReduction::kBatchMean);
}

}  // namespace
}  // namespace embedsearch
