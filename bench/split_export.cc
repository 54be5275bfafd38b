// Exports an image folder exactly as embedsearch-trainer sees it, so that a
// peer trainer in another framework (bench/torch_trainer.py --split) trains
// and evaluates on the same images: the same seen/held-out classes
// (--holdout_classes, trainer/holdout.h), the same seeded 1/6 of each seen
// class kept out as test queries, the same fitting to --input (resize
// policy, white background) and the same per-channel mean/std the trainer
// measures on its training images. It calls the trainer's own functions
// (LoadTrainingData, SplitOffHeldOutClasses, MeasuredPreprocessing), so
// nothing is re-implemented.
//
// Usage: split_export --data out/datasets/emoji --input 32x32x3
//          --holdout_classes 0.5 --seed 1 --out DIR
// Writes into DIR (created):
//   train.u8, test.u8, held_out.u8   images, N x H x W x C bytes each
//   train.labels, test.labels, held_out.labels
//                                    int32 little-endian, one per image: an
//                                    index into meta.json's class_names (all
//                                    classes of the folder)
//   meta.json                        shape, counts, mean/std, class names
//   held_out_classes.txt             as the trainer writes into --work_dir
// Exit status 1 with a message on any error.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/data/dataset.h"
#include "core/util/file.h"
#include "core/util/json.h"
#include "core/util/status_macros.h"
#include "trainer/holdout.h"
#include "trainer/trainer.h"
#include "trainer/trainer_options.h"

ABSL_FLAG(std::string, data, "out/datasets/emoji", "image folder ROOT/<label>/*");
ABSL_FLAG(std::string, input, "32x32x3", "the trainer's --input");
ABSL_FLAG(std::string, holdout_classes, "0.5", "the trainer's --holdout_classes");
ABSL_FLAG(uint64_t, seed, 1, "the trainer's --seed");
ABSL_FLAG(std::string, out, "", "output directory (required)");

namespace embedsearch {
namespace {

absl::Status WriteImages(const Dataset& d, const std::string& dir,
                         const std::string& name) {
  RETURN_IF_ERROR(WriteFileAtomically(
      absl::StrCat(dir, "/", name, ".u8"),
      std::string(d.pixels.begin(), d.pixels.end())));
  std::string labels(d.labels.size() * sizeof(int32_t), '\0');
  for (size_t i = 0; i < d.labels.size(); ++i) {
    const uint32_t v = static_cast<uint32_t>(d.labels[i]);
    for (int b = 0; b < 4; ++b) labels[4 * i + b] = static_cast<char>(v >> (8 * b));
  }
  return WriteFileAtomically(absl::StrCat(dir, "/", name, ".labels"), labels);
}

absl::Status Export(const std::string& out) {
  TrainerOptions o;
  o.data = absl::GetFlag(FLAGS_data);
  o.input = absl::GetFlag(FLAGS_input);
  o.holdout_classes = absl::GetFlag(FLAGS_holdout_classes);
  o.seed = absl::GetFlag(FLAGS_seed);
  ASSIGN_OR_RETURN(TrainingData data, LoadTrainingData(o));
  if (data.gallery_is_train) {
    return absl::InvalidArgumentError("--data must be an image folder");
  }
  ASSIGN_OR_RETURN(HeldOutClasses held, SplitOffHeldOutClasses(o, &data));
  const Preprocessing pre = MeasuredPreprocessing(data.train);
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  RETURN_IF_ERROR(WriteImages(data.train, out, "train"));
  RETURN_IF_ERROR(WriteImages(data.test, out, "test"));
  RETURN_IF_ERROR(WriteImages(held.images, out, "held_out"));
  RETURN_IF_ERROR(WriteHeldOutClassList(held.split, out));
  const Json meta = {
      {"height", data.train.height},
      {"width", data.train.width},
      {"channels", data.train.channels},
      {"mean", pre.mean},
      {"std", pre.std},
      {"train_images", data.train.size()},
      {"test_images", data.test.size()},
      {"held_out_images", held.images.size()},
      {"class_names", data.train.label_names},
      {"held_out_classes", held.split.held_out},
      {"holdout_classes", o.holdout_classes},
      {"seed", o.seed}};
  return WriteFileAtomically(absl::StrCat(out, "/meta.json"),
                             JsonText(meta) + "\n");
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::fprintf(stderr, "split_export: --out DIR is required\n");
    return 2;
  }
  const absl::Status s = embedsearch::Export(out);
  if (!s.ok()) {
    std::fprintf(stderr, "split_export: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
