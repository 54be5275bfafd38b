#include "trainer/trainer.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
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
#include "core/nn/optimizer.h"
#include "core/util/file.h"
#include "core/util/status_macros.h"
#include "trainer/checkpoint.h"
#include "trainer/class_vectors.h"
#include "trainer/collapse_detector.h"
#include "trainer/epoch_textfile.h"
#include "trainer/plots.h"
#include "trainer/progress.h"

namespace embedsearch {
namespace {

constexpr double kPi = 3.14159265358979323846;

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status MakeDirs(const std::string& path) {
  std::string cur;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    cur = cur.empty() && path[0] == '/' ? absl::StrCat("/", part)
                                        : (cur.empty() ? std::string(part)
                                                       : absl::StrCat(cur, "/", part));
    if (part.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir", cur);
    }
  }
  return absl::OkStatus();
}

bool IsFashionMnistDir(const std::string& dir) {
  for (const char* name :
       {"train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"}) {
    if (FileExists(absl::StrCat(dir, "/", name))) return true;
  }
  return false;
}

// Options whose change makes a checkpoint meaningless for this run.
std::string Fingerprint(const TrainerOptions& o) {
  return absl::StrFormat(
      "data=%s train_limit=%d loss=%s mining=%s margin=%.17g p=%.17g swap=%d "
      "squared=%d beta=%.17g dim=%d bn=%d hidden=%d conv=%s dropout=%.17g P=%d K=%d optimizer=%s seed=%d "
      "augment=%d answers=%s class_weight=%.17g",
      o.data, o.train_limit, EmbeddingLossKindName(o.loss),
      MiningName(o.mining), EffectiveMargin(o), o.p, o.swap, o.squared_energy, o.beta, o.dim,
      o.batch_norm, o.hidden, absl::StrJoin(o.conv_channels, ","), o.dropout,
      o.classes_per_batch, o.images_per_class,
      OptimizerKindName(o.optimizer), o.seed, o.augment, AnswerSetName(o.answers),
      o.class_weight);
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

// Key=value lines (the checkpoint's "meta" section).
std::string EncodeMeta(const std::map<std::string, std::string>& kv) {
  std::string out;
  for (const auto& [k, v] : kv) absl::StrAppend(&out, k, "=", v, "\n");
  return out;
}
std::map<std::string, std::string> DecodeMeta(absl::string_view text) {
  std::map<std::string, std::string> kv;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    kv[p.first] = p.second;
  }
  return kv;
}

// History records as "%a" hex floats so they survive bit-exactly.
std::string EncodeHistory(const std::vector<EpochRecord>& h) {
  std::string out;
  for (const EpochRecord& r : h) {
    absl::StrAppendFormat(&out, "%d %d %d %a %a %a %a %a %d %d %a %a %a %a %a\n",
                          r.epoch, r.steps, r.global_step, r.loss, r.spread,
                          r.lr, r.seconds, r.images_per_second, r.evaluated,
                          r.metrics.queries, r.metrics.precision_at_1,
                          r.metrics.recall_at_1, r.metrics.recall_at_5,
                          r.metrics.recall_at_10, r.metrics.map_at_r);
  }
  return out;
}
absl::StatusOr<std::vector<EpochRecord>> DecodeHistory(absl::string_view text) {
  std::vector<EpochRecord> h;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() != 15) return absl::DataLossError("checkpoint history: bad line");
    EpochRecord r;
    int evaluated = 0;
    auto d = [&](int i) { return std::strtod(f[i].c_str(), nullptr); };
    if (!absl::SimpleAtoi(f[0], &r.epoch) || !absl::SimpleAtoi(f[1], &r.steps) ||
        !absl::SimpleAtoi(f[2], &r.global_step) ||
        !absl::SimpleAtoi(f[8], &evaluated) ||
        !absl::SimpleAtoi(f[9], &r.metrics.queries)) {
      return absl::DataLossError("checkpoint history: bad integer");
    }
    r.loss = d(3), r.spread = d(4), r.lr = d(5), r.seconds = d(6);
    r.images_per_second = d(7);
    r.evaluated = evaluated != 0;
    r.metrics.precision_at_1 = d(10), r.metrics.recall_at_1 = d(11);
    r.metrics.recall_at_5 = d(12), r.metrics.recall_at_10 = d(13);
    r.metrics.map_at_r = d(14);
    h.push_back(r);
  }
  return h;
}

std::string RngStateText(const Rng& rng) {
  const Rng::State s = rng.state();
  return absl::StrFormat("%d %d %d %d", s[0], s[1], s[2], s[3]);
}
absl::Status ParseRngState(absl::string_view text, Rng* rng) {
  std::vector<std::string> f = absl::StrSplit(text, ' ');
  Rng::State s;
  if (f.size() != 4) return absl::DataLossError("checkpoint: bad rng state");
  for (int i = 0; i < 4; ++i) {
    if (!absl::SimpleAtoi(f[i], &s[i])) {
      return absl::DataLossError("checkpoint: bad rng state");
    }
  }
  rng->set_state(s);
  return absl::OkStatus();
}

// Pixel mean/std of a dataset (for image folders; Fashion-MNIST uses the
// published values that are the EncoderConfig defaults).
Normalization MeasureNormalization(const Dataset& d) {
  double sum = 0, sq = 0;
  const size_t n = d.pixels.size();
  for (uint8_t p : d.pixels) {
    const double v = p / 255.0;
    sum += v;
    sq += v * v;
  }
  Normalization norm;
  if (n == 0) return norm;
  norm.mean = static_cast<float>(sum / n);
  const double var = sq / n - (sum / n) * (sum / n);
  norm.std = static_cast<float>(std::sqrt(std::max(var, 1e-6)));
  return norm;
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
  std::string json = absl::StrFormat(
      "{\"epoch\":%d,\"steps\":%d,\"global_step\":%d,\"loss\":%.6f,"
      "\"spread\":%.4f,\"lr\":%.6g,\"seconds\":%.2f,\"images_per_second\":%.1f,"
      "\"loss_kind\":\"%s\",\"mining\":\"%s\",\"answers\":\"%s\"",
      r.epoch, r.steps, r.global_step, r.loss, r.spread, r.lr, r.seconds,
      r.images_per_second, EmbeddingLossKindName(o.loss), MiningName(o.mining),
      AnswerSetName(o.answers));
  if (r.evaluated) {
    std::string m = RetrievalMetricsJson(r.metrics);  // {"queries":...}
    absl::StrAppend(&json, ",", m.substr(1, m.size() - 2));
  }
  json += "}";
  return json;
}

void NormalizeImages(const Dataset& dataset, size_t begin, size_t n,
                     const Normalization& norm, float* out) {
  const int pixels = dataset.height * dataset.width;
  NormalizePixels(dataset.image(begin), static_cast<int>(n * pixels), norm, out);
}

std::vector<float> EncodeDataset(const Encoder& encoder, const Dataset& dataset,
                                 int threads) {
  const int dim = encoder.dim();
  const size_t pixels = static_cast<size_t>(dataset.height) * dataset.width;
  std::vector<float> out(dataset.size() * dim);
  constexpr size_t kChunk = 512;  // bounds the float input buffer (1.6 MB)
  std::vector<float> input(kChunk * pixels);
  for (size_t b = 0; b < dataset.size(); b += kChunk) {
    const size_t n = std::min(kChunk, dataset.size() - b);
    NormalizeImages(dataset, b, n, encoder.config().normalization, input.data());
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
  ASSIGN_OR_RETURN(Dataset all, LoadImageFolder(o.data));
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

absl::StatusOr<TrainResult> Train(const TrainerOptions& o,
                                  const std::atomic<bool>* stop) {
  RETURN_IF_ERROR(ValidateTrainerOptions(o));
  RETURN_IF_ERROR(MakeDirs(o.work_dir));
  const std::string ckpt_path = absl::StrCat(o.work_dir, "/checkpoint.bin");
  if (!o.resume && FileExists(ckpt_path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        ckpt_path, " exists: pass --resume to continue that run, or use "
                   "another --work_dir"));
  }
  FILE* log = stderr;
  ProgressReporter progress(log, {.tty = o.progress_tty && !o.quiet,
                                  .log_every = o.quiet ? 0 : o.log_every});
  auto say = [&](const std::string& s) {
    if (!o.quiet) progress.Line(s);
  };

  ASSIGN_OR_RETURN(TrainingData data, LoadTrainingData(o));
  const Dataset& train = data.train;
  const Dataset& test = data.test;
  if (test.size() == 0) return absl::InvalidArgumentError("no test images");

  EncoderConfig config;
  config.input_height = train.height;
  config.input_width = train.width;
  config.embedding_dim = o.dim;
  config.batch_norm = o.batch_norm;
  config.hidden = o.hidden;
  config.conv_channels = o.conv_channels;
  config.dropout = static_cast<float>(o.dropout);
  config.l2_normalize = true;
  if (!data.gallery_is_train) config.normalization = MeasureNormalization(train);
  ASSIGN_OR_RETURN(std::unique_ptr<Encoder> encoder, Encoder::Create(config, o.seed));
  encoder->set_threads(o.threads);
  // Only with --answers=classes or --class_weight; then trained and
  // checkpointed with the encoder.
  const bool class_answers = o.answers == AnswerSet::kClasses;
  const bool uses_class_vectors = class_answers || o.class_weight > 0;
  const int classes = static_cast<int>(train.label_names.size());
  Parameter class_vectors = MakeClassVectors(
      uses_class_vectors ? classes : 0, o.dim, o.seed);
  Parameter* trained_class_vectors = uses_class_vectors ? &class_vectors : nullptr;
  std::unique_ptr<Optimizer> optimizer =
      MakeOptimizer(o, *encoder, trained_class_vectors);

  PkSamplerOptions pk;
  pk.classes_per_batch = o.classes_per_batch;
  pk.images_per_class = o.images_per_class;
  pk.seed = o.seed;
  absl::StatusOr<PkSampler> sampler_or = PkSampler::Create(train.labels, pk);
  if (!sampler_or.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--classes-per-batch/--images-per-class: ", sampler_or.status().message()));
  }
  PkSampler sampler = std::move(*sampler_or);
  Rng aug_rng(o.seed * 0x9E3779B97F4A7C15ull + 17);

  // Run state (restored from the checkpoint on resume).
  std::vector<EpochRecord> history;
  int completed_epochs = 0;
  int64_t step_in_epoch = 0;  // steps done in the current (partial) epoch
  int64_t global_step = 0;
  double epoch_loss_sum = 0, epoch_spread_sum = 0, epoch_seconds = 0;
  bool collapse_warned = false;

  if (o.resume && FileExists(ckpt_path)) {
    ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Load(ckpt_path));
    ASSIGN_OR_RETURN(std::string meta_text, ckpt.Get("meta"));
    std::map<std::string, std::string> meta = DecodeMeta(meta_text);
    if (meta["fingerprint"] != Fingerprint(o)) {
      return absl::FailedPreconditionError(absl::StrCat(
          ckpt_path, " was written by a run with other options; checkpoint: [",
          meta["fingerprint"], "], now: [", Fingerprint(o), "]"));
    }
    ASSIGN_OR_RETURN(std::string model, ckpt.Get("model"));
    ASSIGN_OR_RETURN(encoder, Encoder::FromBytes(model));
    encoder->set_threads(o.threads);
    if (uses_class_vectors) {
      ASSIGN_OR_RETURN(std::string vectors, ckpt.Get("class_vectors"));
      RETURN_IF_ERROR(ClassVectorsFromBytes(vectors, &class_vectors));
    }
    optimizer = MakeOptimizer(o, *encoder, trained_class_vectors);
    ASSIGN_OR_RETURN(std::string opt_state, ckpt.Get("optimizer"));
    RETURN_IF_ERROR(optimizer->LoadState(opt_state));
    PkSamplerState st;
    if (!absl::SimpleAtoi(meta["sampler_seed"], &st.seed) ||
        !absl::SimpleAtoi(meta["sampler_epoch"], &st.epoch) ||
        !absl::SimpleAtoi(meta["sampler_step"], &st.step) ||
        !absl::SimpleAtoi(meta["completed_epochs"], &completed_epochs) ||
        !absl::SimpleAtoi(meta["step_in_epoch"], &step_in_epoch) ||
        !absl::SimpleAtoi(meta["global_step"], &global_step)) {
      return absl::DataLossError(absl::StrCat(ckpt_path, ": bad meta section"));
    }
    RETURN_IF_ERROR(sampler.Restore(st));
    RETURN_IF_ERROR(ParseRngState(meta["aug_rng"], &aug_rng));
    epoch_loss_sum = std::strtod(meta["epoch_loss_sum"].c_str(), nullptr);
    epoch_spread_sum = std::strtod(meta["epoch_spread_sum"].c_str(), nullptr);
    epoch_seconds = std::strtod(meta["epoch_seconds"].c_str(), nullptr);
    collapse_warned = meta["collapse_warned"] == "1";
    ASSIGN_OR_RETURN(std::string hist, ckpt.Get("history"));
    ASSIGN_OR_RETURN(history, DecodeHistory(hist));
    say(absl::StrFormat("resumed %s: %d epochs + %d steps done (step %d)",
                        ckpt_path, completed_epochs, step_in_epoch, global_step));
  }

  auto save_checkpoint = [&]() -> absl::Status {
    Checkpoint ckpt;
    ckpt.Set("model", encoder->ToBytes());
    ckpt.Set("optimizer", optimizer->SaveState());
    if (uses_class_vectors) ckpt.Set("class_vectors", ClassVectorsToBytes(class_vectors));
    ckpt.Set("history", EncodeHistory(history));
    const PkSamplerState st = sampler.state();
    std::map<std::string, std::string> meta = {
        {"fingerprint", Fingerprint(o)},
        {"sampler_seed", absl::StrCat(st.seed)},
        {"sampler_epoch", absl::StrCat(st.epoch)},
        {"sampler_step", absl::StrCat(st.step)},
        {"completed_epochs", absl::StrCat(completed_epochs)},
        {"step_in_epoch", absl::StrCat(step_in_epoch)},
        {"global_step", absl::StrCat(global_step)},
        {"aug_rng", RngStateText(aug_rng)},
        {"epoch_loss_sum", absl::StrFormat("%a", epoch_loss_sum)},
        {"epoch_spread_sum", absl::StrFormat("%a", epoch_spread_sum)},
        {"epoch_seconds", absl::StrFormat("%a", epoch_seconds)},
        {"collapse_warned", collapse_warned ? "1" : "0"},
        {"command_line", o.command_line}};
    ckpt.Set("meta", EncodeMeta(meta));
    return ckpt.Save(ckpt_path);
  };

  // The number of batches differs slightly between epochs (PkSampler drops
  // leftovers); the schedule uses the first epoch's count for all.
  const int64_t steps_per_epoch = [&] {
    PkSampler probe = sampler;
    (void)probe.Restore({o.seed, 0, 0});
    return probe.batches_in_epoch();
  }();
  if (steps_per_epoch < 1) {
    return absl::InvalidArgumentError(
        "the training set is too small for one PK batch per epoch");
  }
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t mining_warmup =
      o.mining == Mining::kAll || class_answers ? 0
      : o.mining_warmup_steps < 0 ? steps_per_epoch
                                  : o.mining_warmup_steps;

  EmbeddingLossOptions loss_options;
  loss_options.kind = o.loss;
  loss_options.mining = o.mining;
  loss_options.margin = EffectiveMargin(o);
  loss_options.p = o.p;
  loss_options.swap = o.swap;
  loss_options.squared_energy = o.squared_energy;
  loss_options.beta = o.beta;

  CollapseDetector collapse({.patience = o.collapse_patience});
  const int dim = o.dim;
  const int batch = o.classes_per_batch * o.images_per_class;
  const size_t pixels = static_cast<size_t>(train.height) * train.width;
  std::vector<uint8_t> batch_pixels(batch * pixels);
  std::vector<float> batch_input(batch * pixels);
  std::vector<float> embeddings(batch * dim);
  std::vector<float> same(batch * dim, 0.f);
  for (int i = 0; i < batch; ++i) same[i * dim] = 1.f;  // collapsed batch
  std::vector<int32_t> batch_labels(batch);
  // The class-answer loss of `kind` on `emb` (batch rows); stores the class
  // vectors' gradient, scaled by `weight`, when `train_class_vectors`.
  auto class_loss = [&](const float* emb, EmbeddingLossKind kind, const EbmOptions& eo,
                        double weight, bool train_class_vectors)
      -> absl::StatusOr<ClassEnergyLossResult> {
    ASSIGN_OR_RETURN(ClassEnergyLossResult c,
                     ClassEnergyLoss(emb, batch, dim, batch_labels.data(),
                                     class_vectors.value.data(), classes,
                                     ToEbmLossKind(kind), eo));
    if (train_class_vectors) {
      for (float& g : c.grad_prototypes) g *= static_cast<float>(weight);
      class_vectors.grad = std::move(c.grad_prototypes);
    }
    return c;
  };
  // The step's loss on `emb`: against the class vectors (--answers=classes)
  // or within the batch, plus the weighted class NLL of --class_weight.
  auto compute_loss = [&](const float* emb, const EmbeddingLossOptions& lo,
                          bool train_class_vectors) -> absl::StatusOr<EmbeddingLossResult> {
    EbmOptions eo;
    eo.margin = lo.margin;
    eo.beta = lo.beta;
    if (!class_answers) {
      ASSIGN_OR_RETURN(EmbeddingLossResult r,
                       ComputeEmbeddingLoss(emb, batch, dim, batch_labels.data(), lo));
      if (o.class_weight > 0) {
        ASSIGN_OR_RETURN(ClassEnergyLossResult c,
                         class_loss(emb, EmbeddingLossKind::kNll, eo, o.class_weight,
                                    train_class_vectors));
        r.loss += o.class_weight * c.loss;
        for (size_t i = 0; i < r.grad.size(); ++i) {
          r.grad[i] += static_cast<float>(o.class_weight) * c.grad_embeddings[i];
        }
      }
      return r;
    }
    ASSIGN_OR_RETURN(ClassEnergyLossResult c,
                     class_loss(emb, lo.kind, eo, 1.0, train_class_vectors));
    EmbeddingLossResult r;
    r.loss = c.loss;
    r.grad = std::move(c.grad_embeddings);
    r.total = batch;
    r.active = batch - c.correct;
    r.mean_positive_distance = c.mean_positive_energy;
    r.mean_negative_distance = c.mean_negative_energy;
    return r;
  };

  AugmentOptions aug;  // flip + 2 px shift

  auto evaluate = [&](EpochRecord* rec, std::vector<float>* gallery_emb,
                      std::vector<float>* query_emb) -> absl::Status {
    *gallery_emb = EncodeDataset(*encoder, train, o.threads);
    *query_emb = EncodeDataset(*encoder, test, o.threads);
    std::vector<int32_t> gl(train.labels.begin(), train.labels.end());
    std::vector<int32_t> ql(test.labels.begin(), test.labels.end());
    ASSIGN_OR_RETURN(rec->metrics,
                     EvaluateRetrieval(gallery_emb->data(), gl, query_emb->data(),
                                       ql, dim, {.threads = o.threads}));
    rec->evaluated = true;
    return absl::OkStatus();
  };
  auto write_outputs = [&](const std::vector<float>& query_emb) -> absl::Status {
    std::string jsonl;
    std::vector<EpochPoint> points;
    for (const EpochRecord& r : history) {
      absl::StrAppend(&jsonl, EpochRecordJson(r, o), "\n");
      points.push_back({r.epoch, r.loss, r.metrics.precision_at_1, r.evaluated});
    }
    RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(o.work_dir, "/metrics.jsonl"), jsonl));
    RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(o.work_dir, "/trainer.prom"),
                                        EpochMetricsTextfile(history)));
    const std::string title = absl::StrFormat(
        "%s loss, %s, margin %g, dim %d", EmbeddingLossKindName(o.loss),
        o.answers == AnswerSet::kClasses ? "class answers"
                                         : absl::StrCat(MiningName(o.mining), " mining"),
        EffectiveMargin(o), o.dim);
    RETURN_IF_ERROR(WriteFileAtomically(
        absl::StrCat(o.work_dir, "/training_curve.svg"),
        TrainingCurveSvg(points, title)));
    if (!query_emb.empty()) {
      std::vector<int32_t> ql(test.labels.begin(), test.labels.end());
      RETURN_IF_ERROR(WriteFileAtomically(
          absl::StrCat(o.work_dir, "/embedding_map.svg"),
          EmbeddingMapSvg(query_emb.data(), static_cast<int64_t>(test.size()),
                          dim, ql, test.label_names,
                          absl::StrFormat("test embeddings (PCA), epoch %d",
                                          history.empty() ? 0 : history.back().epoch))));
    }
    return absl::OkStatus();
  };

  TrainResult result;
  result.checkpoint_path = ckpt_path;
  std::vector<float> gallery_emb, query_emb;
  bool gallery_emb_current = false;
  say(absl::StrFormat(
      "training %s/%s on %d images (%d test queries), %d steps/epoch of %dx%d, "
      "%d epochs, %s lr %g %s",
      EmbeddingLossKindName(o.loss),
      o.answers == AnswerSet::kClasses ? "classes" : MiningName(o.mining), train.size(),
      test.size(), steps_per_epoch, o.classes_per_batch, o.images_per_class,
      o.epochs, OptimizerKindName(o.optimizer), o.lr, LrScheduleName(o.schedule)));

  for (int epoch = completed_epochs + 1; epoch <= o.epochs; ++epoch) {
    // PkSampler moves to its next epoch lazily; move it now so that
    // batches_in_epoch() describes the epoch we are about to run.
    if (step_in_epoch == 0 && sampler.state().step >= sampler.batches_in_epoch()) {
      const PkSamplerState st = sampler.state();
      RETURN_IF_ERROR(sampler.Restore({st.seed, st.epoch + 1, 0}));
    }
    const int64_t steps_this_epoch = sampler.batches_in_epoch();
    progress.StartEpoch(epoch, o.epochs, steps_this_epoch);
    double lr = 0;
    while (step_in_epoch < steps_this_epoch) {
      const absl::Time t0 = absl::Now();
      const std::vector<size_t> idx = sampler.NextBatch();
      for (int i = 0; i < batch; ++i) {
        std::copy_n(train.image(idx[i]), pixels, batch_pixels.data() + i * pixels);
        batch_labels[i] = train.labels[idx[i]];
      }
      if (o.augment) {
        AugmentBatch(batch_pixels.data(), batch, train.height, train.width, aug,
                     &aug_rng);
      }
      NormalizePixels(batch_pixels.data(), static_cast<int>(batch * pixels),
                      encoder->config().normalization, batch_input.data());
      encoder->ZeroGrad();
      encoder->SeedDropout(o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(global_step));
      encoder->Forward(batch_input.data(), batch, embeddings.data(), true);
      EmbeddingLossOptions lo = loss_options;
      if (global_step < mining_warmup) lo.mining = Mining::kAll;
      ASSIGN_OR_RETURN(EmbeddingLossResult loss,
                       compute_loss(embeddings.data(), lo, true));
      if (!std::isfinite(loss.loss)) {
        return absl::InternalError(absl::StrFormat(
            "loss became %g at step %d; lower --lr (checkpoint %s keeps the "
            "last good epoch)",
            loss.loss, global_step, ckpt_path));
      }
      encoder->Backward(loss.grad.data());
      lr = LearningRateAt(o, global_step, total_steps, steps_per_epoch);
      optimizer->Step(static_cast<float>(lr));
      const double spread = EmbeddingSpread(embeddings.data(), batch, dim);
      double trivial = loss.loss + 1e9;  // only computed when it matters
      if (spread < 0.05) {
        absl::StatusOr<EmbeddingLossResult> t = compute_loss(same.data(), lo, false);
        if (t.ok()) trivial = t->loss;
      }
      if (collapse.Observe(loss.loss, trivial, spread) && !collapse_warned) {
        collapse_warned = true;
        say(absl::StrCat("WARNING: ", collapse.Explain()));
      }
      ++step_in_epoch;
      ++global_step;
      epoch_loss_sum += loss.loss;
      epoch_spread_sum += spread;
      epoch_seconds += absl::ToDoubleSeconds(absl::Now() - t0);
      gallery_emb_current = false;
      progress.Step(step_in_epoch, batch, loss.loss,
                    total_steps - global_step);
      const bool stop_now =
          (stop != nullptr && stop->load()) ||
          (o.stop_after_steps > 0 && global_step >= o.stop_after_steps &&
           global_step < total_steps);
      if (stop_now) {
        progress.EndEpoch();
        RETURN_IF_ERROR(save_checkpoint());
        return absl::CancelledError(absl::StrFormat(
            "stopped at epoch %d step %d (global step %d); checkpoint written "
            "to %s -- continue with --resume",
            epoch, step_in_epoch, global_step, ckpt_path));
      }
    }
    progress.EndEpoch();
    EpochRecord rec;
    rec.epoch = epoch;
    rec.steps = step_in_epoch;
    rec.global_step = global_step;
    rec.loss = epoch_loss_sum / std::max<int64_t>(1, step_in_epoch);
    rec.spread = epoch_spread_sum / std::max<int64_t>(1, step_in_epoch);
    rec.lr = lr;
    rec.seconds = epoch_seconds;
    rec.images_per_second =
        epoch_seconds > 0 ? step_in_epoch * batch / epoch_seconds : 0;
    const bool eval_now =
        epoch == o.epochs || (o.eval_every > 0 && epoch % o.eval_every == 0);
    if (eval_now) {
      RETURN_IF_ERROR(evaluate(&rec, &gallery_emb, &query_emb));
      gallery_emb_current = true;
    }
    history.push_back(rec);
    completed_epochs = epoch;
    step_in_epoch = 0;
    epoch_loss_sum = epoch_spread_sum = epoch_seconds = 0;
    if (!o.quiet) {
      std::fprintf(log, "%s\n", EpochRecordJson(rec, o).c_str());
      std::fflush(log);
    }
    RETURN_IF_ERROR(write_outputs(eval_now ? query_emb : std::vector<float>()));
    RETURN_IF_ERROR(save_checkpoint());
  }

  result.history = history;
  result.collapse_detected = collapse_warned;
  result.model_version = encoder->model_version();
  if (!o.out.empty()) {
    const Dataset& gallery = data.gallery_is_train ? train : data.gallery;
    std::vector<float> emb;
    if (data.gallery_is_train && gallery_emb_current) {
      emb = std::move(gallery_emb);
    } else {
      emb = EncodeDataset(*encoder, gallery, o.threads);
    }
    BundleWriteOptions bw;
    bw.index_spec = o.index_spec;
    bw.metric = "l2";
    bw.trainer_command = o.command_line;
    say(absl::StrFormat("exporting %d gallery images to %s (%s)", gallery.size(),
                        o.out, o.index_spec));
    RETURN_IF_ERROR(WriteBundle(o.out, *encoder, gallery, emb.data(), bw));
    result.bundle_dir = o.out;
  }
  return result;
}

}  // namespace embedsearch
