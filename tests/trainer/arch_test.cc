// --arch / --input end to end: a layer-list encoder trains, checkpoints as
// a format-2 model and resumes exactly; a changed architecture is refused
// on resume; bad specs and shapes are refused naming the token or flag.
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/util/file.h"
#include "embedsearch/v1/bundle.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/trainer/trainer_testing.h"
#include "trainer/checkpoint.h"
#include "trainer/trainer.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;

TrainerOptions SmallRun(const std::string& name) {
  TrainerOptions o;
  o.data = EMBEDSEARCH_FASHION_MNIST_DIR;
  o.work_dir = testing::FreshDir("trainer_arch", name);
  o.out = "";
  o.train_limit = 600;
  o.test_limit = 200;
  o.classes_per_batch = 10;
  o.images_per_class = 4;
  o.epochs = 2;
  o.warmup_steps = 3;
  o.threads = 1;
  o.eval_every = 0;
  o.quiet = true;
  o.arch = "c8,p,r16s2,gap,fc16,d0.2,fc24";
  return o;
}

std::string CheckpointModel(const std::string& work_dir) {
  absl::StatusOr<v1::TrainingCheckpoint> ckpt =
      LoadCheckpoint(work_dir + "/checkpoint.bin");
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  return ckpt.ok() ? ckpt->model() : "";
}

TEST(TrainerArch, SpecTrainsAsFormat2AndResumesExactly) {
  TrainerOptions straight = SmallRun("straight");
  ASSERT_TRUE(Train(straight).ok());
  TrainerOptions split = SmallRun("split");
  split.stop_after_steps = 7;
  ASSERT_EQ(Train(split).status().code(), absl::StatusCode::kCancelled);
  split.stop_after_steps = 0;
  split.resume = true;
  ASSERT_TRUE(Train(split).ok());
  const std::string a = CheckpointModel(straight.work_dir);
  EXPECT_EQ(a, CheckpointModel(split.work_dir));
  v1::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(a));
  EXPECT_EQ(model.format_version(), 2u);
  EXPECT_EQ(model.config().embedding_dim(), 24u);
  EXPECT_GT(model.config().layers_size(), 8);
}

TEST(TrainerArch, ResumeWithAnotherArchitectureIsRefused) {
  TrainerOptions o = SmallRun("mismatch");
  o.stop_after_steps = 3;
  ASSERT_EQ(Train(o).status().code(), absl::StatusCode::kCancelled);
  o.stop_after_steps = 0;
  o.resume = true;
  o.arch = "c8,p,r32s2,gap,fc16,d0.2,fc24";
  absl::Status s = Train(o).status();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("now res0: residual 32 s2"));
  EXPECT_THAT(s.message(), HasSubstr("channels: 16 -> 32"));
}

TEST(TrainerArch, BadSpecOrInputIsRefusedNamingIt) {
  TrainerOptions o = SmallRun("bad");
  o.arch = "c8,p,p,p,p,p,fc8";
  absl::Status s = Train(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("token 6 'p'"));
  o.arch = "c8,r16i";
  s = Train(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      s.message(),
      HasSubstr("identity shortcut needs input width 8 == block width 16"));
  o.arch = "fmnist-small";
  o.input = "64x64x3";
  s = Train(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      s.message(),
      HasSubstr("--input 64x64x3 does not match the training data's 28x28x1"));
  o.input = "28x28";
  s = Train(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--input"));
}

TEST(TrainerArch, DefaultArchIsTheLegacyNetworkForGrayData) {
  TrainerOptions o = SmallRun("default");
  o.arch = "";
  o.epochs = 1;
  o.stop_after_steps = 2;
  ASSERT_EQ(Train(o).status().code(), absl::StatusCode::kCancelled);
  v1::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(CheckpointModel(o.work_dir)));
  EXPECT_EQ(model.format_version(), 1u);
  EXPECT_EQ(model.config().conv_channels_size(), 2);
}

}  // namespace
}  // namespace embedsearch
