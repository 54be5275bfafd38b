// Parity of core/loss with PyTorch 1.13: values and gradients against the
// fixtures of gen_fixtures.py (relative 1e-5, 1e-4 for CTC, with the small
// absolute floor of AllClose for entries near zero).
#include <functional>
#include <string>

#include "core/loss/ctc_loss.h"
#include "core/loss/elementwise_losses.h"
#include "core/loss/embedding_loss.h"
#include "core/loss/multilabel_margin_loss.h"
#include "core/loss/pairwise_losses.h"
#include "gtest/gtest.h"
#include "tests/loss/fixture.h"

namespace embedsearch {
namespace {

constexpr double kRtol = 1e-5;
constexpr double kCtcRtol = 1e-4;

void ExpectClose(const FixtureCase& c, const std::string& name,
                 const double* actual, int64_t n, double rtol) {
  const FixtureTensor& expected = c.T(name);
  ASSERT_EQ(n, static_cast<int64_t>(expected.values.size()))
      << c.name << ": size of " << name;
  std::string why;
  EXPECT_TRUE(AllClose(actual, expected.values.data(), n, rtol, &why))
      << c.name << ": " << name << ": " << why;
}

// Runs `fn` on every case of fixture `file` and compares the output and the
// gradients named in `grad_names` (in the order of LossResult::grads).
void CheckFixtures(
    const std::string& file, const std::vector<std::string>& grad_names,
    const std::function<absl::StatusOr<LossResult>(const FixtureCase&)>& fn,
    double rtol = kRtol) {
  absl::StatusOr<std::vector<FixtureCase>> cases = LoadFixtures(file);
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_FALSE(cases->empty());
  for (const FixtureCase& c : *cases) {
    absl::StatusOr<LossResult> r = fn(c);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status();
    ExpectClose(c, "out", r->output.data(), r->output.size(), rtol);
    ASSERT_EQ(r->grads.size(), grad_names.size()) << c.name;
    for (size_t k = 0; k < grad_names.size(); ++k) {
      ExpectClose(c, "grad_" + grad_names[k], r->grads[k].data(),
                  r->grads[k].size(), rtol);
    }
  }
}

Reduction Red(const FixtureCase& c) {
  return ParseReduction(c.Str("reduction")).value();
}

TEST(Loss, TripletMarginMatchesPyTorch) {
  CheckFixtures("triplet_margin", {"anchor", "positive", "negative"},
                [](const FixtureCase& c) {
                  TripletMarginOptions o;
                  o.margin = c.Num("margin");
                  o.p = c.Num("p");
                  o.eps = c.Num("eps");
                  o.swap = c.Num("swap") != 0;
                  o.reduction = Red(c);
                  return TripletMarginLoss(
                      c.T("anchor").Matrix(), c.T("positive").Matrix(),
                      c.T("negative").Matrix(), o, c.T("gout").Vector());
                });
}

TEST(Loss, CosineEmbeddingMatchesPyTorch) {
  CheckFixtures("cosine_embedding", {"x1", "x2"}, [](const FixtureCase& c) {
    CosineEmbeddingOptions o;
    o.margin = c.Num("margin");
    o.reduction = Red(c);
    return CosineEmbeddingLoss(c.T("x1").Matrix(), c.T("x2").Matrix(),
                               c.T("target").Vector(), o, c.T("gout").Vector());
  });
}

TEST(Loss, HingeEmbeddingMatchesPyTorch) {
  CheckFixtures("hinge_embedding", {"x"}, [](const FixtureCase& c) {
    return HingeEmbeddingLoss(c.T("x").Matrix(), c.T("target").Matrix(),
                              c.Num("margin"), Red(c), c.T("gout").Vector());
  });
}

TEST(Loss, MarginRankingMatchesPyTorch) {
  CheckFixtures("margin_ranking", {"x1", "x2"}, [](const FixtureCase& c) {
    return MarginRankingLoss(c.T("x1").Matrix(), c.T("x2").Matrix(),
                             c.T("target").Matrix(), c.Num("margin"), Red(c),
                             c.T("gout").Vector());
  });
}

TEST(Loss, SoftMarginMatchesPyTorch) {
  CheckFixtures("soft_margin", {"x"}, [](const FixtureCase& c) {
    return SoftMarginLoss(c.T("x").Matrix(), c.T("target").Matrix(), Red(c),
                          c.T("gout").Vector());
  });
}

TEST(Loss, MultiLabelMarginMatchesPyTorch) {
  CheckFixtures("multilabel_margin", {"x"}, [](const FixtureCase& c) {
    return MultiLabelMarginLoss(c.T("x").Matrix(), c.T("target").Ints(), Red(c),
                                c.T("gout").Vector());
  });
}

TEST(Loss, BceMatchesPyTorch) {
  CheckFixtures("bce", {"x"}, [](const FixtureCase& c) {
    RowMatrix weight = c.Has("weight") ? c.T("weight").Matrix() : RowMatrix();
    return BceLoss(c.T("x").Matrix(), c.T("target").Matrix(), weight, Red(c),
                   c.T("gout").Vector());
  });
}

TEST(Loss, BceWithLogitsMatchesPyTorch) {
  CheckFixtures("bce_with_logits", {"x"}, [](const FixtureCase& c) {
    RowMatrix weight = c.Has("weight") ? c.T("weight").Matrix() : RowMatrix();
    RowMatrix pw =
        c.Has("pos_weight") ? c.T("pos_weight").Matrix() : RowMatrix();
    return BceWithLogitsLoss(c.T("x").Matrix(), c.T("target").Matrix(), weight,
                             pw, Red(c), c.T("gout").Vector());
  });
}

TEST(Loss, KlDivMatchesPyTorch) {
  CheckFixtures("kl_div", {"x"}, [](const FixtureCase& c) {
    return KlDivLoss(c.T("x").Matrix(), c.T("target").Matrix(),
                     ParseKlReduction(c.Str("reduction")).value(),
                     c.Num("log_target") != 0, c.T("gout").Vector());
  });
}

TEST(Loss, CtcMatchesPyTorch) {
  CheckFixtures(
      "ctc", {"log_probs"},
      [](const FixtureCase& c) {
        const FixtureTensor& lp = c.T("log_probs");
        CtcTargets targets;
        targets.labels = c.T("targets").Ints();
        targets.padded_width =
            c.Num("padded") != 0 ? c.T("targets").shape[1] : 0;
        targets.lengths = c.T("target_lengths").Ints();
        CtcOptions o;
        o.blank = static_cast<int64_t>(c.Num("blank"));
        o.reduction = Red(c);
        o.zero_infinity = c.Num("zero_infinity") != 0;
        return CtcLoss(lp.Matrix(), lp.shape[0], targets,
                       c.T("input_lengths").Ints(), o, c.T("gout").Vector());
      },
      kCtcRtol);
}

// ComputeEmbeddingLoss against a torch re-implementation with autograd
// (mining included), for every kind with kAll and the triplet / margin kinds
// with every mining.
TEST(Loss, EmbeddingLossMatchesTorchReimplementation) {
  absl::StatusOr<std::vector<FixtureCase>> cases = LoadFixtures("embedding");
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_FALSE(cases->empty());
  for (const FixtureCase& c : *cases) {
    const FixtureTensor& x = c.T("x");
    std::vector<int32_t> labels;
    for (int64_t l : c.T("labels").Ints())
      labels.push_back(static_cast<int32_t>(l));
    EmbeddingLossOptions o;
    o.kind = ParseEmbeddingLossKind(c.Str("kind")).value();
    o.mining = ParseMining(c.Str("mining")).value();
    o.margin = c.Num("margin");
    o.p = c.Num("p");
    o.swap = c.Num("swap") != 0;
    o.beta = c.Num("beta");
    o.average_over_active = c.Num("average_over_active") != 0;
    std::vector<double> grad;
    absl::StatusOr<EmbeddingLossResult> r = ComputeEmbeddingLossDouble(
        x.values.data(), static_cast<int>(x.shape[0]),
        static_cast<int>(x.shape[1]), labels.data(), o, &grad);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status();
    ExpectClose(c, "out", &r->loss, 1, kRtol);
    ExpectClose(c, "grad_x", grad.data(), static_cast<int64_t>(grad.size()),
                kRtol);
  }
}

}  // namespace
}  // namespace embedsearch
