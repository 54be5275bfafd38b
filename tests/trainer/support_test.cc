// Checkpoint container, SVG pictures and the progress display.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/util/file.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "trainer/checkpoint.h"
#include "trainer/plots.h"
#include "trainer/progress.h"
#include "trainer/svg.h"

namespace embedsearch {
namespace {

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "/" + name;
}

std::unique_ptr<Encoder> SmallEncoder(int hidden) {
  EncoderConfig config;
  config.conv_channels = {4};
  config.hidden = hidden;
  config.embedding_dim = 8;
  absl::StatusOr<std::unique_ptr<Encoder>> e = Encoder::Create(config, 7);
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(*e);
}

v1::TrainingCheckpoint FilledCheckpoint(const Encoder& encoder) {
  TrainerOptions o;
  o.data = "/some/dir";
  v1::TrainingCheckpoint c;
  *c.mutable_options() = RunOptionsOf(o);
  c.set_model(encoder.ToBytes());
  c.set_optimizer(std::string("\0\1\2state", 8));
  c.set_class_vectors(std::string(40, '\7'));
  c.mutable_sampler()->set_seed(3);
  c.mutable_sampler()->set_epoch(1);
  c.mutable_sampler()->set_step(5);
  for (uint64_t w : {1ull, ~0ull, 1ull << 63, 12345ull}) c.add_augment_rng(w);
  c.set_global_step(15);
  c.set_epoch_loss_sum(0.1 + 0.2);  // not exactly representable in decimal
  EpochRecord r;
  r.epoch = 1;
  r.loss = 1.0 / 3;
  r.evaluated = true;
  r.metrics.map_at_r = 0.123456789012345678;
  *c.add_history() = EpochRecordToProto(r);
  return c;
}

TEST(TrainerCheckpoint, SaveLoadKeepsEveryBit) {
  std::unique_ptr<Encoder> encoder = SmallEncoder(16);
  v1::TrainingCheckpoint c = FilledCheckpoint(*encoder);
  const std::string path = TempPath("ckpt_roundtrip.bin");
  ASSERT_TRUE(SaveCheckpoint(path, c).ok());
  absl::StatusOr<v1::TrainingCheckpoint> back = LoadCheckpoint(path);
  ASSERT_TRUE(back.ok()) << back.status();
  c.set_format_version(kCheckpointFormatVersion);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(c, *back));
  const EpochRecord r = EpochRecordFromProto(back->history(0));
  EXPECT_EQ(r.loss, 1.0 / 3);
  EXPECT_EQ(r.metrics.map_at_r, 0.123456789012345678);
  EXPECT_EQ(LoadCheckpoint(path + ".missing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(TrainerCheckpoint, OldFormatAndGarbageAreRefusedNeverMisread) {
  const std::string old_path = TempPath("ckpt_old.bin");
  ASSERT_TRUE(WriteFileAtomically(old_path, std::string("ESCKPT01\2\0\0\0meta", 16)).ok());
  absl::Status old = LoadCheckpoint(old_path).status();
  EXPECT_EQ(old.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(old.message().find("earlier trainer"), std::string::npos) << old;

  const std::string garbage_path = TempPath("ckpt_garbage.bin");
  ASSERT_TRUE(WriteFileAtomically(garbage_path, "\xff\xff\xff garbage").ok());
  EXPECT_EQ(LoadCheckpoint(garbage_path).status().code(), absl::StatusCode::kDataLoss);

  // A checkpoint of some other format version (e.g. a newer trainer's).
  v1::TrainingCheckpoint future;
  future.set_format_version(kCheckpointFormatVersion + 1);
  const std::string future_path = TempPath("ckpt_future.bin");
  ASSERT_TRUE(WriteFileAtomically(future_path, future.SerializeAsString()).ok());
  EXPECT_EQ(LoadCheckpoint(future_path).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(TrainerCheckpoint, ResumeCheckNamesEachDifferingOptionAndModelField) {
  std::unique_ptr<Encoder> encoder = SmallEncoder(16);
  const v1::TrainingCheckpoint stored = FilledCheckpoint(*encoder);
  EXPECT_TRUE(CheckSameRun("ck", stored, stored.options(), *encoder).ok());

  v1::TrainingRunOptions now = stored.options();
  now.set_seed(now.seed() + 1);
  now.set_loss("contrastive");
  absl::Status s = CheckSameRun("ck", stored, now, *SmallEncoder(24));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  for (const char* field : {"seed: 1 -> 2", "loss: \"triplet\" -> \"contrastive\"",
                            "hidden: 16 -> 24"}) {
    EXPECT_NE(s.message().find(field), std::string::npos) << field << " in " << s;
  }
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
