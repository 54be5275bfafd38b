// The trainer end to end on small Fashion-MNIST subsets: it learns (loss
// down, beats raw-pixel 1-NN), resumes exactly, exports a loadable bundle,
// and rejects bad options.
#include "tests/trainer/trainer_testing.h"
#include "trainer/trainer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/data/preprocess.h"
#include "core/index/bundle.h"
#include "core/loss/embedding_loss.h"
#include "core/util/file.h"
#include "gtest/gtest.h"
#include "trainer/checkpoint.h"
#include "trainer/class_vectors.h"
#include "trainer/collapse_detector.h"
#include "trainer/retrieval_metrics.h"

namespace embedsearch {
namespace {

using testing::FreshDir;
using testing::RunTrainer;

TrainerOptions SmallRun(const std::string& name) {
  TrainerOptions o;
  o.data = EMBEDSEARCH_FASHION_MNIST_DIR;
  o.work_dir = FreshDir("trainer", name);
  o.out = "";
  o.train_limit = 1000;
  o.test_limit = 300;
  o.classes_per_batch = 10;
  o.images_per_class = 8;
  o.epochs = 2;
  o.warmup_steps = 5;
  o.threads = 1;
  o.eval_every = 0;
  o.quiet = true;
  return o;
}

// Mean triplet loss over every triplet (PyTorch's plain mean, not the
// batch-all average over active ones, which rises as easy triplets drop
// out) of a fixed batch of 80 test images: 8 per class.
double FixedBatchLoss(const Encoder& encoder, const Dataset& test) {
  std::vector<size_t> idx;
  std::vector<int> taken(10, 0);
  for (size_t i = 0; i < test.size() && idx.size() < 80; ++i) {
    if (taken[test.labels[i]]++ < 8) idx.push_back(i);
  }
  Dataset batch = test.Subset(idx);
  std::vector<float> emb = EncodeDataset(encoder, batch, 1);
  EmbeddingLossOptions lo;
  lo.average_over_active = false;
  absl::StatusOr<EmbeddingLossResult> r = ComputeEmbeddingLoss(
      emb.data(), static_cast<int>(batch.size()), encoder.dim(),
      batch.labels.data(), lo);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->loss : 0;
}

std::unique_ptr<Encoder> ModelFromCheckpoint(const std::string& work_dir) {
  absl::StatusOr<v1::TrainingCheckpoint> ckpt =
      LoadCheckpoint(work_dir + "/checkpoint.bin");
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  absl::StatusOr<std::unique_ptr<Encoder>> enc = Encoder::FromBytes(ckpt->model());
  EXPECT_TRUE(enc.ok()) << enc.status();
  return std::move(*enc);
}

TEST(Trainer, ShortRunLowersLossAndBeatsRawPixelNearestNeighbour) {
  TrainerOptions o = SmallRun("learn");
  o.train_limit = 2000;
  o.test_limit = 500;
  o.epochs = 4;
  o.images_per_class = 4;  // 50 steps per epoch
  o.augment = false;       // a 200-step run learns faster without it
  absl::StatusOr<TrainingData> data = LoadTrainingData(o);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->train.size(), 2000u);
  ASSERT_EQ(data->test.size(), 500u);

  // Raw-pixel 1-NN on the same subset, through the same evaluation.
  const int pixels = 28 * 28;
  std::vector<float> g(2000 * pixels), q(500 * pixels);
  Preprocessing norm;
  NormalizeImages(data->train, 0, 2000, norm, g.data());
  NormalizeImages(data->test, 0, 500, norm, q.data());
  absl::StatusOr<RetrievalMetrics> raw = EvaluateRetrieval(
      g.data(), data->train.labels, q.data(), data->test.labels, pixels);
  ASSERT_TRUE(raw.ok()) << raw.status();

  EncoderConfig config;
  config.batch_norm = o.batch_norm;
  absl::StatusOr<std::unique_ptr<Encoder>> initial = Encoder::Create(config, o.seed);
  ASSERT_TRUE(initial.ok());
  const double loss_before = FixedBatchLoss(**initial, data->test);

  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->history.size(), 4u);
  EXPECT_FALSE(r->collapse_detected);
  const RetrievalMetrics& m = r->history.back().metrics;
  ASSERT_TRUE(r->history.back().evaluated);
  EXPECT_EQ(m.queries, 500);
  EXPECT_GT(m.precision_at_1, raw->precision_at_1)
      << "raw-pixel 1-NN " << raw->precision_at_1;
  EXPECT_GT(m.map_at_r, raw->map_at_r);

  const double loss_after = FixedBatchLoss(*ModelFromCheckpoint(o.work_dir), data->test);
  EXPECT_LT(loss_after, 0.8 * loss_before)
      << "before " << loss_before << " after " << loss_after;

  // The metrics file has one line per epoch and the pictures exist.
  absl::StatusOr<std::string> jsonl = ReadFile(o.work_dir + "/metrics.jsonl");
  ASSERT_TRUE(jsonl.ok());
  EXPECT_EQ(std::count(jsonl->begin(), jsonl->end(), '\n'), 4);
  EXPECT_NE(jsonl->find("\"precision_at_1\""), std::string::npos);
  EXPECT_TRUE(ReadFile(o.work_dir + "/training_curve.svg").ok());
  absl::StatusOr<std::string> map = ReadFile(o.work_dir + "/embedding_map.svg");
  ASSERT_TRUE(map.ok());
  EXPECT_NE(map->find("Ankle boot"), std::string::npos);
}

// Dropout masks are drawn from a generator seeded per step, so a resumed
// run with dropout (and a non-default encoder shape) is bit-equal too.
TEST(Trainer, StoppedAndResumedRunWithDropoutEqualsUninterruptedRun) {
  auto options = [](const std::string& name) {
    TrainerOptions o = SmallRun(name);
    o.dropout = 0.3;
    o.conv_channels = {16, 32};
    return o;
  };
  TrainerOptions straight = options("dropout-straight");
  ASSERT_TRUE(Train(straight).ok());
  TrainerOptions split = options("dropout-split");
  split.stop_after_steps = 13;
  ASSERT_EQ(Train(split).status().code(), absl::StatusCode::kCancelled);
  split.stop_after_steps = 0;
  split.resume = true;
  ASSERT_TRUE(Train(split).ok());
  std::unique_ptr<Encoder> wa = ModelFromCheckpoint(straight.work_dir);
  std::unique_ptr<Encoder> wb = ModelFromCheckpoint(split.work_dir);
  EXPECT_EQ(wa->config().conv_channels, (std::vector<int>{16, 32}));
  EXPECT_EQ(wa->ToBytes(), wb->ToBytes());
}

TEST(Trainer, StoppedAndResumedRunEqualsUninterruptedRun) {
  TrainerOptions straight = SmallRun("straight");
  absl::StatusOr<TrainResult> a = Train(straight);
  ASSERT_TRUE(a.ok()) << a.status();

  TrainerOptions split = SmallRun("split");
  // 10 steps per epoch: stop in the middle of the second epoch, so the
  // sampler, augmentation RNG and optimizer state all have to carry over.
  split.stop_after_steps = 17;
  absl::StatusOr<TrainResult> first = Train(split);
  ASSERT_EQ(first.status().code(), absl::StatusCode::kCancelled) << first.status();
  // Without --resume an existing checkpoint is refused.
  split.stop_after_steps = 0;
  EXPECT_EQ(Train(split).status().code(), absl::StatusCode::kFailedPrecondition);
  split.resume = true;
  absl::StatusOr<TrainResult> b = Train(split);
  ASSERT_TRUE(b.ok()) << b.status();

  std::unique_ptr<Encoder> wa = ModelFromCheckpoint(straight.work_dir);
  std::unique_ptr<Encoder> wb = ModelFromCheckpoint(split.work_dir);
  EXPECT_EQ(wa->ToBytes(), wb->ToBytes());
  ASSERT_EQ(a->history.size(), b->history.size());
  EXPECT_EQ(a->history.back().loss, b->history.back().loss);
  EXPECT_EQ(a->history.back().metrics.precision_at_1,
            b->history.back().metrics.precision_at_1);

  // A resume with different options is refused, naming the field.
  split.margin = 0.3;
  absl::Status s = Train(split).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("margin"), std::string::npos) << s;
  // So is one whose model would differ: the stored model's config decides.
  split.margin = -1;
  split.hidden = 96;
  s = Train(split).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("hidden: 128 -> 96"), std::string::npos) << s;
}

// --answers=classes: the class vectors are trained with the encoder (a run
// that learns them must beat raw pixels) and checkpointed (a resumed run is
// bit-equal only if they and their optimizer state carry over).
TEST(Trainer, ClassAnswersLearnAndResumeExactly) {
  auto options = [](const std::string& name) {
    TrainerOptions o = SmallRun(name);
    o.loss = EmbeddingLossKind::kNll;
    o.answers = AnswerSet::kClasses;
    o.beta = 8;
    o.epochs = 3;
    o.eval_every = 1;
    return o;
  };
  TrainerOptions straight = options("classes-straight");
  absl::StatusOr<TrainResult> a = Train(straight);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->history.size(), 3u);
  // Epoch means of the NLL fall as the encoder and class vectors learn.
  EXPECT_LT(a->history.back().loss, 0.7 * a->history.front().loss);
  // Raw-pixel 1-NN on this 1000/300 subset is ~0.75; chance is 0.1.
  EXPECT_GT(a->history.back().metrics.precision_at_1, 0.7);

  TrainerOptions split = options("classes-split");
  split.stop_after_steps = 17;
  ASSERT_EQ(Train(split).status().code(), absl::StatusCode::kCancelled);
  split.stop_after_steps = 0;
  split.resume = true;
  absl::StatusOr<TrainResult> b = Train(split);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(ModelFromCheckpoint(straight.work_dir)->ToBytes(),
            ModelFromCheckpoint(split.work_dir)->ToBytes());
  EXPECT_EQ(a->history.back().loss, b->history.back().loss);
  absl::StatusOr<v1::TrainingCheckpoint> ca =
      LoadCheckpoint(straight.work_dir + "/checkpoint.bin");
  absl::StatusOr<v1::TrainingCheckpoint> cb =
      LoadCheckpoint(split.work_dir + "/checkpoint.bin");
  ASSERT_TRUE(ca.ok() && cb.ok());
  ASSERT_TRUE(ca->has_class_vectors());
  EXPECT_EQ(ca->class_vectors().size(), 10u * 64u * sizeof(float));
  EXPECT_EQ(ca->class_vectors(), cb->class_vectors());

  // The metrics lines say which answers were used.
  absl::StatusOr<std::string> jsonl = ReadFile(straight.work_dir + "/metrics.jsonl");
  ASSERT_TRUE(jsonl.ok());
  EXPECT_NE(jsonl->find("\"answers\":\"classes\""), std::string::npos);
}

// --class_weight trains class vectors next to a batch loss and checkpoints
// them; the class term makes the reported loss larger than triplet alone.
TEST(Trainer, ClassWeightAddsTheClassTermAndKeepsItsVectors) {
  TrainerOptions plain = SmallRun("class-weight-plain");
  plain.epochs = 1;
  TrainerOptions mixed = SmallRun("class-weight-mixed");
  mixed.epochs = 1;
  mixed.class_weight = 1;
  mixed.beta = 8;
  absl::StatusOr<TrainResult> a = Train(plain);
  absl::StatusOr<TrainResult> b = Train(mixed);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_GT(b->history[0].loss, a->history[0].loss);
  absl::StatusOr<v1::TrainingCheckpoint> ca =
      LoadCheckpoint(plain.work_dir + "/checkpoint.bin");
  absl::StatusOr<v1::TrainingCheckpoint> cb =
      LoadCheckpoint(mixed.work_dir + "/checkpoint.bin");
  ASSERT_TRUE(ca.ok() && cb.ok());
  EXPECT_FALSE(ca->has_class_vectors());
  ASSERT_TRUE(cb->has_class_vectors());
  EXPECT_NE(cb->class_vectors(),
            ClassVectorsToBytes(MakeClassVectors(10, 64, mixed.seed)))
      << "the class vectors were not trained";
}

TEST(Trainer, ExportedBundleLoadsAndEncodesLikeTheTrainer) {
  TrainerOptions o = SmallRun("export");
  o.train_limit = 300;
  o.test_limit = 100;
  o.epochs = 1;
  o.index_spec = "Flat";
  o.out = o.work_dir + "/bundle";
  o.command_line = "embedsearch-trainer --epochs=1 (test)";
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->bundle_dir, o.out);

  absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Load(o.out);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ((*bundle)->manifest().trainer_command(), o.command_line);
  EXPECT_EQ((*bundle)->manifest().item_count(), 300u);
  EXPECT_EQ((*bundle)->manifest().model_version(), r->model_version);
  EXPECT_EQ((*bundle)->gallery().size(), 300);

  absl::StatusOr<TrainingData> data = LoadTrainingData(o);
  ASSERT_TRUE(data.ok());
  std::unique_ptr<Encoder> trained = ModelFromCheckpoint(o.work_dir);
  const std::vector<float> ours = EncodeDataset(*trained, data->train, 1);
  const std::vector<float> theirs = EncodeDataset((*bundle)->encoder(), data->train, 1);
  ASSERT_EQ(ours.size(), theirs.size());
  const int dim = trained->dim();
  for (int64_t id : {1, 2, 150, 300}) {
    absl::StatusOr<CatalogItem> item = (*bundle)->gallery().Get(id);
    ASSERT_TRUE(item.ok()) << item.status();
    EXPECT_EQ(item->label, data->train.labels[id - 1]);
    ASSERT_EQ(item->embedding.size(), static_cast<size_t>(dim));
    for (int d = 0; d < dim; ++d) {
      EXPECT_FLOAT_EQ(item->embedding[d], ours[(id - 1) * dim + d]);
      EXPECT_FLOAT_EQ(theirs[(id - 1) * dim + d], ours[(id - 1) * dim + d]);
    }
  }
  // The nearest gallery item of a gallery image is itself.
  GallerySearchOptions so;
  so.k = 1;
  absl::StatusOr<std::vector<std::vector<GalleryHit>>> hits =
      (*bundle)->gallery().Search(ours.data() + 41 * dim, 1, so);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ((*hits)[0].size(), 1u);
  EXPECT_EQ((*hits)[0][0].id, 42);
}

TEST(TrainerOptions, PairLossesDefaultToSemiHardMiningAndTheirOwnMargins) {
  EXPECT_EQ(DefaultMining(EmbeddingLossKind::kCosine), Mining::kSemiHard);
  EXPECT_EQ(DefaultMining(EmbeddingLossKind::kHingeEmbedding), Mining::kSemiHard);
  EXPECT_EQ(DefaultMining(EmbeddingLossKind::kTriplet), Mining::kAll);
  TrainerOptions o;
  o.loss = EmbeddingLossKind::kCosine;
  EXPECT_DOUBLE_EQ(EffectiveMargin(o), DefaultMargin(EmbeddingLossKind::kCosine));
  o.margin = 0.3;
  EXPECT_DOUBLE_EQ(EffectiveMargin(o), 0.3);
}

TEST(TrainerOptions, BadValuesNameTheFlag) {
  struct Case {
    void (*mutate)(TrainerOptions*);
    const char* flag;
  };
  const Case cases[] = {
      {[](TrainerOptions* o) { o->epochs = 0; }, "--epochs"},
      {[](TrainerOptions* o) { o->lr = -1; }, "--lr"},
      {[](TrainerOptions* o) { o->margin = std::nan(""); }, "--margin"},
      {[](TrainerOptions* o) { o->p = 0.5; }, "--p"},
      {[](TrainerOptions* o) { o->classes_per_batch = 1; }, "--classes-per-batch"},
      {[](TrainerOptions* o) { o->images_per_class = 1; }, "--images-per-class"},
      {[](TrainerOptions* o) { o->dim = 0; }, "--dim"},
      {[](TrainerOptions* o) { o->work_dir = ""; }, "--work_dir"},
      {[](TrainerOptions* o) { o->weight_decay = -1; }, "--weight-decay"},
      {[](TrainerOptions* o) { o->train_limit = -5; }, "--train_limit"},
      {[](TrainerOptions* o) { o->conv_channels = {}; }, "--conv"},
      {[](TrainerOptions* o) { o->conv_channels = {32, 0}; }, "--conv"},
      {[](TrainerOptions* o) { o->conv_channels = {8, 8, 8, 8, 8}; }, "--conv"},
      {[](TrainerOptions* o) { o->dropout = 1; }, "--dropout"},
      // Triplet compares images with images; it has no class answers.
      {[](TrainerOptions* o) { o->answers = AnswerSet::kClasses; }, "--answers"},
      {[](TrainerOptions* o) { o->class_weight = -1; }, "--class_weight"},
      // With class answers the loss is on classes already.
      {[](TrainerOptions* o) {
         o->loss = EmbeddingLossKind::kNll;
         o->answers = AnswerSet::kClasses;
         o->class_weight = 1;
       }, "--class_weight"},
  };
  for (const Case& c : cases) {
    TrainerOptions o;
    o.work_dir = "w";
    c.mutate(&o);
    absl::Status s = ValidateTrainerOptions(o);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_NE(s.message().find(c.flag), std::string::npos) << s;
  }
  TrainerOptions ok;
  ok.work_dir = "w";
  EXPECT_TRUE(ValidateTrainerOptions(ok).ok());
  ok.conv_channels = {16, 32, 64};
  ok.dropout = 0.25;
  EXPECT_TRUE(ValidateTrainerOptions(ok).ok());
  EXPECT_EQ(ParseLrSchedule("linear").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseLrSchedule("cosine"), LrSchedule::kCosine);
  EXPECT_EQ(ParseOptimizerKind("rmsprop").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseOptimizerKind("adamw"), OptimizerKind::kAdamW);
  EXPECT_EQ(ParseAnswerSet("prototypes").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseAnswerSet("classes"), AnswerSet::kClasses);
  ok.loss = EmbeddingLossKind::kMarginHinge;
  ok.answers = AnswerSet::kClasses;
  EXPECT_TRUE(ValidateTrainerOptions(ok).ok());
}

TEST(TrainerFlags, BadFlagValuesExitWithAMessage) {
  const std::string wd = FreshDir("trainer", "flags");
  struct Case {
    std::string args;
    std::string expect;
  };
  const Case cases[] = {
      {"--loss=bogus", "--loss"},
      {"--mining=hardest", "--mining"},
      {"--schedule=linear", "--schedule"},
      {"--optimizer=rmsprop", "--optimizer"},
      {"--classes-per-batch=1", "--classes-per-batch"},
      {"--images-per-class=0", "--images-per-class"},
      {"--weight-decay=-1", "--weight-decay"},
      {"--epochs=zero", "epochs"},
  };
  for (const Case& c : cases) {
    auto [code, out] = RunTrainer(absl::StrCat("--work_dir=", wd, " ", c.args));
    EXPECT_NE(code, 0) << c.args;
    EXPECT_NE(out.find(c.expect), std::string::npos) << c.args << ": " << out;
  }
}

TEST(TrainerFlags, StopFlagChecksPointsAndResumeFinishes) {
  const std::string wd = FreshDir("trainer", "cli");
  const std::string common = absl::StrCat(
      "--work_dir=", wd, " --out= --train_limit=400 --test_limit=100 "
      "--classes-per-batch=10 --images-per-class=4 --epochs=2 --threads=1 "
      "--warmup_steps=2 --log_every=5");
  auto [code, out] = RunTrainer(common + " --stop_after_steps=3");
  EXPECT_EQ(code, 130) << out;
  EXPECT_NE(out.find("--resume"), std::string::npos) << out;
  auto [code2, out2] = RunTrainer(common + " --resume");
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_NE(out2.find("resumed"), std::string::npos) << out2;
  EXPECT_NE(out2.find("precision@1"), std::string::npos) << out2;
}

TEST(TrainerSchedule, WarmupThenCosineToZero) {
  TrainerOptions o;
  o.lr = 1.0;
  o.warmup_steps = 10;
  o.schedule = LrSchedule::kCosine;
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 0, 110, 10), 0.1);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 9, 110, 10), 1.0);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 10, 110, 10), 1.0);
  EXPECT_NEAR(LearningRateAt(o, 60, 110, 10), 0.5, 1e-12);
  EXPECT_NEAR(LearningRateAt(o, 110, 110, 10), 0.0, 1e-12);
  o.schedule = LrSchedule::kStep;
  o.step_gamma = 0.1;
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 20, 100, 10), 1.0);
  EXPECT_NEAR(LearningRateAt(o, 50, 100, 10), 0.1, 1e-12);
  EXPECT_NEAR(LearningRateAt(o, 80, 100, 10), 0.01, 1e-12);
  o.schedule = LrSchedule::kConstant;
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 99, 100, 10), 1.0);
}

TEST(TrainerCollapse, DeclaredAfterPatienceAtTrivialLossOnly) {
  CollapseDetector d({.patience = 3});
  // Healthy: spread large.
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(d.Observe(0.2, 0.2, 0.8));
  // Collapsed-looking for 2 steps, then recovering: the run resets.
  EXPECT_FALSE(d.Observe(0.2, 0.2, 0.01));
  EXPECT_FALSE(d.Observe(0.2, 0.2, 0.01));
  EXPECT_FALSE(d.Observe(0.1, 0.2, 0.5));
  EXPECT_FALSE(d.collapsed());
  // Small spread but the loss is not at its trivial value: no collapse.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(d.Observe(0.05, 0.2, 0.03));
  // Three steps at the trivial loss with tiny spread: declared once.
  EXPECT_FALSE(d.Observe(0.2, 0.2, 0.01));
  EXPECT_FALSE(d.Observe(0.2, 0.2, 0.01));
  EXPECT_TRUE(d.Observe(0.2, 0.2, 0.01));
  EXPECT_FALSE(d.Observe(0.2, 0.2, 0.01));
  EXPECT_TRUE(d.collapsed());
  EXPECT_NE(d.Explain().find("--mining"), std::string::npos);
}

TEST(TrainerCollapse, SpreadOfIdenticalRowsIsZero) {
  const std::vector<float> same = {1, 0, 1, 0, 1, 0};
  EXPECT_DOUBLE_EQ(EmbeddingSpread(same.data(), 3, 2), 0.0);
  const std::vector<float> two = {1, 0, -1, 0};
  EXPECT_DOUBLE_EQ(EmbeddingSpread(two.data(), 2, 2), 1.0);
}

}  // namespace
}  // namespace embedsearch
