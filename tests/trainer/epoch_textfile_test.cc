// trainer.prom: the last epoch as Prometheus gauges, valid for promtool.
#include "trainer/epoch_textfile.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<EpochRecord> TwoEpochsLastNotEvaluated() {
  EpochRecord first;
  first.epoch = 1;
  first.global_step = 375;
  first.loss = 0.25;
  first.evaluated = true;
  first.metrics.precision_at_1 = 0.875;
  first.metrics.map_at_r = 0.73;
  EpochRecord second;
  second.epoch = 2;
  second.global_step = 750;
  second.loss = 0.125;
  second.lr = 0.002;
  second.seconds = 42.5;
  second.images_per_second = 3700;
  return {first, second};
}

TEST(EpochTextfile, LastEpochAndLastEvaluationAsGauges) {
  const std::string text = EpochMetricsTextfile(TwoEpochsLastNotEvaluated());
  EXPECT_THAT(text, HasSubstr("# TYPE embedsearch_trainer_epoch gauge\nembedsearch_trainer_epoch 2\n"));
  EXPECT_THAT(text, HasSubstr("\nembedsearch_trainer_steps 750\n"));
  EXPECT_THAT(text, HasSubstr("\nembedsearch_trainer_loss 0.125\n"));
  EXPECT_THAT(text, HasSubstr("\nembedsearch_trainer_epoch_duration_seconds 42.5\n"));
  EXPECT_THAT(text, HasSubstr("\nembedsearch_trainer_eval_epoch 1\n"));
  EXPECT_THAT(text, HasSubstr("\nembedsearch_trainer_eval_precision_at_1 0.875\n"));
  EXPECT_THAT(text, HasSubstr("\nembedsearch_trainer_eval_map_at_r 0.73\n"));
}

TEST(EpochTextfile, NoEvaluationNoEvalGaugesAndEmptyHistoryNoText) {
  std::vector<EpochRecord> history = TwoEpochsLastNotEvaluated();
  history[0].evaluated = false;
  EXPECT_THAT(EpochMetricsTextfile(history), Not(HasSubstr("eval")));
  EXPECT_EQ(EpochMetricsTextfile({}), "");
}

TEST(EpochTextfile, PromtoolAcceptsIt) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/trainer.prom");
  {
    std::ofstream out(path);
    out << EpochMetricsTextfile(TwoEpochsLastNotEvaluated());
  }
  const std::string command = absl::StrCat("promtool check metrics < '", path, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  // 127: not installed (scripts/install-deps installs Debian's prometheus).
  EXPECT_EQ(pclose(pipe), 0) << "promtool check metrics said:\n" << output;
}

}  // namespace
}  // namespace embedsearch
