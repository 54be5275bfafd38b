// Checkpoint container, SVG pictures and the progress display.
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "trainer/checkpoint.h"
#include "trainer/plots.h"
#include "trainer/progress.h"
#include "trainer/svg.h"

namespace embedsearch {
namespace {

TEST(TrainerCheckpoint, SerializeParseRoundTrip) {
  Checkpoint c;
  c.Set("model", std::string("\0\1\2binary", 9));
  c.Set("meta", "epoch=3");
  absl::StatusOr<Checkpoint> back = Checkpoint::Parse(c.Serialize());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back->Get("model"), std::string("\0\1\2binary", 9));
  EXPECT_EQ(*back->Get("meta"), "epoch=3");
  EXPECT_EQ(back->Get("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(TrainerCheckpoint, CorruptionIsDataLoss) {
  Checkpoint c;
  c.Set("model", "weights");
  std::string bytes = c.Serialize();
  std::string flipped = bytes;
  flipped[14] ^= 1;
  EXPECT_EQ(Checkpoint::Parse(flipped).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Checkpoint::Parse(bytes.substr(0, bytes.size() - 3)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Checkpoint::Parse("garbage").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(TrainerCheckpoint, SaveLoadFile) {
  const std::string path = ::testing::TempDir() + "/ckpt_test.bin";
  Checkpoint c;
  c.Set("a", "b");
  ASSERT_TRUE(c.Save(path).ok());
  absl::StatusOr<Checkpoint> back = Checkpoint::Load(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back->Get("a"), "b");
  EXPECT_EQ(Checkpoint::Load(path + ".missing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(TrainerPlots, PcaFindsTheDirectionOfLargestVariance) {
  // Points spread along (1,1,0)/sqrt2 with a little noise on z.
  std::vector<float> e;
  for (int i = -5; i <= 5; ++i) {
    e.insert(e.end(), {float(i), float(i), 0.01f * (i % 2)});
  }
  std::vector<float> pcs;
  auto xy = Pca2d(e.data(), 11, 3, &pcs);
  ASSERT_EQ(xy.size(), 11u);
  EXPECT_NEAR(std::abs(pcs[0]), std::sqrt(0.5), 1e-3);
  EXPECT_NEAR(std::abs(pcs[1]), std::sqrt(0.5), 1e-3);
  EXPECT_NEAR(std::abs(pcs[2]), 0, 1e-2);
  // Projection onto PC1 of the last point is +-5*sqrt(2).
  EXPECT_NEAR(std::abs(xy[10].first), 5 * std::sqrt(2.0), 1e-3);
}

// Six points +-3*u1, +-2*u2, +-1*u3 along an orthonormal basis of R^4: their
// covariance has eigenvectors u1, u2 (eigenvalues 18 and 8 of the scatter
// matrix), so PC1 = u1 and PC2 = u2, signed with their largest entry > 0.
TEST(TrainerPlots, PcaOfAKnownCovarianceGivesItsLeadingEigenvectors) {
  const float h = 0.5f;
  const float u1[4] = {h, h, h, h};
  const float u2[4] = {-h, -h, h, h};  // largest |entry| first is negative
  const float u3[4] = {h, -h, h, -h};
  std::vector<float> e;
  for (const auto& [u, scale] : {std::pair{u1, 3.f}, {u2, 2.f}, {u3, 1.f}}) {
    for (float sign : {1.f, -1.f}) {
      for (int d = 0; d < 4; ++d) e.push_back(sign * scale * u[d]);
    }
  }
  std::vector<float> pcs;
  auto xy = Pca2d(e.data(), 6, 4, &pcs);
  ASSERT_EQ(pcs.size(), 8u);
  for (int d = 0; d < 4; ++d) {
    EXPECT_NEAR(pcs[d], u1[d], 1e-5) << d;
    EXPECT_NEAR(pcs[4 + d], -u2[d], 1e-5) << d;
  }
  EXPECT_NEAR(xy[0].first, 3, 1e-5);
  EXPECT_NEAR(xy[0].second, 0, 1e-5);
  EXPECT_NEAR(xy[2].second, -2, 1e-5);  // +2*u2 = -2*PC2
  EXPECT_NEAR(xy[4].first, 0, 1e-5);
  EXPECT_NEAR(xy[4].second, 0, 1e-5);
}

TEST(TrainerPlots, PcaOfOneDimensionHasAZeroSecondComponent) {
  std::vector<float> e = {1, 2, 4};
  std::vector<float> pcs;
  auto xy = Pca2d(e.data(), 3, 1, &pcs);
  ASSERT_EQ(pcs.size(), 2u);
  EXPECT_FLOAT_EQ(pcs[0], 1);
  EXPECT_FLOAT_EQ(pcs[1], 0);
  EXPECT_NEAR(xy[2].first, 4 - 7.0 / 3, 1e-5);
  EXPECT_FLOAT_EQ(xy[2].second, 0);
}

TEST(TrainerPlots, SvgDocumentsAreWellFormedAndLabelled) {
  std::vector<EpochPoint> pts = {{1, 0.3, 0.8}, {2, 0.2, 0.85}};
  const std::string curve = TrainingCurveSvg(pts, "run <1>");
  EXPECT_EQ(curve.rfind("<?xml", 0), 0u);
  EXPECT_NE(curve.find("</svg>"), std::string::npos);
  EXPECT_NE(curve.find("run &lt;1&gt;"), std::string::npos);
  EXPECT_NE(curve.find("<polyline"), std::string::npos);
  std::vector<float> e = {0, 0, 1, 1, 2, 0, 3, 1};
  const std::string map =
      EmbeddingMapSvg(e.data(), 4, 2, {0, 1, 0, 1}, {"shirt", "shoe"}, "map");
  EXPECT_NE(map.find("shirt"), std::string::npos);
  EXPECT_NE(map.find("shoe"), std::string::npos);
  EXPECT_NE(map.find(CategoryColor(1)), std::string::npos);
}

TEST(TrainerProgress, PlainLinesWhenNotATerminal) {
  char buf[4096] = {0};
  FILE* f = fmemopen(buf, sizeof(buf), "w");
  ASSERT_NE(f, nullptr);
  ProgressReporter p(f, {.tty = false, .log_every = 2});
  p.StartEpoch(1, 3, 4);
  for (int s = 1; s <= 4; ++s) p.Step(s, 10, 0.5, 12 - s);
  p.EndEpoch();
  std::fclose(f);
  const std::string out(buf);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_NE(out.find("epoch 1/3 step 2/4"), std::string::npos) << out;
  EXPECT_NE(out.find("epoch 1/3 step 4/4"), std::string::npos) << out;
  EXPECT_NE(out.find("loss 0.5000"), std::string::npos) << out;
  EXPECT_NE(out.find("ETA"), std::string::npos) << out;
}

TEST(TrainerProgress, BarIsRedrawnInPlaceOnATerminal) {
  char buf[4096] = {0};
  FILE* f = fmemopen(buf, sizeof(buf), "w");
  ASSERT_NE(f, nullptr);
  ProgressReporter p(f, {.tty = true});
  p.StartEpoch(2, 5, 3);
  p.Step(1, 8, 1.0, 10);
  p.Step(3, 8, 1.0, 8);
  p.EndEpoch();
  std::fclose(f);
  const std::string out(buf);
  EXPECT_EQ(out[0], '\r');
  EXPECT_NE(out.find("[############################] 100%"), std::string::npos)
      << out;
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(FormatEta(absl::Seconds(125)), "2m05s");
  EXPECT_EQ(FormatEta(absl::Seconds(3720)), "1h02m");
}

}  // namespace
}  // namespace embedsearch
