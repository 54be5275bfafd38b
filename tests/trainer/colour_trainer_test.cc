// The trainer on a folder of colour pictures: an RGB model with measured
// per-channel statistics, colour augmentation that resumes exactly, and a
// bundle that stores the user's pictures.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/image/image.h"
#include "core/index/bundle.h"
#include "core/util/file.h"
#include "gtest/gtest.h"
#include "tests/trainer/trainer_testing.h"
#include "trainer/checkpoint.h"
#include "trainer/trainer.h"

namespace embedsearch {
namespace {

using testing::FreshDir;

namespace fs = std::filesystem;

// Four colour classes of noisy pictures, 8 each, 30..69 px, PNG and JPEG.
std::string ColourFolder() {
  static const std::string* root = [] {
    auto* dir = new std::string(FreshDir("colour_trainer", "pictures"));
    const uint8_t colours[4][3] = {
        {200, 40, 40}, {40, 180, 40}, {40, 40, 200}, {200, 200, 40}};
    std::mt19937 rng(4);
    for (int c = 0; c < 4; ++c) {
      const std::string label = absl::StrCat(*dir, "/class", c);
      fs::create_directories(label);
      for (int i = 0; i < 8; ++i) {
        Image image;
        image.width = 30 + static_cast<int>(rng() % 40);
        image.height = 30 + static_cast<int>(rng() % 40);
        image.channels = 3;
        for (int p = 0; p < image.width * image.height; ++p) {
          for (int k = 0; k < 3; ++k) {
            image.pixels.push_back(static_cast<uint8_t>(std::clamp(
                colours[c][k] + static_cast<int>(rng() % 81) - 40, 0, 255)));
          }
        }
        const std::string base = absl::StrCat(label, "/", i);
        EXPECT_TRUE(
            (i % 2 ? WriteFileAtomically(base + ".jpg", *EncodeJpeg(image))
                   : WriteFileAtomically(base + ".png", *EncodePng(image)))
                .ok());
      }
    }
    return dir;
  }();
  return *root;
}

TrainerOptions ColourRun(const std::string& name) {
  TrainerOptions o;
  o.data = ColourFolder();
  o.work_dir = FreshDir("colour_trainer", name);
  o.conv_channels = {4};
  o.hidden = 8;
  o.dim = 4;
  o.classes_per_batch = 4;
  o.images_per_class = 3;
  o.epochs = 3;
  o.warmup_steps = 2;
  o.threads = 1;
  o.eval_every = 0;
  o.index_spec = "Flat";
  o.quiet = true;
  o.augment_crop_min_area = 0.5;
  o.augment_jitter = 0.3;
  o.augment_flip = false;
  return o;
}

std::unique_ptr<Encoder> ModelFromCheckpoint(const std::string& work_dir) {
  absl::StatusOr<v1::TrainingCheckpoint> ckpt =
      LoadCheckpoint(work_dir + "/checkpoint.bin");
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  if (!ckpt.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<Encoder>> enc = Encoder::FromBytes(ckpt->model());
  EXPECT_TRUE(enc.ok()) << enc.status();
  return std::move(*enc);
}

TEST(ColourTrainer, RgbModelWithColourAugmentationResumesExactly) {
  TrainerOptions straight = ColourRun("straight");
  straight.out = straight.work_dir + "/bundle";
  absl::StatusOr<TrainResult> a = Train(straight);
  ASSERT_TRUE(a.ok()) << a.status();

  TrainerOptions split = ColourRun("split");
  split.stop_after_steps = 3;  // in the second epoch (2 steps per epoch)
  ASSERT_EQ(Train(split).status().code(), absl::StatusCode::kCancelled);
  split.stop_after_steps = 0;
  split.resume = true;
  ASSERT_TRUE(Train(split).ok());
  std::unique_ptr<Encoder> wa = ModelFromCheckpoint(straight.work_dir);
  std::unique_ptr<Encoder> wb = ModelFromCheckpoint(split.work_dir);
  EXPECT_EQ(wa->ToBytes(), wb->ToBytes());

  // Another augmentation is another run: resuming it is refused.
  split.augment_jitter = 0.1;
  EXPECT_EQ(Train(split).status().code(),
            absl::StatusCode::kFailedPrecondition);

  const EncoderConfig& config = wa->config();
  EXPECT_EQ(config.input_channels, 3);
  ASSERT_EQ(config.preprocessing.mean.size(), 3u);
  EXPECT_NE(config.preprocessing.mean[0], config.preprocessing.mean[1]);

  absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Load(straight.out);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  absl::StatusOr<CatalogItem> item = (*bundle)->gallery().Get(1);
  ASSERT_TRUE(item.ok());
  absl::StatusOr<Image> stored = DecodeImage(item->image_png);
  ASSERT_TRUE(stored.ok());
  const Image file = *DecodeImage(*ReadFile(item->source));
  EXPECT_EQ(stored->channels, 3);
  EXPECT_EQ(stored->width, file.width);    // the picture itself, not 28x28
  EXPECT_EQ(stored->pixels, file.pixels);  // PNG source: lossless
}

TEST(ColourTrainer, BadAugmentationFlagsAreRefused) {
  TrainerOptions o = ColourRun("bad");
  o.augment_crop_min_area = 0;
  EXPECT_NE(Train(o).status().message().find("--augment_crop_min_area"),
            std::string::npos);
  o = ColourRun("bad2");
  o.augment_jitter = 2;
  EXPECT_NE(Train(o).status().message().find("--augment_jitter"),
            std::string::npos);
  o = ColourRun("bad3");
  o.max_picture_side = -1;
  EXPECT_NE(Train(o).status().message().find("--max_picture_side"),
            std::string::npos);
}

}  // namespace
}  // namespace embedsearch
