#include "trainer/trainer_options.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/nn/arch_spec.h"

namespace embedsearch {

absl::StatusOr<LrSchedule> ParseLrSchedule(absl::string_view name) {
  if (name == "constant") return LrSchedule::kConstant;
  if (name == "step") return LrSchedule::kStep;
  if (name == "cosine") return LrSchedule::kCosine;
  return absl::InvalidArgumentError(absl::StrCat(
      "--schedule: unknown schedule \"", name,
      "\" (expected constant, step or cosine)"));
}

absl::string_view LrScheduleName(LrSchedule s) {
  switch (s) {
    case LrSchedule::kConstant: return "constant";
    case LrSchedule::kStep: return "step";
    case LrSchedule::kCosine: return "cosine";
  }
  return "?";
}

absl::StatusOr<OptimizerKind> ParseOptimizerKind(absl::string_view name) {
  if (name == "sgd") return OptimizerKind::kSgd;
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "adamw") return OptimizerKind::kAdamW;
  return absl::InvalidArgumentError(absl::StrCat(
      "--optimizer: unknown optimizer \"", name,
      "\" (expected sgd, adam or adamw)"));
}

absl::string_view OptimizerKindName(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::kSgd: return "sgd";
    case OptimizerKind::kAdam: return "adam";
    case OptimizerKind::kAdamW: return "adamw";
  }
  return "?";
}

absl::StatusOr<AnswerSet> ParseAnswerSet(absl::string_view name) {
  if (name == "batch") return AnswerSet::kBatch;
  if (name == "classes") return AnswerSet::kClasses;
  return absl::InvalidArgumentError(absl::StrCat(
      "--answers: unknown answer set \"", name, "\" (expected batch or classes)"));
}

absl::string_view AnswerSetName(AnswerSet a) {
  return a == AnswerSet::kClasses ? "classes" : "batch";
}

bool TakesClassAnswers(EmbeddingLossKind kind) {
  // ClassEnergyLoss applies the per-sample losses of core/loss/ebm_loss.h
  // (EbmSampleLoss); the general hinge is a different computation (a sum
  // over every incorrect answer with its own cost) it does not implement.
  return IsAnswerEnergyKind(kind) && kind != EmbeddingLossKind::kGeneralHinge;
}

double DefaultMargin(EmbeddingLossKind kind) {
  switch (kind) {
    case EmbeddingLossKind::kCosine: return 0.7;
    case EmbeddingLossKind::kHingeEmbedding: return 0.4;
    case EmbeddingLossKind::kMarginSquareSquare: return 1.0;
    default: return 0.2;
  }
}

Mining DefaultMining(EmbeddingLossKind kind) {
  switch (kind) {
    case EmbeddingLossKind::kCosine:
    case EmbeddingLossKind::kHingeEmbedding:
      // With every pair of a batch (90% negatives) P@1 falls after the
      // first epoch: the positive term pulls classes to points.
      return Mining::kSemiHard;
    default:
      return Mining::kAll;
  }
}

double EffectiveMargin(const TrainerOptions& o) {
  return o.margin < 0 ? DefaultMargin(o.loss) : o.margin;
}

AugmentOptions AugmentOptionsOf(const TrainerOptions& o) {
  AugmentOptions aug;  // flip + 2 px shift
  aug.horizontal_flip = o.augment_flip;
  aug.crop_min_area = static_cast<float>(o.augment_crop_min_area);
  aug.brightness = aug.contrast = aug.saturation = static_cast<float>(o.augment_jitter);
  return aug;
}

std::vector<std::string> TrainerPresetNames() { return {"default", "quality"}; }

absl::StatusOr<std::vector<PresetFlag>> TrainerPresetFlags(absl::string_view name) {
  if (name == "default") return std::vector<PresetFlag>{};
  if (name == "quality") {
    // Only what differs from the default recipe: the loss, batches,
    // optimizer, schedule and augmentation are the default's.
    return std::vector<PresetFlag>{
        {"arch", kQualityPresetArch},
        {"epochs", absl::StrCat(kQualityPresetEpochs)},
        {"eval_every", absl::StrCat(kQualityPresetEvalEvery)},
        // Triplet plus the energy-based classifier's NLL over learned class
        // vectors (cosine softmax at scale 2 x 8): +0.2 points P@1 and +0.5
        // mAP@R on the reference network (bench/results/trainer.md).
        {"class_weight", "1"},
        {"beta", "8"},
        // Embeddings of both left-right views, averaged: +0.8 points P@1
        // on the preset's 20-epoch model, for twice the encoding cost.
        {"flip_average", "true"},
    };
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--preset: unknown preset \"", name, "\" (expected ",
      absl::StrJoin(TrainerPresetNames(), " or "), ")"));
}

std::string DescribeTrainerPreset(absl::string_view name) {
  absl::StatusOr<std::vector<PresetFlag>> flags = TrainerPresetFlags(name);
  if (!flags.ok()) return "";
  return absl::StrJoin(*flags, " ", [](std::string* out, const PresetFlag& f) {
    absl::StrAppend(out, "--", f.flag, "=", f.value);
  });
}

absl::Status ValidateTrainerOptions(const TrainerOptions& o) {
  auto bad = [](absl::string_view flag, absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", what));
  };
  if (o.data.empty()) return bad("data", "must name a dataset directory");
  if (o.work_dir.empty()) {
    return bad("work_dir", "is required (checkpoints, metrics and plots go there)");
  }
  if (o.train_limit < 0) return bad("train_limit", "must be >= 0 (0 = all)");
  if (o.test_limit < 0) return bad("test_limit", "must be >= 0 (0 = all)");
  if (double f = 0; absl::SimpleAtod(o.holdout_classes, &f) && !(f > 0 && f < 1)) {
    return bad("holdout_classes", "a fraction must be in (0, 1), or give a file of class names");
  }
  if (std::isnan(o.margin) || !std::isfinite(o.margin)) {
    return bad("margin", "must be a finite number (negative: the loss's default)");
  }
  if (!(o.p >= 1) || !std::isfinite(o.p)) return bad("p", "must be >= 1");
  if (!(o.beta > 0) || !std::isfinite(o.beta)) return bad("beta", "must be > 0");
  if (o.answers == AnswerSet::kClasses && !TakesClassAnswers(o.loss)) {
    return bad("answers", absl::StrCat(
        "classes works with the losses on answer energies (nll, energy, perceptron, "
        "hinge, log, square-square), not ", EmbeddingLossKindName(o.loss)));
  }
  if (!(o.class_weight >= 0) || !std::isfinite(o.class_weight)) {
    return bad("class_weight", "must be >= 0 (0: off)");
  }
  if (o.class_weight > 0 && o.answers == AnswerSet::kClasses) {
    return bad("class_weight", "adds a class term to a batch loss; with --answers=classes "
                               "the loss is on classes already");
  }
  if (o.mining_warmup_steps < -1) {
    return bad("mining_warmup_steps", "must be -1 (auto), 0 (none) or positive");
  }
  if (o.dim < 1 || o.dim > 4096) return bad("dim", "must be in [1, 4096]");
  if (o.hidden < 1) return bad("hidden", "must be >= 1");
  if (o.conv_channels.empty() || o.conv_channels.size() > 4) {
    return bad("conv", "must list 1 to 4 conv widths (each halves the image side)");
  }
  for (int w : o.conv_channels) {
    if (w < 1 || w > 1024) return bad("conv", "each width must be in [1, 1024]");
  }
  if (!(o.dropout >= 0 && o.dropout < 1)) return bad("dropout", "must be in [0, 1)");
  if (!o.input.empty()) {
    if (absl::Status s = ParseInputShape(o.input).status(); !s.ok()) {
      return bad("input", std::string(s.message()));
    }
  }
  if (o.classes_per_batch < 2) {
    return bad("classes-per-batch", "must be >= 2 (negatives come from other classes)");
  }
  if (o.images_per_class < 2) {
    return bad("images-per-class", "must be >= 2 (an anchor needs a positive)");
  }
  if (o.epochs < 1) return bad("epochs", "must be >= 1");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) return bad("lr", "must be > 0");
  if (!(o.momentum >= 0 && o.momentum < 1)) return bad("momentum", "must be in [0, 1)");
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) {
    return bad("weight-decay", "must be >= 0");
  }
  if (o.warmup_steps < 0) return bad("warmup_steps", "must be >= 0");
  if (!(o.step_gamma > 0 && o.step_gamma <= 1)) {
    return bad("step_gamma", "must be in (0, 1]");
  }
  if (o.step_every_epochs < 0) return bad("step_every_epochs", "must be >= 0");
  if (o.threads < 0) return bad("threads", "must be >= 0 (0 = all cores)");
  if (o.eval_every < 0) return bad("eval_every", "must be >= 0 (0 = only at the end)");
  if (o.collapse_patience < 1) return bad("collapse_patience", "must be >= 1");
  if (o.index_spec.empty()) return bad("index_spec", "must be a FAISS index_factory string");
  if (o.max_picture_side < 0) return bad("max_picture_side", "must be >= 0 (0: full size)");
  if (!(o.augment_crop_min_area > 0 && o.augment_crop_min_area <= 1)) {
    return bad("augment_crop_min_area", "must be in (0, 1] (1: no crop)");
  }
  if (!(o.augment_jitter >= 0 && o.augment_jitter <= 1)) {
    return bad("augment_jitter", "must be in [0, 1] (0: off)");
  }
  if (o.log_every < 1) return bad("log_every", "must be >= 1");
  if (!(o.stop_at_p1 >= 0 && o.stop_at_p1 <= 1)) {
    return bad("stop_at_p1", "must be in [0, 1] (0: off)");
  }
  return absl::OkStatus();
}

}  // namespace embedsearch
