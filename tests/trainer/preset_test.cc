// Named recipes (--preset), --stop_at_p1 and the time-to-quality fields of
// metrics.jsonl, on tiny Fashion-MNIST subsets (seconds).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/nn/encoder.h"
#include "core/util/file.h"
#include "gtest/gtest.h"
#include "tests/trainer/trainer_testing.h"
#include "trainer/trainer.h"
#include "trainer/trainer_options.h"

namespace embedsearch {
namespace {

using testing::FreshDir;
using testing::RunTrainer;

TrainerOptions TinyRun(const std::string& name) {
  TrainerOptions o;
  o.data = EMBEDSEARCH_FASHION_MNIST_DIR;
  o.work_dir = FreshDir("preset", name);
  o.out = "";
  o.train_limit = 600;
  o.test_limit = 200;
  o.classes_per_batch = 10;
  o.images_per_class = 6;
  o.epochs = 3;
  o.warmup_steps = 3;
  o.threads = 1;
  o.quiet = true;
  return o;
}

TEST(TrainerPreset, QualityIsItsEncoderLengthAndEvaluationEvery) {
  absl::StatusOr<std::vector<PresetFlag>> q = TrainerPresetFlags("quality");
  ASSERT_TRUE(q.ok()) << q.status();
  std::map<std::string, std::string> flags;
  for (const PresetFlag& f : *q) flags[f.flag] = f.value;
  EXPECT_EQ(flags["arch"], kQualityPresetArch);
  EXPECT_EQ(flags["epochs"], absl::StrCat(kQualityPresetEpochs));
  EXPECT_EQ(flags["eval_every"], absl::StrCat(kQualityPresetEvalEvery));
  EXPECT_NE(DescribeTrainerPreset("quality").find(absl::StrCat("--arch=", kQualityPresetArch)),
            std::string::npos);

  // "default" is the options as they are: the 10-epoch recipe stays default.
  absl::StatusOr<std::vector<PresetFlag>> d = TrainerPresetFlags("default");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->empty());
  const TrainerOptions defaults;
  EXPECT_EQ(defaults.arch, "");
  EXPECT_EQ(defaults.epochs, 10);
  EXPECT_EQ(defaults.eval_every, 1);

  absl::StatusOr<std::vector<PresetFlag>> bad = TrainerPresetFlags("fast");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--preset"), std::string::npos) << bad.status();
  EXPECT_EQ(DescribeTrainerPreset("fast"), "");
}

TEST(TrainerPreset, StopAtP1OutOfRangeNamesTheFlag) {
  TrainerOptions o;
  o.work_dir = "w";
  o.stop_at_p1 = 1.5;
  absl::Status s = ValidateTrainerOptions(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--stop_at_p1"), std::string::npos) << s;
}

TEST(TrainerStopAtP1, EndsAtTheFirstEvaluationThatReachesItAndExports) {
  TrainerOptions o = TinyRun("stop");
  o.out = o.work_dir + "/bundle";
  o.eval_every = 1;
  o.stop_at_p1 = 0.2;  // 10 classes: any trained encoder beats chance (0.1)
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->history.size(), 1u);
  EXPECT_GE(r->history[0].metrics.precision_at_1, 0.2);
  EXPECT_TRUE(r->stopped_at_p1);
  EXPECT_EQ(r->bundle_dir, o.out);
  EXPECT_TRUE(std::filesystem::exists(o.out + "/manifest.pb"))
      << "no manifest in " << o.out;
}

TEST(TrainerStopAtP1, UnreachedTargetTrainsEveryEpoch) {
  TrainerOptions o = TinyRun("unreached");
  o.eval_every = 1;
  o.stop_at_p1 = 1.0;
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->history.size(), 3u);
  EXPECT_LT(r->history.back().metrics.precision_at_1, 1.0);
  EXPECT_FALSE(r->stopped_at_p1);
}

TEST(TrainerTimeToQuality, CumulativeTrainingAndCpuSecondsPerEpoch) {
  TrainerOptions o = TinyRun("times");
  o.eval_every = 2;
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->history.size(), 3u);
  double sum = 0, last_cpu = 0, last_wall = 0;
  for (const EpochRecord& e : r->history) {
    sum += e.seconds;
    EXPECT_NEAR(e.train_seconds_total, sum, 1e-9) << "epoch " << e.epoch;
    EXPECT_GT(e.process_cpu_seconds, last_cpu) << "epoch " << e.epoch;
    EXPECT_GT(e.wall_seconds, last_wall) << "epoch " << e.epoch;
    EXPECT_GE(e.wall_seconds, e.train_seconds_total) << "epoch " << e.epoch;
    last_cpu = e.process_cpu_seconds;
    last_wall = e.wall_seconds;
  }
  absl::StatusOr<std::string> jsonl = ReadFile(o.work_dir + "/metrics.jsonl");
  ASSERT_TRUE(jsonl.ok()) << jsonl.status();
  std::vector<std::string> lines = absl::StrSplit(*jsonl, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  for (const char* key : {"\"train_seconds_total\":", "\"process_cpu_seconds\":",
                                 "\"wall_seconds\":"}) {
    EXPECT_NE(lines[2].find(key), std::string::npos) << key << " in " << lines[2];
  }
}

TEST(TrainerTimeToQuality, ResumedRunKeepsCumulativeTrainingSeconds) {
  TrainerOptions o = TinyRun("resume");
  o.eval_every = 0;
  o.stop_after_steps = 12;  // 10 steps an epoch: stops in epoch 2
  ASSERT_EQ(Train(o).status().code(), absl::StatusCode::kCancelled);
  o.stop_after_steps = 0;
  o.resume = true;
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->history.size(), 3u);
  const double first = r->history[0].train_seconds_total;
  EXPECT_GT(first, 0);
  EXPECT_NEAR(r->history[2].train_seconds_total,
              r->history[0].seconds + r->history[1].seconds + r->history[2].seconds, 1e-9);
}

TEST(TrainerFlipAverage, ExportedModelEmbedsAnImageAndItsMirrorAlike) {
  TrainerOptions o = TinyRun("flip");
  o.out = o.work_dir + "/bundle";
  o.epochs = 1;
  o.flip_average = true;
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->history.back().evaluated);
  EXPECT_GT(r->history.back().metrics.precision_at_1, 0.2);  // chance is 0.1
  absl::StatusOr<std::unique_ptr<Encoder>> model = Encoder::Load(o.out + "/model.pb");
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE((*model)->config().flip_average);
  std::vector<float> image(28 * 28), mirror(28 * 28), a(64), b(64);
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) image[y * 28 + x] = (x < 9 ? 1.5f : -0.4f) + 0.01f * y;
  }
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) mirror[y * 28 + x] = image[y * 28 + 27 - x];
  }
  (*model)->Encode(image.data(), 1, a.data());
  (*model)->Encode(mirror.data(), 1, b.data());
  for (int k = 0; k < 64; ++k) EXPECT_NEAR(a[k], b[k], 1e-5) << k;

  // Training is the same with and without it: only the encoding differs.
  TrainerOptions plain = TinyRun("flip-off");
  plain.epochs = 1;
  absl::StatusOr<TrainResult> p = Train(plain);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->history.back().loss, r->history.back().loss);
  EXPECT_NE(p->history.back().metrics.map_at_r, r->history.back().metrics.map_at_r);
}

TEST(TrainerPresetFlags, QualityPresetAppliesAndExplicitFlagsWin) {
  const std::string wd = FreshDir("preset", "cli");
  const std::string common = absl::StrCat(
      "--out= --train_limit=400 --test_limit=100 --classes-per-batch=10 "
      "--images-per-class=4 --threads=1 --stop_after_steps=1 --preset quality");
  auto [code, out] = RunTrainer(absl::StrCat("--work_dir=", wd, "/a ", common));
  EXPECT_EQ(code, 130) << out;
  EXPECT_NE(out.find(absl::StrCat(kQualityPresetEpochs, " epochs")), std::string::npos) << out;
  auto [code2, out2] = RunTrainer(
      absl::StrCat("--work_dir=", wd, "/b ", common, " --epochs 3 --stop_at_p1=0.9"));
  EXPECT_EQ(code2, 130) << out2;
  EXPECT_NE(out2.find("3 epochs"), std::string::npos) << out2;
  EXPECT_NE(out2.find("P@1 >= 0.9"), std::string::npos) << out2;
  auto [code3, out3] = RunTrainer(absl::StrCat("--work_dir=", wd, "/c --preset fast"));
  EXPECT_EQ(code3, 2) << out3;
  EXPECT_NE(out3.find("--preset"), std::string::npos) << out3;
}

TEST(TrainerPresetFlags, HelpListsThePresetAndItsSettings) {
  auto [code, out] = RunTrainer("--help");
  EXPECT_NE(out.find("--preset"), std::string::npos) << out;
  EXPECT_NE(out.find(kQualityPresetArch), std::string::npos) << out;
  EXPECT_NE(out.find("--stop_at_p1"), std::string::npos) << out;
}

}  // namespace
}  // namespace embedsearch
