// Invalid shapes and targets give InvalidArgument with a message naming the
// problem, never undefined behaviour.
#include <string>

#include "core/loss/ctc_loss.h"
#include "core/loss/elementwise_losses.h"
#include "core/loss/multilabel_margin_loss.h"
#include "core/loss/pairwise_losses.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

void ExpectInvalid(const absl::StatusOr<LossResult>& r,
                   const std::string& fragment) {
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
      << r.status();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos)
      << "message '" << r.status().message() << "' lacks '" << fragment << "'";
}

TEST(Loss, PairwiseLossesRejectBadShapes) {
  const RowMatrix a = RowMatrix::Ones(3, 4);
  ExpectInvalid(TripletMarginLoss(a, a, RowMatrix::Ones(3, 5), {}),
                "same shape");
  ExpectInvalid(TripletMarginLoss(RowMatrix(), RowMatrix(), RowMatrix(), {}),
                "at least one row");
  TripletMarginOptions p0;
  p0.p = 0.5;
  ExpectInvalid(TripletMarginLoss(a, a, a, p0), "p must be");
  ExpectInvalid(TripletMarginLoss(a, a, a, {}, Eigen::VectorXd::Ones(2)),
                "grad_output");
  ExpectInvalid(CosineEmbeddingLoss(a, a, Eigen::VectorXd::Ones(2), {}),
                "target has 2");
  ExpectInvalid(CosineEmbeddingLoss(a, RowMatrix::Ones(2, 4),
                                    Eigen::VectorXd::Ones(3), {}),
                "same shape");
}

TEST(Loss, ElementwiseLossesRejectBadShapesAndProbabilities) {
  const RowMatrix x = RowMatrix::Constant(2, 3, 0.5);
  const RowMatrix y = RowMatrix::Ones(2, 3);
  ExpectInvalid(
      HingeEmbeddingLoss(x, RowMatrix::Ones(3, 2), 1.0, Reduction::kMean),
      "same shape");
  ExpectInvalid(
      MarginRankingLoss(x, RowMatrix::Ones(2, 2), y, 0.0, Reduction::kMean),
      "same shape");
  ExpectInvalid(SoftMarginLoss(RowMatrix(), RowMatrix(), Reduction::kMean),
                "empty");
  RowMatrix bad = x;
  bad(1, 2) = 1.5;
  ExpectInvalid(BceLoss(bad, y, RowMatrix(), Reduction::kMean), "[0, 1]");
  ExpectInvalid(BceLoss(x, y, RowMatrix::Ones(1, 2), Reduction::kMean),
                "weight");
  ExpectInvalid(BceWithLogitsLoss(x, y, RowMatrix(), RowMatrix::Ones(2, 3),
                                  Reduction::kMean),
                "pos_weight");
  ExpectInvalid(
      KlDivLoss(x, RowMatrix::Ones(2, 4), KlReduction::kBatchMean, false),
      "same shape");
  EXPECT_EQ(ParseKlReduction("batch").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Loss, MultiLabelMarginRejectsTargetsOutsideTheClasses) {
  const RowMatrix x = RowMatrix::Zero(2, 3);
  ExpectInvalid(MultiLabelMarginLoss(x, {0, 3, -1, 1, -1, 0}, Reduction::kMean),
                "must be in [0, 3)");
  ExpectInvalid(
      MultiLabelMarginLoss(x, {0, -2, -1, 1, -1, 0}, Reduction::kMean), "-2");
  ExpectInvalid(MultiLabelMarginLoss(x, {0, 1}, Reduction::kMean),
                "target has 2");
}

TEST(Loss, CtcRejectsBadLengthsAndLabels) {
  // T = 4, N = 2, C = 3.
  const RowMatrix lp = RowMatrix::Constant(8, 3, std::log(1.0 / 3));
  CtcTargets t;
  t.labels = {1, 2, 1, 1};
  t.padded_width = 2;
  t.lengths = {2, 2};
  EXPECT_TRUE(CtcLoss(lp, 4, t, {4, 3}, {}).ok());
  ExpectInvalid(CtcLoss(lp, 3, t, {3, 3}, {}), "not (T=3)");
  ExpectInvalid(CtcLoss(lp, 4, t, {5, 3}, {}), "input_lengths[0]");
  ExpectInvalid(CtcLoss(lp, 4, t, {4, 0}, {}), "input_lengths[1]");
  ExpectInvalid(CtcLoss(lp, 4, t, {4}, {}), "expected 2 input");
  CtcTargets blank_label = t;
  blank_label.labels[1] = 0;
  ExpectInvalid(CtcLoss(lp, 4, blank_label, {4, 4}, {}),
                "other than the blank");
  CtcTargets out_of_range = t;
  out_of_range.labels[3] = 3;
  ExpectInvalid(CtcLoss(lp, 4, out_of_range, {4, 4}, {}), "target label 3");
  CtcTargets too_long = t;
  too_long.lengths[0] = 3;
  ExpectInvalid(CtcLoss(lp, 4, too_long, {4, 4}, {}), "target_lengths[0]");
  CtcTargets concat;
  concat.labels = {1, 2, 1};
  concat.lengths = {2, 2};
  ExpectInvalid(CtcLoss(lp, 4, concat, {4, 4}, {}), "end early");
  CtcOptions blank5;
  blank5.blank = 5;
  ExpectInvalid(CtcLoss(lp, 4, t, {4, 4}, blank5), "blank 5");
}

}  // namespace
}  // namespace embedsearch
