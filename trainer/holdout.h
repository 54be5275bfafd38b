// Held-out classes (--holdout_classes): the metric-learning field's test of
// finding what was never trained on (CUB-200, Cars-196, Stanford Online
// Products). Some classes are removed from training altogether; after each
// evaluated epoch every image of those classes queries all the other
// held-out images (leave-one-out retrieval: P@1, R@k, MAP@R as for the
// test queries). The exported gallery holds the training and the held-out
// images, and the bundle manifest records the split (ClassSplit).
//
// Which classes: a fraction F of them, chosen by name, or the classes named
// in a file. A fraction takes the round(F * n) classes with the smallest
// key SHA-256("<seed>:<name>"), so the split depends only on the set of
// class names and the seed, not on the order classes are loaded in, and a
// larger F holds out a superset of a smaller one's classes.
//
// Functions here are stateless and thread-compatible.
#ifndef EMBEDSEARCH_TRAINER_HOLDOUT_H_
#define EMBEDSEARCH_TRAINER_HOLDOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset.h"
#include "core/nn/encoder.h"
#include "embedsearch/v1/bundle.pb.h"
#include "trainer/retrieval_metrics.h"
#include "trainer/trainer.h"

namespace embedsearch {

struct HoldoutSplit {
  std::string spec;                   // --holdout_classes as given
  uint64_t seed = 0;                  // the run's --seed
  std::vector<std::string> seen;      // trained on, sorted
  std::vector<std::string> held_out;  // never trained on, sorted
  bool active() const { return !held_out.empty(); }
};

// The classes with the round(fraction * n) smallest name keys (see above).
// InvalidArgument unless 0 < fraction < 1 and the split leaves at least one
// class on each side.
absl::StatusOr<HoldoutSplit> SplitClassesByFraction(
    const std::vector<std::string>& class_names, double fraction,
    uint64_t seed);
// The classes named in `listed` (duplicates allowed). InvalidArgument for a
// name that is not a class (named in the message) or a split that leaves no
// class on one side.
absl::StatusOr<HoldoutSplit> SplitClassesByList(
    const std::vector<std::string>& class_names,
    const std::vector<std::string>& listed);
// `spec` as --holdout_classes takes it: "" (nothing held out: an inactive
// split), a number in (0, 1) (a fraction), or the path of a text file with
// one class name a line (blank lines and lines starting with '#' ignored,
// surrounding spaces trimmed). NotFound for a missing file.
absl::StatusOr<HoldoutSplit> ChooseHeldOutClasses(
    const std::vector<std::string>& class_names, const std::string& spec,
    uint64_t seed);

// The manifest's record of `split` (ClassSplit in bundle.proto), and back.
v1::ClassSplit HoldoutSplitToProto(const HoldoutSplit& split);
HoldoutSplit HoldoutSplitFromProto(const v1::ClassSplit& proto);

// A run's held-out classes and their images.
struct HeldOutClasses {
  HoldoutSplit split;  // inactive without --holdout_classes
  Dataset images;      // every image of the held-out classes
};

// Applies options.holdout_classes to `data` (as LoadTrainingData made it):
// removes the held-out classes' images from data->train and data->test and
// keeps them in the result. The gallery keeps every image: an image folder
// already exports all of them; for Fashion-MNIST the gallery becomes the
// whole training file (seen and held-out classes) and the held-out images
// are the held-out classes' test images. Errors: those of
// ChooseHeldOutClasses, InvalidArgument when fewer than two held-out
// images remain. Without the option, returns an inactive split and leaves
// `data` alone.
absl::StatusOr<HeldOutClasses> SplitOffHeldOutClasses(
    const TrainerOptions& options, TrainingData* data);

// Writes work_dir/held_out_classes.txt: a comment line with the spec and
// seed, then the held-out class names one a line: the format
// --holdout_classes reads, so another run (or the PyTorch peer in bench/)
// can use the same split. Nothing for an inactive split. Errors: those of
// WriteFileAtomically.
absl::Status WriteHeldOutClassList(const HoldoutSplit& split,
                                   const std::string& work_dir);

// One line for the log: how many classes and images each side has.
std::string DescribeHeldOutClasses(const HeldOutClasses& held_out,
                                   const TrainingData& data);
// One line naming the classes the PK sampler left out for having fewer
// than two training images (no positive pair), or "" when there are none.
std::string DescribeExcludedClasses(const std::vector<int32_t>& labels,
                                    const Dataset& train);

// Leave-one-out retrieval among the held-out images, encoded by `encoder`.
// Stores the result in record->held_out (held_out_evaluated = true); does
// nothing for an inactive split.
absl::Status EvaluateHeldOutClasses(const HeldOutClasses& held_out,
                                    const Encoder& encoder, int threads,
                                    EpochRecord* record);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_HOLDOUT_H_
