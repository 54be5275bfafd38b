#include "trainer/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/data/augment.h"
#include "core/data/pk_sampler.h"
#include "core/data/preprocess.h"
#include "core/data/rng.h"
#include "core/index/bundle.h"
#include "core/loss/class_energy_loss.h"
#include "core/loss/embedding_loss.h"
#include "core/nn/arch_spec.h"
#include "core/nn/optimizer.h"
#include "core/util/file.h"
#include "core/util/json.h"
#include "core/util/status_macros.h"
#include "trainer/checkpoint.h"
#include "trainer/class_vectors.h"
#include "trainer/collapse_detector.h"
#include "trainer/epoch_textfile.h"
#include "trainer/holdout.h"
#include "trainer/model_arch.h"
#include "trainer/plots.h"
#include "trainer/progress.h"

namespace embedsearch {
namespace {

constexpr double kPi = 3.14159265358979323846;

// CPU time of this process so far, all threads (the time a quiet machine
// with that many free cores would need, when every thread is busy).
double ProcessCpuSeconds() {
  timespec t{};
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) != 0) return 0;
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

absl::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoStatus(ec.value(), "mkdir", path);
  return absl::OkStatus();
}

bool IsFashionMnistDir(const std::string& dir) {
  for (const char* name :
       {"train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"}) {
    if (FileExists(absl::StrCat(dir, "/", name))) return true;
  }
  return false;
}

// The encoder's parameters and, when the run has them (--answers=classes or
// --class_weight), the class vectors.
std::unique_ptr<Optimizer> MakeOptimizer(const TrainerOptions& o,
                                         Encoder& encoder,
                                         Parameter* class_vectors) {
  std::vector<Parameter*> params = encoder.parameters();
  if (class_vectors != nullptr) params.push_back(class_vectors);
  switch (o.optimizer) {
    case OptimizerKind::kSgd: {
      SgdOptions s;
      s.momentum = static_cast<float>(o.momentum);
      s.weight_decay = static_cast<float>(o.weight_decay);
      return MakeSgd(std::move(params), s);
    }
    case OptimizerKind::kAdam: {
      AdamOptions a;
      a.weight_decay = static_cast<float>(o.weight_decay);
      return MakeAdam(std::move(params), a);
    }
    case OptimizerKind::kAdamW: {
      AdamOptions a;
      a.weight_decay = static_cast<float>(o.weight_decay);
      return MakeAdamW(std::move(params), a);
    }
  }
  return nullptr;
}

Dataset FirstN(const Dataset& d, int64_t limit) {
  if (limit <= 0 || static_cast<size_t>(limit) >= d.size()) return d;
  std::vector<size_t> idx(limit);
  for (int64_t i = 0; i < limit; ++i) idx[i] = i;
  return d.Subset(idx);
}

}  // namespace

double LearningRateAt(const TrainerOptions& o, int64_t step,
                      int64_t total_steps, int64_t steps_per_epoch) {
  if (o.warmup_steps > 0 && step < o.warmup_steps) {
    return o.lr * static_cast<double>(step + 1) / o.warmup_steps;
  }
  switch (o.schedule) {
    case LrSchedule::kConstant:
      return o.lr;
    case LrSchedule::kStep: {
      int drops = 0;
      if (o.step_every_epochs > 0) {
        drops = static_cast<int>(step / std::max<int64_t>(1, steps_per_epoch) /
                                 o.step_every_epochs);
      } else {
        drops = (2 * step >= total_steps) + (4 * step >= 3 * total_steps);
      }
      return o.lr * std::pow(o.step_gamma, drops);
    }
    case LrSchedule::kCosine: {
      const int64_t span = std::max<int64_t>(1, total_steps - o.warmup_steps);
      const double t =
          std::clamp(static_cast<double>(step - o.warmup_steps) / span, 0.0, 1.0);
      return o.lr * 0.5 * (1 + std::cos(kPi * t));
    }
  }
  return o.lr;
}

std::string EpochRecordJson(const EpochRecord& r, const TrainerOptions& o) {
  Json json = {{"epoch", r.epoch},
               {"steps", r.steps},
               {"global_step", r.global_step},
               {"loss", RoundDecimals(r.loss, 6)},
               {"spread", RoundDecimals(r.spread, 4)},
               {"lr", RoundSignificant(r.lr, 6)},
               {"seconds", RoundDecimals(r.seconds, 2)},
               {"images_per_second", RoundDecimals(r.images_per_second, 1)},
               {"train_seconds_total", RoundDecimals(r.train_seconds_total, 2)},
               {"process_cpu_seconds", RoundDecimals(r.process_cpu_seconds, 2)},
               {"wall_seconds", RoundDecimals(r.wall_seconds, 2)},
               {"loss_kind", std::string(EmbeddingLossKindName(o.loss))},
               {"mining", std::string(MiningName(o.mining))},
               {"answers", std::string(AnswerSetName(o.answers))}};
  if (r.evaluated) json.update(RetrievalMetricsToJson(r.metrics));
  if (r.held_out_evaluated) json["held_out"] = RetrievalMetricsToJson(r.held_out);
  return JsonText(json);
}

void NormalizeImages(const Dataset& dataset, size_t begin, size_t n,
                     const Preprocessing& preprocessing, float* out) {
  InputSpec spec = dataset.FittedSpec();
  spec.preprocessing = preprocessing;
  NormalizeInputs(dataset.image(begin), n, spec, out);
}

std::vector<float> EncodeDataset(const Encoder& encoder, const Dataset& dataset,
                                 int threads) {
  const int dim = encoder.dim();
  const size_t pixels = dataset.image_bytes();
  std::vector<float> out(dataset.size() * dim);
  constexpr size_t kChunk = 512;  // bounds the float input buffer (1.6 MB)
  std::vector<float> input(kChunk * pixels);
  for (size_t b = 0; b < dataset.size(); b += kChunk) {
    const size_t n = std::min(kChunk, dataset.size() - b);
    NormalizeImages(dataset, b, n, encoder.config().preprocessing, input.data());
    encoder.Encode(input.data(), static_cast<int>(n), out.data() + b * dim,
                   threads);
  }
  return out;
}

absl::StatusOr<TrainingData> LoadTrainingData(const TrainerOptions& o) {
  TrainingData data;
  if (IsFashionMnistDir(o.data)) {
    ASSIGN_OR_RETURN(Dataset train, LoadFashionMnist(o.data, "train"));
    ASSIGN_OR_RETURN(Dataset test, LoadFashionMnist(o.data, "t10k"));
    data.train = FirstN(train, o.train_limit);
    data.test = FirstN(test, o.test_limit);
    data.gallery_is_train = true;
    return data;
  }
  ImageFolderOptions folder;
  if (!o.input.empty()) {  // else 28x28, gray or RGB as the pictures are
    absl::StatusOr<TensorShape> shape = ParseInputShape(o.input);
    if (!shape.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--input: ", shape.status().message()));
    }
    folder.height = shape->height;
    folder.width = shape->width;
    folder.channels = shape->channels;
  }
  ASSIGN_OR_RETURN(Dataset all, LoadImageFolder(o.data, folder));
  if (all.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data: no images in ", o.data));
  }
  // Hold out a seeded 1/6 of each class (at least one image of any class
  // with two or more) as test queries.
  std::map<int32_t, std::vector<size_t>> by_label;
  for (size_t i = 0; i < all.size(); ++i) by_label[all.labels[i]].push_back(i);
  Rng rng(o.seed ^ 0x7e57u);
  std::vector<size_t> train_idx, test_idx;
  for (auto& [label, idx] : by_label) {
    rng.Shuffle(&idx);
    const size_t n_test = idx.size() >= 2 ? std::max<size_t>(1, idx.size() / 6) : 0;
    test_idx.insert(test_idx.end(), idx.begin(), idx.begin() + n_test);
    train_idx.insert(train_idx.end(), idx.begin() + n_test, idx.end());
  }
  std::sort(train_idx.begin(), train_idx.end());
  std::sort(test_idx.begin(), test_idx.end());
  data.train = FirstN(all.Subset(train_idx), o.train_limit);
  data.test = FirstN(all.Subset(test_idx), o.test_limit);
  data.gallery = std::move(all);
  data.gallery_is_train = false;
  return data;
}

namespace {

// One training run, stage by stage; Train() below calls the stages in order:
//   LoadData    the training and test sets (and the gallery of a folder)
//   BuildModel  encoder, class vectors, optimizer, PK sampler, augmentation
//   Restore     continue from the checkpoint (--resume)
//   PlanSteps   steps per epoch, schedule length, mining warm-up, buffers
//   TrainEpoch  one epoch of steps (Cancelled, with a checkpoint, on stop)
//   EndEpoch    evaluate, record, write metrics and plots, checkpoint
//   Export      the bundle
// Every random draw comes from the sampler and aug_rng_, both checkpointed,
// so a resumed run is bit-for-bit the uninterrupted one.
class TrainingRun {
 public:
  TrainingRun(const TrainerOptions& o, const std::atomic<bool>* stop)
      : o_(o),
        stop_(stop),
        ckpt_path_(absl::StrCat(o.work_dir, "/checkpoint.bin")),
        progress_(stderr, {.tty = o.progress_tty && !o.quiet,
                           .log_every = o.quiet ? 0 : o.log_every}),
        class_answers_(o.answers == AnswerSet::kClasses),
        uses_class_vectors_(class_answers_ || o.class_weight > 0),
        aug_rng_(o.seed * 0x9E3779B97F4A7C15ull + 17),
        collapse_({.patience = o.collapse_patience}) {}

  const std::string& checkpoint_path() const { return ckpt_path_; }
  int first_epoch() const { return completed_epochs_ + 1; }
  // The last epoch's evaluation reached options.stop_at_p1 (ends the run).
  bool reached_stop_p1() const { return reached_stop_p1_; }

  absl::Status LoadData();
  absl::Status BuildModel();
  absl::Status Restore();
  absl::Status PlanSteps();
  absl::Status TrainEpoch(int epoch);
  absl::Status EndEpoch(int epoch);
  absl::StatusOr<TrainResult> Export();

 private:
  void Say(const std::string& line) {
    if (!o_.quiet) progress_.Line(line);
  }
  absl::Status TrainStep();
  absl::StatusOr<ClassEnergyLossResult> ClassLoss(const float* emb,
                                                  EmbeddingLossKind kind,
                                                  const EbmOptions& eo, double weight,
                                                  bool train_class_vectors);
  absl::StatusOr<EmbeddingLossResult> ComputeLoss(const float* emb,
                                                  const EmbeddingLossOptions& lo,
                                                  bool train_class_vectors);
  absl::Status Evaluate(EpochRecord* rec);
  absl::Status WriteOutputs(bool with_embedding_map);
  absl::Status SaveCheckpointNow();

  const TrainerOptions& o_;
  const std::atomic<bool>* stop_;
  const std::string ckpt_path_;
  ProgressReporter progress_;
  const bool class_answers_;       // --answers=classes
  const bool uses_class_vectors_;  // ... or --class_weight: trained, checkpointed

  // LoadData.
  TrainingData data_;
  HeldOutClasses held_out_;  // empty without --holdout_classes
  // BuildModel (Restore replaces encoder_ and optimizer_).
  std::unique_ptr<Encoder> encoder_;
  int dim_ = 0;  // embedding width: encoder_->dim() (not --dim with --arch)
  int classes_ = 0;
  Parameter class_vectors_;
  std::unique_ptr<Optimizer> optimizer_;
  std::optional<PkSampler> sampler_;
  Rng aug_rng_;
  // Run state, restored from the checkpoint on resume.
  std::vector<EpochRecord> history_;
  int completed_epochs_ = 0;
  int64_t step_in_epoch_ = 0;  // steps done in the current (partial) epoch
  int64_t global_step_ = 0;
  double epoch_loss_sum_ = 0, epoch_spread_sum_ = 0, epoch_seconds_ = 0;
  bool collapse_warned_ = false;
  // PlanSteps.
  int64_t steps_per_epoch_ = 0;
  int64_t total_steps_ = 0;
  int64_t mining_warmup_ = 0;
  EmbeddingLossOptions loss_options_;
  CollapseDetector collapse_;
  int batch_ = 0;
  size_t pixels_ = 0;
  std::vector<uint8_t> batch_pixels_;
  std::vector<float> batch_input_, embeddings_, same_;
  std::vector<int32_t> batch_labels_;
  // TrainEpoch / EndEpoch.
  double last_lr_ = 0;  // of the epoch's last step
  std::vector<float> gallery_emb_, query_emb_;
  bool gallery_emb_current_ = false;  // gallery_emb_ is of the current weights
  const absl::Time started_ = absl::Now();  // wall_seconds counts from here
  bool reached_stop_p1_ = false;
};

absl::Status TrainingRun::LoadData() {
  ASSIGN_OR_RETURN(data_, LoadTrainingData(o_));
  ASSIGN_OR_RETURN(held_out_, SplitOffHeldOutClasses(o_, &data_));
  if (held_out_.split.active()) Say(DescribeHeldOutClasses(held_out_, data_));
  RETURN_IF_ERROR(WriteHeldOutClassList(held_out_.split, o_.work_dir));
  if (data_.test.size() == 0) return absl::InvalidArgumentError("no test images");
  const Dataset& train = data_.train;
  Say(absl::StrFormat(
      "data: %dx%dx%d images held at the input size, %.1f MB", train.height,
      train.width, train.channels,
      (train.MemoryBytes() + data_.test.MemoryBytes() + data_.gallery.MemoryBytes()) /
          1048576.0));
  return absl::OkStatus();
}

absl::Status TrainingRun::BuildModel() {
  const Dataset& train = data_.train;
  EncoderConfig config;
  config.input_height = train.height;
  config.input_width = train.width;
  config.input_channels = train.channels;
  config.embedding_dim = o_.dim;
  config.batch_norm = o_.batch_norm;
  config.hidden = o_.hidden;
  config.conv_channels = o_.conv_channels;
  config.dropout = static_cast<float>(o_.dropout);
  config.l2_normalize = true;
  config.flip_average = o_.flip_average;
  RETURN_IF_ERROR(ApplyArchOptions(o_, &config));
  if (!data_.gallery_is_train) config.preprocessing = MeasuredPreprocessing(train);
  ASSIGN_OR_RETURN(encoder_, Encoder::Create(config, o_.seed));
  encoder_->set_threads(o_.threads);
  dim_ = encoder_->dim();  // --dim, or the last layer's width with --arch
  classes_ = static_cast<int>(train.label_names.size());
  class_vectors_ = MakeClassVectors(uses_class_vectors_ ? classes_ : 0, dim_, o_.seed);
  optimizer_ = MakeOptimizer(o_, *encoder_, uses_class_vectors_ ? &class_vectors_ : nullptr);

  PkSamplerOptions pk;
  pk.classes_per_batch = o_.classes_per_batch;
  pk.images_per_class = o_.images_per_class;
  pk.seed = o_.seed;
  // Classes smaller than K repeat images; one-image classes are left out.
  pk.min_images_per_class = o_.images_per_class >= 2 ? 2 : 0;
  absl::StatusOr<PkSampler> sampler = PkSampler::Create(train.labels, pk);
  if (!sampler.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--classes-per-batch/--images-per-class: ", sampler.status().message()));
  }
  sampler_.emplace(*std::move(sampler));
  if (!sampler_->excluded_labels().empty()) {
    Say(DescribeExcludedClasses(sampler_->excluded_labels(), train));
  }
  return absl::OkStatus();
}

absl::Status TrainingRun::Restore() {
  if (!o_.resume || !FileExists(ckpt_path_)) return absl::OkStatus();
  ASSIGN_OR_RETURN(v1::TrainingCheckpoint ckpt, LoadCheckpoint(ckpt_path_));
  RETURN_IF_ERROR(CheckSameRun(ckpt_path_, ckpt, RunOptionsOf(o_), *encoder_));
  ASSIGN_OR_RETURN(encoder_, Encoder::FromBytes(ckpt.model()));
  encoder_->set_threads(o_.threads);
  if (uses_class_vectors_) {
    if (!ckpt.has_class_vectors()) {
      return absl::DataLossError(absl::StrCat(ckpt_path_, ": no class vectors"));
    }
    RETURN_IF_ERROR(ClassVectorsFromBytes(ckpt.class_vectors(), &class_vectors_));
  }
  optimizer_ = MakeOptimizer(o_, *encoder_, uses_class_vectors_ ? &class_vectors_ : nullptr);
  RETURN_IF_ERROR(optimizer_->LoadState(ckpt.optimizer()));
  RETURN_IF_ERROR(sampler_->Restore(
      {ckpt.sampler().seed(), ckpt.sampler().epoch(), ckpt.sampler().step()}));
  if (ckpt.augment_rng_size() != 4) {
    return absl::DataLossError(absl::StrCat(ckpt_path_, ": bad rng state"));
  }
  Rng::State rng_state;
  for (int i = 0; i < 4; ++i) rng_state[i] = ckpt.augment_rng(i);
  aug_rng_.set_state(rng_state);
  completed_epochs_ = ckpt.completed_epochs();
  step_in_epoch_ = ckpt.step_in_epoch();
  global_step_ = ckpt.global_step();
  epoch_loss_sum_ = ckpt.epoch_loss_sum();
  epoch_spread_sum_ = ckpt.epoch_spread_sum();
  epoch_seconds_ = ckpt.epoch_seconds();
  collapse_warned_ = ckpt.collapse_warned();
  for (const v1::EpochRecordProto& r : ckpt.history()) {
    history_.push_back(EpochRecordFromProto(r));
  }
  Say(absl::StrFormat("resumed %s: %d epochs + %d steps done (step %d)", ckpt_path_,
                      completed_epochs_, step_in_epoch_, global_step_));
  return absl::OkStatus();
}

absl::Status TrainingRun::SaveCheckpointNow() {
  v1::TrainingCheckpoint ckpt;
  *ckpt.mutable_options() = RunOptionsOf(o_);
  ckpt.set_model(encoder_->ToBytes());
  ckpt.set_optimizer(optimizer_->SaveState());
  if (uses_class_vectors_) ckpt.set_class_vectors(ClassVectorsToBytes(class_vectors_));
  const PkSamplerState st = sampler_->state();
  ckpt.mutable_sampler()->set_seed(st.seed);
  ckpt.mutable_sampler()->set_epoch(st.epoch);
  ckpt.mutable_sampler()->set_step(st.step);
  for (uint64_t word : aug_rng_.state()) ckpt.add_augment_rng(word);
  ckpt.set_completed_epochs(completed_epochs_);
  ckpt.set_step_in_epoch(step_in_epoch_);
  ckpt.set_global_step(global_step_);
  ckpt.set_epoch_loss_sum(epoch_loss_sum_);
  ckpt.set_epoch_spread_sum(epoch_spread_sum_);
  ckpt.set_epoch_seconds(epoch_seconds_);
  ckpt.set_collapse_warned(collapse_warned_);
  for (const EpochRecord& r : history_) *ckpt.add_history() = EpochRecordToProto(r);
  ckpt.set_command_line(o_.command_line);
  return SaveCheckpoint(ckpt_path_, std::move(ckpt));
}

absl::Status TrainingRun::PlanSteps() {
  // The number of batches differs slightly between epochs (PkSampler drops
  // leftovers); the schedule uses the first epoch's count for all.
  PkSampler probe = *sampler_;
  (void)probe.Restore({o_.seed, 0, 0});
  steps_per_epoch_ = probe.batches_in_epoch();
  if (steps_per_epoch_ < 1) {
    return absl::InvalidArgumentError(
        "the training set is too small for one PK batch per epoch");
  }
  total_steps_ = steps_per_epoch_ * o_.epochs;
  mining_warmup_ = o_.mining == Mining::kAll || class_answers_ ? 0
                   : o_.mining_warmup_steps < 0             ? steps_per_epoch_
                                                            : o_.mining_warmup_steps;
  loss_options_.kind = o_.loss;
  loss_options_.mining = o_.mining;
  loss_options_.margin = EffectiveMargin(o_);
  loss_options_.p = o_.p;
  loss_options_.swap = o_.swap;
  loss_options_.squared_energy = o_.squared_energy;
  loss_options_.beta = o_.beta;

  const Dataset& train = data_.train;
  const int dim = dim_;
  batch_ = o_.classes_per_batch * o_.images_per_class;
  pixels_ = train.image_bytes();
  batch_pixels_.resize(batch_ * pixels_);
  batch_input_.resize(batch_ * pixels_);
  embeddings_.resize(batch_ * dim);
  same_.assign(batch_ * dim, 0.f);
  for (int i = 0; i < batch_; ++i) same_[i * dim] = 1.f;  // a collapsed batch
  batch_labels_.resize(batch_);
  Say(absl::StrFormat(
      "training %s/%s on %d images (%d test queries), %d steps/epoch of %dx%d, "
      "%d epochs, %s lr %g %s%s",
      EmbeddingLossKindName(o_.loss),
      class_answers_ ? "classes" : MiningName(o_.mining), train.size(),
      data_.test.size(), steps_per_epoch_, o_.classes_per_batch,
      o_.images_per_class, o_.epochs, OptimizerKindName(o_.optimizer), o_.lr,
      LrScheduleName(o_.schedule),
      o_.stop_at_p1 > 0
          ? absl::StrFormat(", stopping at the first evaluation with P@1 >= %g",
                            o_.stop_at_p1)
          : ""));
  return absl::OkStatus();
}

// The class-answer loss of `kind` on `emb` (batch rows); stores the class
// vectors' gradient, scaled by `weight`, when `train_class_vectors`.
absl::StatusOr<ClassEnergyLossResult> TrainingRun::ClassLoss(
    const float* emb, EmbeddingLossKind kind, const EbmOptions& eo, double weight,
    bool train_class_vectors) {
  ASSIGN_OR_RETURN(ClassEnergyLossResult c,
                   ClassEnergyLoss(emb, batch_, dim_, batch_labels_.data(),
                                   class_vectors_.value.data(), classes_,
                                   ToEbmLossKind(kind), eo));
  if (train_class_vectors) {
    for (float& g : c.grad_prototypes) g *= static_cast<float>(weight);
    class_vectors_.grad = std::move(c.grad_prototypes);
  }
  return c;
}

// The step's loss on `emb`: against the class vectors (--answers=classes)
// or within the batch, plus the weighted class NLL of --class_weight.
absl::StatusOr<EmbeddingLossResult> TrainingRun::ComputeLoss(
    const float* emb, const EmbeddingLossOptions& lo, bool train_class_vectors) {
  EbmOptions eo;
  eo.margin = lo.margin;
  eo.beta = lo.beta;
  if (!class_answers_) {
    ASSIGN_OR_RETURN(EmbeddingLossResult r, ComputeEmbeddingLoss(emb, batch_, dim_,
                                                                 batch_labels_.data(), lo));
    if (o_.class_weight > 0) {
      ASSIGN_OR_RETURN(ClassEnergyLossResult c,
                       ClassLoss(emb, EmbeddingLossKind::kNll, eo, o_.class_weight,
                                 train_class_vectors));
      r.loss += o_.class_weight * c.loss;
      for (size_t i = 0; i < r.grad.size(); ++i) {
        r.grad[i] += static_cast<float>(o_.class_weight) * c.grad_embeddings[i];
      }
    }
    return r;
  }
  ASSIGN_OR_RETURN(ClassEnergyLossResult c,
                   ClassLoss(emb, lo.kind, eo, 1.0, train_class_vectors));
  EmbeddingLossResult r;
  r.loss = c.loss;
  r.grad = std::move(c.grad_embeddings);
  r.total = batch_;
  r.active = batch_ - c.correct;
  r.mean_positive_distance = c.mean_positive_energy;
  r.mean_negative_distance = c.mean_negative_energy;
  return r;
}

// One batch: sample, augment, normalize, forward, loss, backward, update.
absl::Status TrainingRun::TrainStep() {
  const Dataset& train = data_.train;
  const absl::Time t0 = absl::Now();
  const std::vector<size_t> idx = sampler_->NextBatch();
  for (int i = 0; i < batch_; ++i) {
    std::copy_n(train.image(idx[i]), pixels_, batch_pixels_.data() + i * pixels_);
    batch_labels_[i] = train.labels[idx[i]];
  }
  if (o_.augment) {
    AugmentBatch(batch_pixels_.data(), batch_, train.height, train.width,
                 AugmentOptionsOf(o_), &aug_rng_, train.channels);
  }
  NormalizeInputs(batch_pixels_.data(), batch_, InputSpecOf(encoder_->config()),
                  batch_input_.data());
  encoder_->ZeroGrad();
  encoder_->SeedDropout(o_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(global_step_));
  encoder_->Forward(batch_input_.data(), batch_, embeddings_.data(), true);
  EmbeddingLossOptions lo = loss_options_;
  if (global_step_ < mining_warmup_) lo.mining = Mining::kAll;
  ASSIGN_OR_RETURN(EmbeddingLossResult loss, ComputeLoss(embeddings_.data(), lo, true));
  if (!std::isfinite(loss.loss)) {
    return absl::InternalError(absl::StrFormat(
        "loss became %g at step %d; lower --lr (checkpoint %s keeps the "
        "last good epoch)",
        loss.loss, global_step_, ckpt_path_));
  }
  encoder_->Backward(loss.grad.data());
  last_lr_ = LearningRateAt(o_, global_step_, total_steps_, steps_per_epoch_);
  optimizer_->Step(static_cast<float>(last_lr_));
  const double spread = EmbeddingSpread(embeddings_.data(), batch_, dim_);
  double trivial = loss.loss + 1e9;  // only computed when it matters
  if (spread < 0.05) {
    absl::StatusOr<EmbeddingLossResult> t = ComputeLoss(same_.data(), lo, false);
    if (t.ok()) trivial = t->loss;
  }
  if (collapse_.Observe(loss.loss, trivial, spread) && !collapse_warned_) {
    collapse_warned_ = true;
    Say(absl::StrCat("WARNING: ", collapse_.Explain()));
  }
  ++step_in_epoch_;
  ++global_step_;
  epoch_loss_sum_ += loss.loss;
  epoch_spread_sum_ += spread;
  epoch_seconds_ += absl::ToDoubleSeconds(absl::Now() - t0);
  gallery_emb_current_ = false;
  progress_.Step(step_in_epoch_, batch_, loss.loss, total_steps_ - global_step_);
  return absl::OkStatus();
}

absl::Status TrainingRun::TrainEpoch(int epoch) {
  // PkSampler moves to its next epoch lazily; move it now so that
  // batches_in_epoch() describes the epoch we are about to run.
  if (step_in_epoch_ == 0 && sampler_->state().step >= sampler_->batches_in_epoch()) {
    const PkSamplerState st = sampler_->state();
    RETURN_IF_ERROR(sampler_->Restore({st.seed, st.epoch + 1, 0}));
  }
  const int64_t steps_this_epoch = sampler_->batches_in_epoch();
  progress_.StartEpoch(epoch, o_.epochs, steps_this_epoch);
  last_lr_ = 0;
  while (step_in_epoch_ < steps_this_epoch) {
    RETURN_IF_ERROR(TrainStep());
    const bool stop_now = (stop_ != nullptr && stop_->load()) ||
                          (o_.stop_after_steps > 0 && global_step_ >= o_.stop_after_steps &&
                           global_step_ < total_steps_);
    if (stop_now) {
      progress_.EndEpoch();
      RETURN_IF_ERROR(SaveCheckpointNow());
      return absl::CancelledError(absl::StrFormat(
          "stopped at epoch %d step %d (global step %d); checkpoint written "
          "to %s -- continue with --resume",
          epoch, step_in_epoch_, global_step_, ckpt_path_));
    }
  }
  progress_.EndEpoch();
  return absl::OkStatus();
}

// Retrieval metrics of the test queries against the training images, and
// leave-one-out retrieval among the held-out classes (--holdout_classes).
absl::Status TrainingRun::Evaluate(EpochRecord* rec) {
  const Dataset& train = data_.train;
  const Dataset& test = data_.test;
  gallery_emb_ = EncodeDataset(*encoder_, train, o_.threads);
  query_emb_ = EncodeDataset(*encoder_, test, o_.threads);
  std::vector<int32_t> gl(train.labels.begin(), train.labels.end());
  std::vector<int32_t> ql(test.labels.begin(), test.labels.end());
  ASSIGN_OR_RETURN(rec->metrics, EvaluateRetrieval(gallery_emb_.data(), gl, query_emb_.data(),
                                                   ql, dim_, {.threads = o_.threads}));
  rec->evaluated = true;
  gallery_emb_current_ = true;
  return EvaluateHeldOutClasses(held_out_, *encoder_, o_.threads, rec);
}

// metrics.jsonl, training_curve.svg and (after an evaluation) embedding_map.svg.
absl::Status TrainingRun::WriteOutputs(bool with_embedding_map) {
  std::string jsonl;
  std::vector<EpochPoint> points;
  for (const EpochRecord& r : history_) {
    absl::StrAppend(&jsonl, EpochRecordJson(r, o_), "\n");
    points.push_back({r.epoch, r.loss, r.metrics.precision_at_1, r.evaluated,
                      r.held_out.precision_at_1, r.held_out_evaluated});
  }
  RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(o_.work_dir, "/metrics.jsonl"), jsonl));
  RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(o_.work_dir, "/trainer.prom"),
                                      EpochMetricsTextfile(history_)));
  const std::string title = absl::StrFormat(
      "%s loss, %s, margin %g, dim %d", EmbeddingLossKindName(o_.loss),
      class_answers_ ? "class answers" : absl::StrCat(MiningName(o_.mining), " mining"),
      EffectiveMargin(o_), dim_);
  RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(o_.work_dir, "/training_curve.svg"),
                                      TrainingCurveSvg(points, title)));
  if (!with_embedding_map || query_emb_.empty()) return absl::OkStatus();
  const Dataset& test = data_.test;
  std::vector<int32_t> ql(test.labels.begin(), test.labels.end());
  return WriteFileAtomically(
      absl::StrCat(o_.work_dir, "/embedding_map.svg"),
      EmbeddingMapSvg(query_emb_.data(), static_cast<int64_t>(test.size()), dim_, ql,
                      test.label_names,
                      absl::StrFormat("test embeddings (PCA), epoch %d",
                                      history_.empty() ? 0 : history_.back().epoch)));
}

absl::Status TrainingRun::EndEpoch(int epoch) {
  EpochRecord rec;
  rec.epoch = epoch;
  rec.steps = step_in_epoch_;
  rec.global_step = global_step_;
  rec.loss = epoch_loss_sum_ / std::max<int64_t>(1, step_in_epoch_);
  rec.spread = epoch_spread_sum_ / std::max<int64_t>(1, step_in_epoch_);
  rec.lr = last_lr_;
  rec.seconds = epoch_seconds_;
  rec.images_per_second =
      epoch_seconds_ > 0 ? step_in_epoch_ * batch_ / epoch_seconds_ : 0;
  rec.train_seconds_total =
      (history_.empty() ? 0 : history_.back().train_seconds_total) + epoch_seconds_;
  const bool eval_now =
      epoch == o_.epochs || (o_.eval_every > 0 && epoch % o_.eval_every == 0);
  if (eval_now) RETURN_IF_ERROR(Evaluate(&rec));
  rec.process_cpu_seconds = ProcessCpuSeconds();
  rec.wall_seconds = absl::ToDoubleSeconds(absl::Now() - started_);
  reached_stop_p1_ = o_.stop_at_p1 > 0 && rec.evaluated &&
                     rec.metrics.precision_at_1 >= o_.stop_at_p1;
  history_.push_back(rec);
  completed_epochs_ = epoch;
  step_in_epoch_ = 0;
  epoch_loss_sum_ = epoch_spread_sum_ = epoch_seconds_ = 0;
  if (!o_.quiet) {
    std::fprintf(stderr, "%s\n", EpochRecordJson(rec, o_).c_str());
    std::fflush(stderr);
  }
  if (reached_stop_p1_ && epoch < o_.epochs) {
    Say(absl::StrFormat(
        "precision@1 %.4f >= --stop_at_p1 %g after epoch %d/%d (%.0f s training, "
        "%.0f s CPU, %.0f s wall): stopping early%s",
        rec.metrics.precision_at_1, o_.stop_at_p1, epoch, o_.epochs,
        rec.train_seconds_total, rec.process_cpu_seconds, rec.wall_seconds,
        o_.out.empty() ? "" : ", exporting"));
  }
  RETURN_IF_ERROR(WriteOutputs(eval_now));
  return SaveCheckpointNow();
}

absl::StatusOr<TrainResult> TrainingRun::Export() {
  TrainResult result;
  result.checkpoint_path = ckpt_path_;
  result.history = history_;
  result.collapse_detected = collapse_warned_;
  result.stopped_at_p1 = reached_stop_p1_ && completed_epochs_ < o_.epochs;
  result.model_version = encoder_->model_version();
  if (o_.out.empty()) return result;
  const Dataset& gallery = data_.gallery_is_train ? data_.train : data_.gallery;
  std::vector<float> emb;
  if (data_.gallery_is_train && gallery_emb_current_) {
    emb = std::move(gallery_emb_);
  } else {
    emb = EncodeDataset(*encoder_, gallery, o_.threads);
  }
  BundleWriteOptions bw;
  bw.index_spec = o_.index_spec;
  bw.max_picture_side = o_.max_picture_side;
  bw.metric = "l2";
  bw.trainer_command = o_.command_line;
  if (held_out_.split.active()) bw.class_split = HoldoutSplitToProto(held_out_.split);
  Say(absl::StrFormat("exporting %d gallery images to %s (%s)", gallery.size(), o_.out,
                      o_.index_spec));
  RETURN_IF_ERROR(WriteBundle(o_.out, *encoder_, gallery, emb.data(), bw));
  result.bundle_dir = o_.out;
  return result;
}

}  // namespace

absl::StatusOr<TrainResult> Train(const TrainerOptions& o,
                                  const std::atomic<bool>* stop) {
  RETURN_IF_ERROR(ValidateTrainerOptions(o));
  RETURN_IF_ERROR(MakeDirs(o.work_dir));
  TrainingRun run(o, stop);
  if (!o.resume && FileExists(run.checkpoint_path())) {
    return absl::FailedPreconditionError(absl::StrCat(
        run.checkpoint_path(), " exists: pass --resume to continue that run, or use "
                               "another --work_dir"));
  }
  RETURN_IF_ERROR(run.LoadData());
  RETURN_IF_ERROR(run.BuildModel());
  RETURN_IF_ERROR(run.Restore());
  RETURN_IF_ERROR(run.PlanSteps());
  for (int epoch = run.first_epoch(); epoch <= o.epochs; ++epoch) {
    RETURN_IF_ERROR(run.TrainEpoch(epoch));
    RETURN_IF_ERROR(run.EndEpoch(epoch));
    if (run.reached_stop_p1()) break;
  }
  return run.Export();
}

}  // namespace embedsearch
