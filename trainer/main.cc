// embedsearch-trainer: trains the image encoder with a metric-learning loss,
// evaluates retrieval after every epoch and exports a bundle for the server.
// Flags only; the work is in trainer.h.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/loss/embedding_loss.h"
#include "trainer/trainer.h"

namespace {
const embedsearch::TrainerOptions kDefaults;
}  // namespace

ABSL_FLAG(std::string, preset, "default",
          absl::StrCat(
              "Named recipe; flags given explicitly override its settings. default: the "
              "10-minute recipe of the other defaults. quality: the deeper encoder aimed at "
              "P@1 >= 0.93 on Fashion-MNIST within an hour on 2 cores (docs/training.md), = ",
              embedsearch::DescribeTrainerPreset("quality")));
ABSL_FLAG(std::string, data, kDefaults.data,
          "Fashion-MNIST directory (IDX files) or an image folder ROOT/<label>/*");
ABSL_FLAG(std::string, out, "bundle", "Bundle directory to export (empty: no export)");
ABSL_FLAG(std::string, work_dir, "train-work",
          "Checkpoint, metrics.jsonl and plots directory");
ABSL_FLAG(bool, resume, false, "Continue from <work_dir>/checkpoint.bin");
ABSL_FLAG(int64_t, train_limit, 0, "Use only the first N training images (0: all)");
ABSL_FLAG(int64_t, test_limit, 0, "Use only the first N test images (0: all)");
ABSL_FLAG(std::string, holdout_classes, "",
          "Classes never trained on, evaluated each epoch by leave-one-out "
          "retrieval: a fraction (e.g. 0.5, chosen by a hash of --seed and the "
          "class name) or a file with one class name a line (empty: none)");
ABSL_FLAG(std::string, loss, "triplet",
          "triplet | cosine | hinge-embedding | hinge | log | square-square "
          "(also nll, perceptron)");
ABSL_FLAG(std::string, mining, "",
          "all (batch-all) | batch-hard | semi-hard; default: semi-hard for cosine and "
          "hinge-embedding, all for the other losses");
ABSL_FLAG(std::string, answers, "batch",
          "What nll/hinge/log/square-square/perceptron compare an image with: batch (the "
          "other images of its batch, chosen by --mining) | classes (one learned vector "
          "per class: the energy-based classifier; needs no mining)");
ABSL_FLAG(double, class_weight, kDefaults.class_weight,
          "Adds this weight x the class-answer NLL (with --beta) to a batch loss, "
          "training one vector per class alongside (0: off)");
ABSL_FLAG(double, margin, kDefaults.margin,
          "Loss margin (negative: the loss's default: triplet 0.2, cosine 0.7, "
          "hinge-embedding 0.4, hinge 0.2, square-square 1.0)");
ABSL_FLAG(double, p, kDefaults.p, "Norm of the pair distance (>= 1)");
ABSL_FLAG(bool, swap, kDefaults.swap, "Triplet distance swap");
ABSL_FLAG(bool, squared_energy, kDefaults.squared_energy,
          "EBM margin losses use squared L2 energy");
ABSL_FLAG(double, beta, kDefaults.beta,
          "Inverse temperature of --loss=nll (> 0; larger = sharper softmax)");
ABSL_FLAG(int64_t, mining_warmup_steps, kDefaults.mining_warmup_steps,
          "Batch-all steps before batch-hard/semi-hard mining (-1: one epoch)");
ABSL_FLAG(int, dim, kDefaults.dim, "Embedding dimension");
ABSL_FLAG(bool, batch_norm, kDefaults.batch_norm, "Batch norm after each conv");
ABSL_FLAG(int, hidden, kDefaults.hidden, "Hidden units of the fully connected layer");
ABSL_FLAG(std::string, conv, absl::StrJoin(kDefaults.conv_channels, ","),
          "Conv widths, comma-separated; each conv is followed by a 2x2 max-pool");
ABSL_FLAG(double, dropout, kDefaults.dropout, "Dropout after the hidden layer (0: off)");
ABSL_FLAG(
    std::string, arch, kDefaults.arch,
    "Encoder: preset fmnist-small (the --conv/--hidden/--batch_norm/--dropout "
    "network; "
    "the default for gray input) or colour-small (the default for RGB input), "
    "or a spec like c32x2,p,c64x2,p,gap,fc128 or c32,r64s2x2,gap,fc64 "
    "(core/nn/arch_spec.h)");
ABSL_FLAG(std::string, input, kDefaults.input,
          "Model input HxWxC, e.g. 64x64x3 (default: the data's shape)");
ABSL_FLAG(int, classes_per_batch, kDefaults.classes_per_batch, "P of PK batches");
ABSL_FLAG(int, images_per_class, kDefaults.images_per_class, "K of PK batches");
ABSL_FLAG(int, epochs, kDefaults.epochs, "Epochs");
ABSL_FLAG(std::string, optimizer, "adam", "sgd (momentum) | adam | adamw");
ABSL_FLAG(double, lr, kDefaults.lr, "Peak learning rate");
ABSL_FLAG(double, momentum, kDefaults.momentum, "SGD momentum");
ABSL_FLAG(double, weight_decay, kDefaults.weight_decay, "Weight decay");
ABSL_FLAG(std::string, schedule, "cosine", "constant | step | cosine");
ABSL_FLAG(int64_t, warmup_steps, kDefaults.warmup_steps, "Linear LR warm-up steps");
ABSL_FLAG(double, step_gamma, kDefaults.step_gamma, "LR factor of the step schedule");
ABSL_FLAG(int, step_every_epochs, kDefaults.step_every_epochs,
          "Step schedule period in epochs (0: drops at 1/2 and 3/4 of the run)");
ABSL_FLAG(bool, augment, kDefaults.augment, "Random flip + 2 px shift");
ABSL_FLAG(bool, flip_average, kDefaults.flip_average,
          "Embed each image as the normalized sum of its and its mirror image's embeddings "
          "(evaluation, export and the server; twice the encoding cost)");
ABSL_FLAG(bool, augment_flip, kDefaults.augment_flip,
          "With --augment: random left-right flip (turn off for text, logos, flags)");
ABSL_FLAG(double, augment_crop_min_area, kDefaults.augment_crop_min_area,
          "With --augment: random resized crop keeping at least this area fraction (1: off)");
ABSL_FLAG(double, augment_jitter, kDefaults.augment_jitter,
          "With --augment: brightness/contrast/saturation jitter strength (0: off)");
ABSL_FLAG(uint64_t, seed, kDefaults.seed, "Seed of init, batches and augmentation");
ABSL_FLAG(int, threads, kDefaults.threads, "Compute threads (0: all cores)");
ABSL_FLAG(int, eval_every, kDefaults.eval_every,
          "Evaluate every N epochs (0: only after the last)");
ABSL_FLAG(int, collapse_patience, kDefaults.collapse_patience,
          "Steps at the trivial loss with ~0 spread before the collapse warning");
ABSL_FLAG(std::string, index_spec, kDefaults.index_spec,
          "FAISS index_factory spec of the exported bundle");
ABSL_FLAG(int, max_picture_side, kDefaults.max_picture_side,
          "Image folders: longest side of the pictures the bundle stores (0: full size)");
ABSL_FLAG(int, log_every, kDefaults.log_every,
          "Plain progress line every N steps when stderr is not a terminal");
ABSL_FLAG(double, stop_at_p1, kDefaults.stop_at_p1,
          "Stop early, and export, after the first evaluation with test precision@1 >= "
          "this (evaluations follow --eval_every; 0: off)");
ABSL_FLAG(int64_t, stop_after_steps, 0,
          "Stop (checkpoint, exit 130) after N steps, as Ctrl-C would");
ABSL_FLAG(bool, quiet, false, "No progress output");

namespace {

std::atomic<bool> g_stop{false};

void OnSigint(int) { g_stop.store(true); }

// Names of the flags given in `args` (dashes already made underscores):
// "--epochs=3" and "--epochs 3" give "epochs", "--noaugment" gives "augment".
// By hand because Debian 12's Abseil (20220623) has no public way to ask
// whether a flag was on the command line: CommandLineFlag's
// IsSpecifiedOnCommandLine is private and WasPresentOnCommandLine internal.
absl::flat_hash_set<std::string> FlagsOnCommandLine(const std::vector<std::string>& args) {
  absl::flat_hash_set<std::string> names;
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    absl::string_view a = args[i];
    if (!absl::ConsumePrefix(&a, "--") && !absl::ConsumePrefix(&a, "-")) continue;
    std::string name(a.substr(0, a.find('=')));
    if (absl::FindCommandLineFlag(name) == nullptr && absl::StartsWith(name, "no") &&
        absl::FindCommandLineFlag(name.substr(2)) != nullptr) {
      name = name.substr(2);
    }
    names.insert(name);
  }
  return names;
}

// Sets the flags of preset `name` that are not in `given`, with each flag's
// own parser: explicit flags override the preset.
absl::Status ApplyPreset(absl::string_view name, const absl::flat_hash_set<std::string>& given) {
  absl::StatusOr<std::vector<embedsearch::PresetFlag>> flags =
      embedsearch::TrainerPresetFlags(name);
  if (!flags.ok()) return flags.status();
  for (const embedsearch::PresetFlag& f : *flags) {
    if (given.contains(f.flag)) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(f.flag);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(f.value, &error)) {
      return absl::InternalError(absl::StrCat("--preset ", name, ": cannot set --", f.flag, "=",
                                              f.value, " ", error));
    }
  }
  return absl::OkStatus();
}

int Fail(const std::string& msg, int code) {
  std::fprintf(stderr, "embedsearch-trainer: %s\n", msg.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace embedsearch;  // NOLINT: a thin main
  // Accept --classes-per-batch as well as --classes_per_batch: absl flag
  // names are identifiers, so dashes in the name part become underscores.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> argp;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string& a = args[i];
    if (i > 0 && a.size() > 2 && a.compare(0, 2, "--") == 0) {
      const size_t end = std::min(a.find('='), a.size());
      for (size_t j = 2; j < end; ++j)
        if (a[j] == '-') a[j] = '_';
    }
    argp.push_back(a.data());
  }
  argp.push_back(nullptr);
  absl::SetProgramUsageMessage(
      "Trains the image encoder with a metric-learning loss and exports a "
      "bundle.\n  embedsearch-trainer --data=/usr/share/datasets/fashion-mnist "
      "--out=bundle --work_dir=train-work [--preset quality]");
  // --help lists this file's flags (absl's default looks for a file named
  // after the program, which this one is not).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "trainer/main.cc");
  };
  absl::SetFlagsUsageConfig(usage);
  int n = argc;
  absl::ParseCommandLine(n, argp.data());
  if (absl::Status s = ApplyPreset(absl::GetFlag(FLAGS_preset), FlagsOnCommandLine(args));
      !s.ok()) {
    return Fail(std::string(s.message()), 2);
  }

  TrainerOptions o;
  o.data = absl::GetFlag(FLAGS_data);
  o.out = absl::GetFlag(FLAGS_out);
  o.work_dir = absl::GetFlag(FLAGS_work_dir);
  o.resume = absl::GetFlag(FLAGS_resume);
  o.train_limit = absl::GetFlag(FLAGS_train_limit);
  o.test_limit = absl::GetFlag(FLAGS_test_limit);
  o.holdout_classes = absl::GetFlag(FLAGS_holdout_classes);
  absl::StatusOr<EmbeddingLossKind> loss = ParseEmbeddingLossKind(absl::GetFlag(FLAGS_loss));
  if (!loss.ok()) return Fail(absl::StrCat("--loss: ", loss.status().message()), 2);
  o.loss = *loss;
  if (absl::GetFlag(FLAGS_mining).empty()) {
    o.mining = DefaultMining(o.loss);
  } else {
    absl::StatusOr<Mining> mining = ParseMining(absl::GetFlag(FLAGS_mining));
    if (!mining.ok()) return Fail(absl::StrCat("--mining: ", mining.status().message()), 2);
    o.mining = *mining;
  }
  absl::StatusOr<AnswerSet> answers = ParseAnswerSet(absl::GetFlag(FLAGS_answers));
  if (!answers.ok()) return Fail(std::string(answers.status().message()), 2);
  o.answers = *answers;
  o.class_weight = absl::GetFlag(FLAGS_class_weight);
  o.margin = absl::GetFlag(FLAGS_margin);
  o.p = absl::GetFlag(FLAGS_p);
  o.swap = absl::GetFlag(FLAGS_swap);
  o.squared_energy = absl::GetFlag(FLAGS_squared_energy);
  o.beta = absl::GetFlag(FLAGS_beta);
  o.mining_warmup_steps = absl::GetFlag(FLAGS_mining_warmup_steps);
  o.dim = absl::GetFlag(FLAGS_dim);
  o.batch_norm = absl::GetFlag(FLAGS_batch_norm);
  o.hidden = absl::GetFlag(FLAGS_hidden);
  o.conv_channels.clear();
  for (absl::string_view width : absl::StrSplit(absl::GetFlag(FLAGS_conv), ',')) {
    int w = 0;
    if (!absl::SimpleAtoi(width, &w)) {
      return Fail(absl::StrCat("--conv: \"", width, "\" is not a width (e.g. --conv 32,64)"), 2);
    }
    o.conv_channels.push_back(w);
  }
  o.dropout = absl::GetFlag(FLAGS_dropout);
  o.arch = absl::GetFlag(FLAGS_arch);
  o.input = absl::GetFlag(FLAGS_input);
  o.classes_per_batch = absl::GetFlag(FLAGS_classes_per_batch);
  o.images_per_class = absl::GetFlag(FLAGS_images_per_class);
  o.epochs = absl::GetFlag(FLAGS_epochs);
  absl::StatusOr<OptimizerKind> opt = ParseOptimizerKind(absl::GetFlag(FLAGS_optimizer));
  if (!opt.ok()) return Fail(std::string(opt.status().message()), 2);
  o.optimizer = *opt;
  o.lr = absl::GetFlag(FLAGS_lr);
  o.momentum = absl::GetFlag(FLAGS_momentum);
  o.weight_decay = absl::GetFlag(FLAGS_weight_decay);
  absl::StatusOr<LrSchedule> schedule = ParseLrSchedule(absl::GetFlag(FLAGS_schedule));
  if (!schedule.ok()) return Fail(std::string(schedule.status().message()), 2);
  o.schedule = *schedule;
  o.warmup_steps = absl::GetFlag(FLAGS_warmup_steps);
  o.step_gamma = absl::GetFlag(FLAGS_step_gamma);
  o.step_every_epochs = absl::GetFlag(FLAGS_step_every_epochs);
  o.augment = absl::GetFlag(FLAGS_augment);
  o.augment_flip = absl::GetFlag(FLAGS_augment_flip);
  o.flip_average = absl::GetFlag(FLAGS_flip_average);
  o.augment_crop_min_area = absl::GetFlag(FLAGS_augment_crop_min_area);
  o.augment_jitter = absl::GetFlag(FLAGS_augment_jitter);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.eval_every = absl::GetFlag(FLAGS_eval_every);
  o.collapse_patience = absl::GetFlag(FLAGS_collapse_patience);
  o.index_spec = absl::GetFlag(FLAGS_index_spec);
  o.max_picture_side = absl::GetFlag(FLAGS_max_picture_side);
  o.log_every = absl::GetFlag(FLAGS_log_every);
  o.stop_at_p1 = absl::GetFlag(FLAGS_stop_at_p1);
  o.stop_after_steps = absl::GetFlag(FLAGS_stop_after_steps);
  o.quiet = absl::GetFlag(FLAGS_quiet);
  o.progress_tty = isatty(STDERR_FILENO) != 0;
  o.command_line = absl::StrJoin(argv, argv + argc, " ");
  if (absl::Status s = ValidateTrainerOptions(o); !s.ok()) {
    return Fail(std::string(s.message()), 2);
  }

  // Ctrl-C: finish the current step, write the checkpoint, exit 130. A
  // second Ctrl-C kills at once (SA_RESETHAND restores the default).
  struct sigaction sa = {};
  sa.sa_handler = OnSigint;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  absl::StatusOr<TrainResult> result = Train(o, &g_stop);
  if (!result.ok()) {
    const int code = absl::IsCancelled(result.status()) ? 130 : 1;
    return Fail(std::string(result.status().message()), code);
  }
  const TrainResult& r = *result;
  if (!r.history.empty() && r.history.back().evaluated) {
    const RetrievalMetrics& m = r.history.back().metrics;
    std::fprintf(stderr,
                 "final: precision@1 %.4f  recall@5 %.4f  recall@10 %.4f  "
                 "mAP@R %.4f  (%lld queries)\n",
                 m.precision_at_1, m.recall_at_5, m.recall_at_10, m.map_at_r,
                 static_cast<long long>(m.queries));
  }
  if (!r.history.empty() && r.history.back().held_out_evaluated) {
    const RetrievalMetrics& m = r.history.back().held_out;
    std::fprintf(stderr,
                 "final held-out classes (leave-one-out): precision@1 %.4f  "
                 "recall@5 %.4f  recall@10 %.4f  mAP@R %.4f  (%lld queries)\n",
                 m.precision_at_1, m.recall_at_5, m.recall_at_10, m.map_at_r,
                 static_cast<long long>(m.queries));
  }
  if (r.stopped_at_p1) {
    std::fprintf(stderr, "stopped after epoch %d of %d: --stop_at_p1 %g reached\n",
                 r.history.back().epoch, o.epochs, o.stop_at_p1);
  }
  if (r.collapse_detected) {
    std::fprintf(stderr, "WARNING: embedding collapse was detected during training\n");
  }
  std::fprintf(stderr, "model %s; metrics and plots in %s%s%s\n",
               r.model_version.c_str(), o.work_dir.c_str(),
               r.bundle_dir.empty() ? "" : "; bundle in ", r.bundle_dir.c_str());
  return 0;
}
