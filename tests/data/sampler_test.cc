#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "core/data/augment.h"
#include "core/data/pk_sampler.h"
#include "core/data/rng.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

// 10 classes with uneven sizes (40..76 images), interleaved.
std::vector<int32_t> Labels() {
  std::vector<int32_t> labels;
  for (int c = 0; c < 10; ++c) {
    for (int i = 0; i < 40 + 4 * c; ++i) labels.push_back(c);
  }
  std::vector<int32_t> shuffled(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    shuffled[(i * 37) % labels.size()] = labels[i];  // 37 coprime to 580.
  }
  return shuffled;
}

TEST(PkSampler, EachBatchHasPClassesTimesKImages) {
  const auto labels = Labels();
  PkSamplerOptions options;
  options.classes_per_batch = 4;
  options.images_per_class = 3;
  auto sampler = PkSampler::Create(labels, options);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  EXPECT_EQ(sampler->batch_size(), 12);
  const int64_t batches = sampler->batches_in_epoch();
  EXPECT_GE(batches, 580 / 12 - 3);  // Nearly every image each epoch.
  std::set<size_t> seen;
  for (int64_t b = 0; b < batches; ++b) {
    const auto batch = sampler->NextBatch();
    ASSERT_EQ(batch.size(), 12u);
    std::set<int32_t> classes;
    for (int g = 0; g < 4; ++g) {
      const int32_t label = labels[batch[g * 3]];
      for (int k = 0; k < 3; ++k) ASSERT_EQ(labels[batch[g * 3 + k]], label);
      classes.insert(label);
    }
    EXPECT_EQ(classes.size(), 4u);
    for (size_t i : batch) {
      ASSERT_LT(i, labels.size());
      EXPECT_TRUE(seen.insert(i).second)
          << "image " << i << " twice in an epoch";
    }
  }
  EXPECT_EQ(sampler->state().epoch, 0);
  sampler->NextBatch();
  EXPECT_EQ(sampler->state().epoch, 1);
  EXPECT_EQ(sampler->state().step, 1);
}

TEST(PkSampler, SameSeedSameBatchesOtherSeedOtherBatches) {
  const auto labels = Labels();
  PkSamplerOptions options;
  auto a = PkSampler::Create(labels, options);
  auto b = PkSampler::Create(labels, options);
  options.seed = 2;
  auto c = PkSampler::Create(labels, options);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  bool differs = false;
  for (int i = 0; i < 50; ++i) {  // Crosses epoch boundaries.
    const auto batch = a->NextBatch();
    EXPECT_EQ(batch, b->NextBatch());
    differs |= batch != c->NextBatch();
  }
  EXPECT_TRUE(differs);
}

TEST(PkSampler, EpochsUseDifferentOrders) {
  auto sampler = PkSampler::Create(Labels());
  ASSERT_TRUE(sampler.ok());
  const auto first = sampler->NextBatch();
  for (int64_t i = 1; i < sampler->batches_in_epoch(); ++i)
    sampler->NextBatch();
  EXPECT_NE(sampler->NextBatch(), first);
}

TEST(PkSampler, RestoredStateContinuesIdentically) {
  const auto labels = Labels();
  PkSamplerOptions options;
  options.seed = 77;
  auto original = PkSampler::Create(labels, options);
  ASSERT_TRUE(original.ok());
  for (int i = 0; i < 23; ++i) original->NextBatch();
  const PkSamplerState saved = original->state();
  // A fresh sampler with a different seed, as after a restart with defaults.
  auto resumed = PkSampler::Create(labels);
  ASSERT_TRUE(resumed.ok());
  ASSERT_TRUE(resumed->Restore(saved).ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(original->NextBatch(), resumed->NextBatch()) << "batch " << i;
  }
  PkSamplerState bad = saved;
  bad.step = 1'000'000;
  EXPECT_EQ(resumed->Restore(bad).code(), absl::StatusCode::kInvalidArgument);
  bad.step = -1;
  EXPECT_EQ(resumed->Restore(bad).code(), absl::StatusCode::kInvalidArgument);
}

TEST(PkSampler, RefusesTooFewClasses) {
  std::vector<int32_t> labels = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2};
  PkSamplerOptions options;
  options.classes_per_batch = 3;
  options.images_per_class = 4;  // Class 2 has only 2 images.
  EXPECT_EQ(PkSampler::Create(labels, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.classes_per_batch = 2;
  auto sampler = PkSampler::Create(labels, options);
  ASSERT_TRUE(sampler.ok());
  for (size_t i : sampler->NextBatch()) EXPECT_NE(labels[i], 2);
  options.classes_per_batch = 1;
  EXPECT_FALSE(PkSampler::Create(labels, options).ok());
}

// Classes of 4 images (emoji: one per vendor), 3 and 2 of them, and one of
// a single image, with K = 4.
std::vector<int32_t> SmallClassLabels() {
  std::vector<int32_t> labels;
  for (int c = 0; c < 6; ++c) {
    const int n = c < 3 ? 4 : c < 5 ? 3 - (c - 3) : 1;  // 4,4,4,3,2,1
    for (int i = 0; i < n; ++i) labels.push_back(c);
  }
  return labels;
}

TEST(PkSampler, ClassesSmallerThanKFillTheirGroupByRepetition) {
  const auto labels = SmallClassLabels();
  PkSamplerOptions options;
  options.classes_per_batch = 5;
  options.images_per_class = 4;
  options.min_images_per_class = 2;
  auto sampler = PkSampler::Create(labels, options);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  EXPECT_EQ(sampler->excluded_labels(), std::vector<int32_t>({5}));
  EXPECT_EQ(sampler->padded_classes(), 2);
  for (int epoch = 0; epoch < 5; ++epoch) {
    ASSERT_EQ(sampler->batches_in_epoch(), 1);
    const auto batch = sampler->NextBatch();
    ASSERT_EQ(batch.size(), 20u);
    std::map<int32_t, std::set<size_t>> distinct;
    for (int g = 0; g < 5; ++g) {
      const int32_t label = labels[batch[g * 4]];
      for (int k = 0; k < 4; ++k) {
        ASSERT_EQ(labels[batch[g * 4 + k]], label);
        distinct[label].insert(batch[g * 4 + k]);
      }
    }
    ASSERT_EQ(distinct.size(), 5u);
    EXPECT_EQ(distinct.count(5), 0u) << "the one-image class was sampled";
    // Every image of a small class is in its group; the rest are repeats.
    EXPECT_EQ(distinct[3].size(), 3u);
    EXPECT_EQ(distinct[4].size(), 2u);
    EXPECT_EQ(distinct[0].size(), 4u);
  }
}

TEST(PkSampler, WithoutAMinimumSmallClassesAreSkippedAndReported) {
  const auto labels = SmallClassLabels();
  PkSamplerOptions options;
  options.classes_per_batch = 3;
  options.images_per_class = 4;
  auto sampler = PkSampler::Create(labels, options);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  EXPECT_EQ(sampler->excluded_labels(), std::vector<int32_t>({3, 4, 5}));
  EXPECT_EQ(sampler->padded_classes(), 0);
  for (size_t i : sampler->NextBatch()) EXPECT_LT(labels[i], 3);
}

TEST(PkSampler, RefusesAMinimumOutsideTwoToK) {
  const auto labels = SmallClassLabels();
  PkSamplerOptions options;
  options.classes_per_batch = 2;
  options.images_per_class = 4;
  for (int bad : {1, 5, -1}) {
    options.min_images_per_class = bad;
    EXPECT_EQ(PkSampler::Create(labels, options).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(PkSampler, PaddedSamplingIsDeterministicAndRestorable) {
  const auto labels = SmallClassLabels();
  PkSamplerOptions options;
  options.classes_per_batch = 2;
  options.images_per_class = 4;
  options.min_images_per_class = 2;
  options.seed = 9;
  auto a = PkSampler::Create(labels, options);
  auto b = PkSampler::Create(labels, options);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<std::vector<size_t>> first;
  for (int i = 0; i < 7; ++i) {
    first.push_back(a->NextBatch());
    EXPECT_EQ(first.back(), b->NextBatch());
  }
  auto c = PkSampler::Create(labels, options);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->Restore({9, 1, 0}).ok());
  const int64_t epoch0 = a->batches_in_epoch();  // 2 batches of 2 groups
  EXPECT_EQ(c->NextBatch(), first[epoch0]);
}

TEST(Rng, UniformStaysInRangeAndCoversIt) {
  Rng rng(3);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 7000; ++i) ++counts[rng.Uniform(7)];
  for (int c : counts) {
    EXPECT_GT(c, 800);
    EXPECT_LT(c, 1200);
  }
  Rng copy(3);
  Rng::State state = copy.state();
  const uint64_t first = copy.Next();
  copy.set_state(state);
  EXPECT_EQ(copy.Next(), first);
}

std::vector<uint8_t> Ramp() {
  std::vector<uint8_t> image(28 * 28);
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x)
      image[y * 28 + x] = static_cast<uint8_t>(1 + x + 28 * (y % 8));
  }
  return image;
}

TEST(Augment, DeterministicForAGivenRngState) {
  const auto in = Ramp();
  AugmentOptions options;
  options.erase_probability = 0.5f;
  Rng a(11), b(11);
  for (int i = 0; i < 20; ++i) {
    std::vector<uint8_t> out_a(in.size()), out_b(in.size());
    AugmentImage(in.data(), 28, 28, options, &a, out_a.data());
    AugmentImage(in.data(), 28, 28, options, &b, out_b.data());
    ASSERT_EQ(out_a, out_b);
  }
}

TEST(Augment, FlipMirrorsAndShiftMovesWithZeroPadding) {
  const auto in = Ramp();
  AugmentOptions flip_only;
  flip_only.max_shift = 0;
  Rng rng(1);
  int flipped = 0, kept = 0;
  for (int i = 0; i < 40; ++i) {
    std::vector<uint8_t> out(in.size());
    AugmentImage(in.data(), 28, 28, flip_only, &rng, out.data());
    if (out == in) {
      ++kept;
    } else {
      ++flipped;
      for (int y = 0; y < 28; ++y) {
        for (int x = 0; x < 28; ++x)
          ASSERT_EQ(out[y * 28 + x], in[y * 28 + 27 - x]);
      }
    }
  }
  EXPECT_GT(flipped, 5);
  EXPECT_GT(kept, 5);

  AugmentOptions shift_only;
  shift_only.horizontal_flip = false;
  shift_only.max_shift = 3;
  std::set<std::pair<int, int>> shifts;
  for (int i = 0; i < 200; ++i) {
    std::vector<uint8_t> out(in.size());
    AugmentImage(in.data(), 28, 28, shift_only, &rng, out.data());
    // Recover the shift from where the ramp's (unique) pixel 0,0 value went.
    bool found = false;
    for (int dy = -3; dy <= 3 && !found; ++dy) {
      for (int dx = -3; dx <= 3 && !found; ++dx) {
        bool match = true;
        for (int y = 0; y < 28 && match; ++y) {
          for (int x = 0; x < 28 && match; ++x) {
            const int sy = y - dy, sx = x - dx;
            const uint8_t want = (sy < 0 || sy >= 28 || sx < 0 || sx >= 28)
                                     ? 0
                                     : in[sy * 28 + sx];
            match = out[y * 28 + x] == want;
          }
        }
        if (match) {
          found = true;
          shifts.insert({dx, dy});
        }
      }
    }
    ASSERT_TRUE(found) << "output is not a zero-padded shift of at most 3";
  }
  EXPECT_GT(shifts.size(), 30u);  // Of the 49 possible.
}

TEST(Augment, ErasingZeroesOneRectangle) {
  std::vector<uint8_t> in(28 * 28, 200);
  AugmentOptions options;
  options.horizontal_flip = false;
  options.max_shift = 0;
  options.erase_probability = 1.0f;
  options.erase_min_side = 4;
  options.erase_max_side = 6;
  Rng rng(8);
  std::vector<uint8_t> batch(in);
  batch.insert(batch.end(), in.begin(), in.end());
  AugmentBatch(batch.data(), 2, 28, 28, options, &rng);
  for (int i = 0; i < 2; ++i) {
    const int zeros = static_cast<int>(
        std::count(batch.begin() + i * 784, batch.begin() + (i + 1) * 784, 0));
    EXPECT_GE(zeros, 16);
    EXPECT_LE(zeros, 36);
  }
}

}  // namespace
}  // namespace embedsearch
