// Everything a training run is configured by, with the default recipe, and
// the validation that turns bad values into InvalidArgument errors that
// name the flag and the allowed values.
#ifndef EMBEDSEARCH_TRAINER_TRAINER_OPTIONS_H_
#define EMBEDSEARCH_TRAINER_TRAINER_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data/augment.h"
#include "core/loss/embedding_loss.h"

namespace embedsearch {

enum class LrSchedule { kConstant, kStep, kCosine };
enum class OptimizerKind { kSgd, kAdam, kAdamW };
// What the EBM losses compare an image with: the other images of its batch
// (pairs, chosen by --mining) or one learned vector per class (the lecture's
// energy-based classifier, core/loss/class_energy_loss.h).
enum class AnswerSet { kBatch, kClasses };

// "constant", "step", "cosine".
absl::StatusOr<LrSchedule> ParseLrSchedule(absl::string_view name);
absl::string_view LrScheduleName(LrSchedule s);
// "sgd" (with momentum), "adam", "adamw".
absl::StatusOr<OptimizerKind> ParseOptimizerKind(absl::string_view name);
absl::string_view OptimizerKindName(OptimizerKind k);
// "batch", "classes".
absl::StatusOr<AnswerSet> ParseAnswerSet(absl::string_view name);
absl::string_view AnswerSetName(AnswerSet a);
// True for the losses defined on energies of answers (nll, energy,
// perceptron, hinge, log, square-square): the ones --answers=classes takes.
bool TakesClassAnswers(EmbeddingLossKind kind);

struct TrainerOptions {
  // Data: a Fashion-MNIST directory (train-/t10k- IDX files, gz or not) or
  // an image folder ROOT/<label>/* (then a seeded 1/6 of each class is held
  // out as test queries and the exported gallery holds every image).
  std::string data = "/usr/share/datasets/fashion-mnist";  // default
  std::string out;       // bundle directory; empty: no export
  std::string work_dir;  // checkpoints, metrics.jsonl, plots; required
  bool resume = false;   // default: start fresh (an existing checkpoint in
                         // work_dir is an error unless resume is set)
  int64_t train_limit = 0;  // default 0: all training images
  int64_t test_limit = 0;   // default 0: all test images
  // Classes never trained on, evaluated by leave-one-out retrieval each
  // epoch: a fraction in (0, 1) chosen by name hash with `seed`, or a file
  // of class names (trainer/holdout.h).
  std::string holdout_classes;  // default "": every class is trained on

  // Loss and mining.
  EmbeddingLossKind loss = EmbeddingLossKind::kTriplet;  // default: triplet
  Mining mining = Mining::kAll;  // default: batch-all (immune to collapse)
  // Margin; < 0 means the loss's own default (DefaultMargin).
  double margin = -1;            // default -1 (per loss)
  double p = 2;                  // default 2 (norm of the pair distance)
  bool swap = false;             // default off
  bool squared_energy = false;   // default off
  double beta = 1;               // default 1: inverse temperature of nll
  AnswerSet answers = AnswerSet::kBatch;  // default: the batch's images
  // > 0 (with answers = batch): adds class_weight x the class-answer NLL
  // (inverse temperature `beta`) to the batch loss, training class vectors
  // alongside. Default 0: off.
  double class_weight = 0;
  // Steps of batch-all before switching to `mining` when it is batch-hard or
  // semi-hard: the warm-up that keeps hard mining from collapsing at random
  // init. -1: automatic (one epoch); 0: none.
  int64_t mining_warmup_steps = -1;  // default -1 (auto)

  // Model.
  int dim = 64;             // default 64
  bool batch_norm = true;   // default on
  int hidden = 128;         // default 128
  std::vector<int> conv_channels = {32, 64};  // default: two convs, 32 and 64
  double dropout = 0;       // default 0 (off): dropout after the hidden layer
  // Architecture: a preset or a spec (core/nn/arch_spec.h). fmnist-small is
  // the layout of the four fields above; others ignore them. Default ""
  // (auto): colour-small for 3-channel input, else fmnist-small.
  std::string arch;
  std::string input;  // model input "HxWxC"; default "": the data's shape

  // Batches: P classes x K images.
  int classes_per_batch = 10;  // default P = 10 (all Fashion-MNIST classes)
  int images_per_class = 16;   // default K = 16 (batch of 160)

  // Optimisation.
  int epochs = 10;                                 // default 10
  OptimizerKind optimizer = OptimizerKind::kAdam;  // default adam
  double lr = 2e-3;                                // default 2e-3
  double momentum = 0.9;                           // default 0.9 (sgd)
  double weight_decay = 0;                         // default 0
  LrSchedule schedule = LrSchedule::kCosine;       // default cosine
  int64_t warmup_steps = 100;                      // default 100 (linear)
  double step_gamma = 0.1;    // default 0.1: step schedule multiplier ...
  int step_every_epochs = 0;  // ... every N epochs (0: at 1/2 and 3/4)
  bool augment = true;        // default on: flip + 2 px shift
  // With augment: mirror left-right (off for data that is not
  // mirror-symmetric: text, logos, flags).
  bool augment_flip = true;          // default on
  // The model embeds normalize(f(x) + f(mirror x)) (EncoderConfig::
  // flip_average): evaluation, export and the server all encode both views.
  bool flip_average = false;         // default off
  // With augment: random resized crop keeping at least this fraction of
  // the area (1: off) and brightness/contrast/saturation jitter of this
  // strength (0: off); see core/data/augment.h.
  double augment_crop_min_area = 1;  // default 1 (off)
  double augment_jitter = 0;         // default 0 (off)

  uint64_t seed = 1;        // default 1
  int threads = 2;          // default 2 (this machine's cores)
  int eval_every = 1;       // default: evaluate after every epoch
  // Collapse detector: steps the loss may sit at its collapsed value with
  // ~zero embedding spread before the warning.
  int collapse_patience = 100;  // default 100
  std::string index_spec = "HNSW32";  // default: the bundle's index
  // Image folders: the bundle stores each file as a PNG whose longer side
  // is at most this (0: full size); Fashion-MNIST stores its 28x28 images.
  int max_picture_side = 256;         // default 256 px
  std::string command_line;           // recorded in the bundle manifest
  bool progress_tty = false;          // default: plain lines (main passes
                                      // isatty(stderr))
  int log_every = 50;                 // default: plain line every 50 steps
  // Stop early, and export, after the first evaluation whose test
  // precision@1 is at least this (evaluations follow eval_every). 0: off.
  double stop_at_p1 = 0;              // default 0 (train every epoch)
  // Testing/ops hook: behave as if interrupted after this many global steps
  // (checkpoint, then Cancelled). 0: never.
  int64_t stop_after_steps = 0;       // default 0
  bool quiet = false;                 // default off: no progress output
};

// The augmentation of a run (options.augment on): Fashion-MNIST's flip +
// 2 px shift, with the flip, crop and jitter flags applied.
AugmentOptions AugmentOptionsOf(const TrainerOptions& options);

// The margin each loss uses unless --margin is given, tuned for unit-norm
// embeddings (distances in [0, 2]): triplet 0.2, cosine 0.7 (a cosine
// bound for negatives), hinge-embedding 0.4, hinge 0.2, square-square 1.0,
// the others 0.2 (log, nll and perceptron have no margin).
double DefaultMargin(EmbeddingLossKind kind);
// The mining each loss trains best with when --mining is not given: the pair
// losses (cosine, hinge-embedding) semi-hard, everything else batch-all.
// Measured: bench/results/trainer.md.
Mining DefaultMining(EmbeddingLossKind kind);
// options.margin, or DefaultMargin(options.loss) when it is negative.
double EffectiveMargin(const struct TrainerOptions& options);

// Named recipes (--preset), in the order --help lists them: "default" (the
// options above, unchanged) and "quality" (kQualityPreset*: the deeper
// layer-list encoder for P@1 >= 0.93 on Fashion-MNIST within an hour on 2
// cores; docs/training.md, "The quality preset").
std::vector<std::string> TrainerPresetNames();
inline constexpr char kQualityPresetArch[] = "c32x2,p,c64x2,p,c128x2,gap,fc128,fc64";
inline constexpr int kQualityPresetEpochs = 20;
inline constexpr int kQualityPresetEvalEvery = 4;
// One setting of a preset: a trainer flag (underscore spelling, e.g.
// "eval_every") and its value as the command line spells it. A preset is
// flags, not TrainerOptions fields, so that the trainer parses its values
// with the flags' own parsers and explicit flags override them the same way.
struct PresetFlag {
  std::string flag;
  std::string value;
};
// The settings of preset `name`, only those that differ from the defaults
// ("default" has none). InvalidArgument naming --preset for an unknown name.
// Pure.
absl::StatusOr<std::vector<PresetFlag>> TrainerPresetFlags(absl::string_view name);
// The preset's settings as flags, e.g. "--arch=... --epochs=12 ..." (--help);
// empty for an unknown name.
std::string DescribeTrainerPreset(absl::string_view name);

// InvalidArgument naming the bad field (flag spelling) and the valid range.
absl::Status ValidateTrainerOptions(const TrainerOptions& options);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_TRAINER_OPTIONS_H_
