// Held-out classes: the split (by name, not load order), leave-one-out
// retrieval on data whose answer is known, and a short training run on a
// synthetic image folder that records the split in the bundle and GetInfo.
#include "tests/trainer/trainer_testing.h"
#include "trainer/holdout.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/data/rng.h"
#include "core/image/image.h"
#include "core/index/bundle.h"
#include "core/util/file.h"
#include "gtest/gtest.h"
#include "server/service.h"
#include "trainer/retrieval_metrics.h"
#include "trainer/trainer.h"

namespace embedsearch {
namespace {

using testing::FreshDir;

std::vector<std::string> ClassNames(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(absl::StrCat("class-", i));
  return names;
}

TEST(HoldoutSplit, FractionDependsOnNamesNotOnTheirOrder) {
  std::vector<std::string> names = ClassNames(40);
  absl::StatusOr<HoldoutSplit> a = SplitClassesByFraction(names, 0.5, 7);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->held_out.size(), 20u);
  EXPECT_EQ(a->seen.size(), 20u);
  EXPECT_TRUE(std::is_sorted(a->held_out.begin(), a->held_out.end()));
  Rng rng(3);
  for (int trial = 0; trial < 5; ++trial) {
    rng.Shuffle(&names);
    absl::StatusOr<HoldoutSplit> b = SplitClassesByFraction(names, 0.5, 7);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->held_out, a->held_out);
    EXPECT_EQ(b->seen, a->seen);
  }
  absl::StatusOr<HoldoutSplit> other_seed =
      SplitClassesByFraction(names, 0.5, 8);
  ASSERT_TRUE(other_seed.ok());
  EXPECT_NE(other_seed->held_out, a->held_out);
}

TEST(HoldoutSplit, LargerFractionHoldsOutASuperset) {
  const std::vector<std::string> names = ClassNames(30);
  absl::StatusOr<HoldoutSplit> small = SplitClassesByFraction(names, 0.2, 1);
  absl::StatusOr<HoldoutSplit> large = SplitClassesByFraction(names, 0.6, 1);
  ASSERT_TRUE(small.ok() && large.ok());
  EXPECT_EQ(small->held_out.size(), 6u);
  EXPECT_EQ(large->held_out.size(), 18u);
  EXPECT_TRUE(std::includes(large->held_out.begin(), large->held_out.end(),
                            small->held_out.begin(), small->held_out.end()));
}

TEST(HoldoutSplit, RefusesSplitsWithAnEmptySide) {
  const std::vector<std::string> names = ClassNames(3);
  EXPECT_EQ(SplitClassesByFraction(names, 0.1, 1).status().code(),
            absl::StatusCode::kInvalidArgument);  // rounds to 0 classes
  EXPECT_EQ(SplitClassesByFraction(names, 0.9, 1).status().code(),
            absl::StatusCode::kInvalidArgument);  // rounds to all 3
  EXPECT_EQ(SplitClassesByFraction(names, 1.5, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitClassesByList(names, names).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HoldoutSplit, FileListsClassNamesAndUnknownNamesAreRefused) {
  const std::string dir = FreshDir("holdout", "list");
  const std::string list = dir + "/held_out.txt";
  ASSERT_TRUE(
      WriteFileAtomically(list, "# unseen\n class-3 \n\nclass-1\n").ok());
  absl::StatusOr<HoldoutSplit> split =
      ChooseHeldOutClasses(ClassNames(5), list, 4);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->held_out, std::vector<std::string>({"class-1", "class-3"}));
  EXPECT_EQ(split->seen,
            std::vector<std::string>({"class-0", "class-2", "class-4"}));
  EXPECT_EQ(split->spec, list);

  ASSERT_TRUE(WriteFileAtomically(list, "class-1\nclass-9\n").ok());
  absl::Status bad = ChooseHeldOutClasses(ClassNames(5), list, 4).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("class-9"), std::string::npos) << bad;
  EXPECT_EQ(ChooseHeldOutClasses(ClassNames(5), dir + "/missing.txt", 4)
                .status()
                .code(),
            absl::StatusCode::kNotFound);

  absl::StatusOr<HoldoutSplit> none =
      ChooseHeldOutClasses(ClassNames(5), "", 4);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->active());
  EXPECT_EQ(none->seen.size(), 5u);
}

TEST(HoldoutSplit, ProtoRoundTrip) {
  absl::StatusOr<HoldoutSplit> split =
      SplitClassesByFraction(ClassNames(10), 0.3, 11);
  ASSERT_TRUE(split.ok());
  split->spec = "0.3";
  const HoldoutSplit back = HoldoutSplitFromProto(HoldoutSplitToProto(*split));
  EXPECT_EQ(back.spec, "0.3");
  EXPECT_EQ(back.seed, 11u);
  EXPECT_EQ(back.seen, split->seen);
  EXPECT_EQ(back.held_out, split->held_out);
}

// Points 1-D (dim 2, second coordinate 0) at `xs` with `labels`.
std::vector<float> OnALine(const std::vector<float>& xs) {
  std::vector<float> emb;
  for (float x : xs) emb.insert(emb.end(), {x, 0.f});
  return emb;
}

TEST(LeaveOneOut, WellSeparatedClustersAreFoundPerfectly) {
  // Three tight clusters far apart: every other member of a query's class
  // is nearer than any other class's.
  std::vector<float> xs;
  std::vector<int32_t> labels;
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 4; ++i) {
      xs.push_back(100.f * c + 0.1f * i);
      labels.push_back(c);
    }
  }
  const std::vector<float> emb = OnALine(xs);
  absl::StatusOr<RetrievalMetrics> m =
      EvaluateLeaveOneOut(emb.data(), labels, 2);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->queries, 12);
  EXPECT_DOUBLE_EQ(m->precision_at_1, 1.0);
  EXPECT_DOUBLE_EQ(m->map_at_r, 1.0);
  // The same set as ordinary queries against itself would also be 1.0 but
  // only because each finds itself; leave-one-out must not.
}

TEST(LeaveOneOut, NeighboursOfAnotherClassGiveZero) {
  // 0 1 0 1 ... one unit apart: each point's nearest (at distance 1) is of
  // the other class; its own class starts at distance 2.
  std::vector<float> xs;
  std::vector<int32_t> labels;
  for (int i = 0; i < 10; ++i) {
    xs.push_back(static_cast<float>(i));
    labels.push_back(i % 2);
  }
  const std::vector<float> emb = OnALine(xs);
  absl::StatusOr<RetrievalMetrics> m =
      EvaluateLeaveOneOut(emb.data(), labels, 2);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->precision_at_1, 0.0);
  EXPECT_GT(m->recall_at_5, 0.0);  // the own class is found further down
}

TEST(LeaveOneOut, IdenticalEmbeddingsRankInGalleryOrderWithoutTheQuery) {
  // Every item at the same point: ranks are gallery order minus the query.
  // Class 0 = items 0..2, class 1 = 3..5: the nearest of item 0 is item 1
  // (hit), of items 1, 2 item 0 (hit), of items 3..5 item 0 (miss).
  const std::vector<float> emb = OnALine({5, 5, 5, 5, 5, 5});
  const std::vector<int32_t> labels = {0, 0, 0, 1, 1, 1};
  absl::StatusOr<RetrievalMetrics> m =
      EvaluateLeaveOneOut(emb.data(), labels, 2);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->precision_at_1, 0.5);
  // R = 2 for everyone; class 0 gets both others first (AP 1), class 1's
  // two others come after class 0's three (ranks 4, 5: beyond R, AP 0).
  EXPECT_DOUBLE_EQ(m->map_at_r, 0.5);
}

TEST(LeaveOneOut, AClassOfOneIsAMissAndTooFewItemsAreRefused) {
  const std::vector<float> emb = OnALine({0, 0.1f, 50});
  absl::StatusOr<RetrievalMetrics> m =
      EvaluateLeaveOneOut(emb.data(), {0, 0, 1}, 2);
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR(m->precision_at_1, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(EvaluateLeaveOneOut(emb.data(), {0}, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ROOT/<class>/<i>.png: class c is a 28x28 gray image with a bright
// square at a class-specific place, plus a little per-image noise.
std::string SyntheticFolder(const std::string& name, int classes,
                            int per_class) {
  const std::string root = FreshDir("holdout", name);
  Rng rng(5);
  for (int c = 0; c < classes; ++c) {
    const std::string dir = absl::StrCat(root, "/shape-", c);
    std::filesystem::create_directories(dir);
    for (int i = 0; i < per_class; ++i) {
      Image img{28, 28, 1, std::vector<uint8_t>(28 * 28)};
      for (auto& p : img.pixels) p = static_cast<uint8_t>(rng.Uniform(30));
      const int y0 = 2 + (c / 4) * 6, x0 = 2 + (c % 4) * 6;
      for (int y = y0; y < y0 + 6; ++y)
        for (int x = x0; x < x0 + 6; ++x) img.pixels[y * 28 + x] = 250;
      absl::StatusOr<std::string> png = EncodePng(img);
      EXPECT_TRUE(png.ok());
      EXPECT_TRUE(
          WriteFileAtomically(absl::StrCat(dir, "/", i, ".png"), *png).ok());
    }
  }
  return root;
}

TEST(HoldoutTrainer, ImageFolderRunEvaluatesHeldOutClassesAndRecordsTheSplit) {
  const std::string data = SyntheticFolder("folder", 12, 6);
  TrainerOptions o;
  o.data = data;
  o.work_dir = FreshDir("holdout", "work");
  o.out = o.work_dir + "/bundle";
  o.holdout_classes = "0.5";
  o.classes_per_batch = 3;
  o.images_per_class = 4;
  o.epochs = 2;
  o.warmup_steps = 2;
  o.threads = 1;
  o.index_spec = "Flat";
  o.quiet = true;
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->history.size(), 2u);
  for (const EpochRecord& rec : r->history) {
    ASSERT_TRUE(rec.held_out_evaluated);
    EXPECT_EQ(rec.held_out.queries, 36);  // 6 classes x 6 images
    // Each class is one bright square: found even by an encoder that
    // never saw it.
    EXPECT_GE(rec.held_out.precision_at_1, 0.9);
  }
  absl::StatusOr<std::string> jsonl = ReadFile(o.work_dir + "/metrics.jsonl");
  ASSERT_TRUE(jsonl.ok());
  EXPECT_NE(jsonl->find("\"held_out\":{\"queries\":36,"), std::string::npos)
      << *jsonl;
  absl::StatusOr<std::string> svg =
      ReadFile(o.work_dir + "/training_curve.svg");
  ASSERT_TRUE(svg.ok());
  EXPECT_NE(svg->find("held-out classes"), std::string::npos);

  absl::StatusOr<HoldoutSplit> expected =
      SplitClassesByFraction(ClassNames(0), 0.5, o.seed);  // (empty: refused)
  EXPECT_FALSE(expected.ok());
  std::vector<std::string> names;
  for (int c = 0; c < 12; ++c) names.push_back(absl::StrCat("shape-", c));
  expected = SplitClassesByFraction(names, 0.5, o.seed);
  ASSERT_TRUE(expected.ok());

  absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Load(o.out);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ((*bundle)->gallery().size(), 72) << "training and held-out images";
  const v1::ClassSplit& split = (*bundle)->manifest().class_split();
  EXPECT_EQ(split.spec(), "0.5");
  EXPECT_EQ(split.seed(), o.seed);
  EXPECT_EQ(std::vector<std::string>(split.held_out_classes().begin(),
                                     split.held_out_classes().end()),
            expected->held_out);
  EXPECT_EQ(split.seen_classes_size(), 6);

  // The run's list of held-out classes gives the same split as input.
  absl::StatusOr<HoldoutSplit> again =
      ChooseHeldOutClasses(names, o.work_dir + "/held_out_classes.txt", o.seed);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->held_out, expected->held_out);

  SearchService service;
  ASSERT_TRUE(service.LoadBundle(o.out).ok());
  absl::StatusOr<v1::GetInfoResponse> info = service.GetInfo({});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(std::vector<std::string>(info->held_out_label_names().begin(),
                                     info->held_out_label_names().end()),
            expected->held_out);
}

TEST(HoldoutTrainer, ResumedRunKeepsTheEarlierEpochsHeldOutMetrics) {
  const std::string data = SyntheticFolder("resume", 8, 5);
  TrainerOptions o;
  o.data = data;
  o.work_dir = FreshDir("holdout", "resume_work");
  o.holdout_classes = "0.5";
  o.classes_per_batch = 2;
  o.images_per_class = 4;
  o.epochs = 2;
  o.warmup_steps = 2;
  o.threads = 1;
  o.quiet = true;
  absl::StatusOr<TrainResult> whole = Train(o);
  ASSERT_TRUE(whole.ok()) << whole.status();

  o.work_dir = FreshDir("holdout", "resume_work2");
  TrainerOptions first = o;
  first.epochs = 2;
  first.stop_after_steps = whole->history[0].steps + 1;  // into epoch 2
  EXPECT_TRUE(absl::IsCancelled(Train(first).status()));
  o.resume = true;
  absl::StatusOr<TrainResult> resumed = Train(o);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_EQ(resumed->history.size(), 2u);
  for (int e = 0; e < 2; ++e) {
    ASSERT_TRUE(resumed->history[e].held_out_evaluated) << e;
    EXPECT_EQ(resumed->history[e].held_out.precision_at_1,
              whole->history[e].held_out.precision_at_1);
    EXPECT_EQ(resumed->history[e].held_out.map_at_r,
              whole->history[e].held_out.map_at_r);
  }
  // A checkpoint of another split is refused.
  o.holdout_classes = "0.25";
  EXPECT_EQ(Train(o).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(HoldoutTrainer, FractionOutsideZeroToOneIsRefusedBeforeLoading) {
  TrainerOptions o;
  o.work_dir = "unused";
  for (const char* bad : {"0", "1", "1.5", "-0.2"}) {
    o.holdout_classes = bad;
    absl::Status s = ValidateTrainerOptions(o);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("--holdout_classes"), std::string::npos) << s;
  }
  o.holdout_classes = "0.5";
  EXPECT_TRUE(ValidateTrainerOptions(o).ok());
  o.holdout_classes = "classes.txt";  // a file: checked when loading
  EXPECT_TRUE(ValidateTrainerOptions(o).ok());
}

TEST(HoldoutTrainer, AClassWithOneTrainingImageIsKeptOutAndNamed) {
  // 4 classes of 6 images train (5 each after the test sixth, K = 4); the
  // class of 2 keeps one image for training, which has no positive.
  const std::string data = SyntheticFolder("lonely", 4, 6);
  std::filesystem::create_directories(data + "/zz-lonely");
  for (const char* f : {"/a.png", "/b.png"}) {
    std::filesystem::copy_file(data + "/shape-0/0.png", data + "/zz-lonely" + f);
  }
  TrainerOptions o;
  o.data = data;
  o.work_dir = FreshDir("holdout", "lonely_work");
  o.classes_per_batch = 2;
  o.images_per_class = 4;
  o.epochs = 1;
  o.warmup_steps = 1;
  o.threads = 1;
  o.log_every = 1000;
  ::testing::internal::CaptureStderr();
  absl::StatusOr<TrainResult> r = Train(o);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(log.find("kept out of training (fewer than 2 training images: "
                     "no positive pair; their images stay in the gallery): "
                     "1 class (\"zz-lonely\")"),
            std::string::npos)
      << log;
}

TEST(HoldoutTrainer, FashionMnistGalleryKeepsEveryTrainingImage) {
  TrainerOptions o;
  o.data = EMBEDSEARCH_FASHION_MNIST_DIR;
  o.train_limit = 400;
  o.test_limit = 200;
  o.holdout_classes = "0.3";
  absl::StatusOr<TrainingData> data = LoadTrainingData(o);
  ASSERT_TRUE(data.ok()) << data.status();
  const TrainingData before = *data;
  absl::StatusOr<HeldOutClasses> held = SplitOffHeldOutClasses(o, &*data);
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_EQ(held->split.held_out.size(), 3u);
  EXPECT_FALSE(data->gallery_is_train);
  EXPECT_EQ(data->gallery.size(), 400u);
  const std::set<std::string> unseen(held->split.held_out.begin(),
                                     held->split.held_out.end());
  for (size_t i = 0; i < data->train.size(); ++i) {
    EXPECT_EQ(unseen.count(data->train.label_names[data->train.labels[i]]), 0u);
  }
  size_t test_unseen = 0;
  for (size_t i = 0; i < before.test.size(); ++i) {
    test_unseen += unseen.count(before.test.label_names[before.test.labels[i]]);
  }
  EXPECT_EQ(held->images.size(), test_unseen);
  EXPECT_EQ(data->test.size() + held->images.size(), before.test.size());
}

}  // namespace
}  // namespace embedsearch
