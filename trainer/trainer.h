// The training run: data -> PK batches (+ augmentation) -> encoder ->
// metric-learning loss -> optimizer, with per-epoch retrieval evaluation,
// metrics and pictures, checkpoints, collapse detection and bundle export.
//
// Files in options.work_dir:
//   checkpoint.bin        model + optimizer + sampler/RNG state + history
//                         (atomic; written after every epoch and on stop)
//   metrics.jsonl         one JSON object per evaluated epoch
//   trainer.prom          the last epoch as Prometheus gauges (textfile
//                         collector; trainer/epoch_textfile.h)
//   training_curve.svg    loss and precision@1 per epoch
//   embedding_map.svg     2-D PCA of the test embeddings, coloured by class
//
// Determinism: with the same options and threads the run is bit-for-bit
// reproducible, and a run stopped and resumed (options.resume) ends with the
// same weights as an uninterrupted one: every random draw comes from the
// PkSampler and one augmentation Rng, both saved in the checkpoint.
#ifndef EMBEDSEARCH_TRAINER_TRAINER_H_
#define EMBEDSEARCH_TRAINER_TRAINER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset.h"
#include "core/nn/encoder.h"
#include "trainer/retrieval_metrics.h"
#include "trainer/trainer_options.h"

namespace embedsearch {

struct EpochRecord {
  int epoch = 0;               // 1-based
  int64_t steps = 0;           // steps in this epoch
  int64_t global_step = 0;     // steps since the start of the run
  double loss = 0;             // mean training loss over the epoch
  double spread = 0;           // mean batch embedding spread
  double lr = 0;               // learning rate of the epoch's last step
  double seconds = 0;          // wall time of the epoch's training steps
  double images_per_second = 0;
  // Time to quality: the run's training seconds up to and including this
  // epoch (the sum of `seconds`, across resumes), and the trainer process's
  // CPU seconds (all threads) and wall seconds since it started, at the end
  // of the epoch including its evaluation (a resumed run counts these two
  // from its restart).
  double train_seconds_total = 0;
  double process_cpu_seconds = 0;
  double wall_seconds = 0;
  bool evaluated = false;
  RetrievalMetrics metrics;    // when evaluated
  // Leave-one-out retrieval among the held-out classes' images
  // (--holdout_classes; trainer/holdout.h), when evaluated with a split.
  bool held_out_evaluated = false;
  RetrievalMetrics held_out;
};

// One JSON line of metrics.jsonl (no newline).
std::string EpochRecordJson(const EpochRecord& r, const TrainerOptions& o);

struct TrainResult {
  std::vector<EpochRecord> history;
  bool collapse_detected = false;
  // options.stop_at_p1 was reached before the last epoch: history ends there.
  bool stopped_at_p1 = false;
  std::string checkpoint_path;
  std::string bundle_dir;      // empty when not exported
  std::string model_version;
};

// The data of a run: training images, test queries, and the gallery that
// is exported (the training set for Fashion-MNIST, every image for an image
// folder). Limits of `options` applied.
struct TrainingData {
  Dataset train;
  Dataset test;
  Dataset gallery;
  bool gallery_is_train = true;
};
absl::StatusOr<TrainingData> LoadTrainingData(const TrainerOptions& options);

// n images of `dataset` starting at `begin`, normalized, into `out`.
void NormalizeImages(const Dataset& dataset, size_t begin, size_t n,
                     const Preprocessing& preprocessing, float* out);
// Embeddings (size() * dim floats) of every image of `dataset`.
std::vector<float> EncodeDataset(const Encoder& encoder, const Dataset& dataset,
                                 int threads);

// Runs (or resumes) training and exports the bundle, in named stages (a
// TrainingRun in trainer.cc): load data, build model, restore, then per
// epoch train and end the epoch (evaluate, outputs, checkpoint), export;
// with options.stop_at_p1 the epochs end at the first evaluation that
// reaches it (then the export follows as usual). `stop`, when given, is
// polled after every step (set it from a SIGINT handler): the run then
// writes its checkpoint and returns Cancelled. Errors: InvalidArgument for
// bad options, NotFound / DataLoss for data, FailedPrecondition for a
// checkpoint that does not match the options (or exists without --resume),
// Internal for a non-finite loss.
absl::StatusOr<TrainResult> Train(const TrainerOptions& options,
                                  const std::atomic<bool>* stop = nullptr);

// Learning rate at `step` (0-based) of `total_steps`: linear warm-up from
// lr/warmup_steps to lr over options.warmup_steps, then the schedule
// (constant; step: times step_gamma every step_every_epochs epochs or at
// 1/2 and 3/4 of the run; cosine: half cosine from lr to 0).
double LearningRateAt(const TrainerOptions& options, int64_t step,
                      int64_t total_steps, int64_t steps_per_epoch);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_TRAINER_H_
