#include "trainer/checkpoint.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/loss/mining_kind.h"
#include "core/nn/model_config.h"
#include "core/util/file.h"
#include "core/util/status_macros.h"
#include "embedsearch/v1/bundle.pb.h"
#include "google/protobuf/util/message_differencer.h"

namespace embedsearch {
namespace {

// The first bytes of the checkpoints of earlier trainers.
constexpr char kOldFormatMagic[] = "ESCKPT01";

// "modified: margin: 0.2 -> 0.3" lines for every field that differs, or ""
// when the messages are equal.
std::string Differences(const google::protobuf::Message& stored,
                        const google::protobuf::Message& now) {
  std::string report;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&report);
  if (differ.Compare(stored, now)) return "";
  absl::StripTrailingAsciiWhitespace(&report);
  return absl::StrReplaceAll(report, {{"\n", "; "}});
}

absl::StatusOr<v1::EncoderConfigProto> ModelConfigOf(const std::string& model,
                                                     const std::string& what) {
  v1::ModelProto proto;
  if (!proto.ParseFromString(model)) {
    return absl::DataLossError(absl::StrCat(what, ": the model does not parse"));
  }
  return proto.config();
}

v1::RetrievalMetricsProto MetricsToProto(const RetrievalMetrics& m) {
  v1::RetrievalMetricsProto p;
  p.set_queries(m.queries);
  p.set_precision_at_1(m.precision_at_1);
  p.set_recall_at_1(m.recall_at_1);
  p.set_recall_at_5(m.recall_at_5);
  p.set_recall_at_10(m.recall_at_10);
  p.set_map_at_r(m.map_at_r);
  return p;
}

RetrievalMetrics MetricsFromProto(const v1::RetrievalMetricsProto& p) {
  RetrievalMetrics m;
  m.queries = p.queries();
  m.precision_at_1 = p.precision_at_1();
  m.recall_at_1 = p.recall_at_1();
  m.recall_at_5 = p.recall_at_5();
  m.recall_at_10 = p.recall_at_10();
  m.map_at_r = p.map_at_r();
  return m;
}

}  // namespace

v1::TrainingRunOptions RunOptionsOf(const TrainerOptions& o) {
  v1::TrainingRunOptions r;
  r.set_data(o.data);
  r.set_train_limit(o.train_limit);
  r.set_loss(std::string(EmbeddingLossKindName(o.loss)));
  r.set_mining(std::string(MiningName(o.mining)));
  r.set_margin(EffectiveMargin(o));
  r.set_p(o.p);
  r.set_swap(o.swap);
  r.set_squared_energy(o.squared_energy);
  r.set_beta(o.beta);
  r.set_classes_per_batch(o.classes_per_batch);
  r.set_images_per_class(o.images_per_class);
  r.set_optimizer(std::string(OptimizerKindName(o.optimizer)));
  r.set_seed(o.seed);
  r.set_augment(o.augment);
  r.set_answers(std::string(AnswerSetName(o.answers)));
  r.set_class_weight(o.class_weight);
  r.set_holdout_classes(o.holdout_classes);
  r.set_augment_flip(o.augment_flip);
  r.set_augment_crop_min_area(o.augment_crop_min_area);
  r.set_augment_jitter(o.augment_jitter);
  return r;
}

absl::Status SaveCheckpoint(const std::string& path,
                            v1::TrainingCheckpoint checkpoint) {
  checkpoint.set_format_version(kCheckpointFormatVersion);
  return WriteFileAtomically(path, checkpoint.SerializeAsString());
}

absl::StatusOr<v1::TrainingCheckpoint> LoadCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (absl::StartsWith(bytes, kOldFormatMagic)) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is a checkpoint of an earlier trainer (format ESCKPT01), "
              "which this trainer does not read: finish that run with the "
              "trainer that wrote it, or start again in another --work_dir"));
  }
  v1::TrainingCheckpoint checkpoint;
  if (!checkpoint.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat(path, " is not a training checkpoint"));
  }
  if (checkpoint.format_version() != kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has checkpoint format ", checkpoint.format_version(),
        "; this trainer reads format ", kCheckpointFormatVersion));
  }
  return checkpoint;
}

absl::Status CheckSameRun(const std::string& path,
                          const v1::TrainingCheckpoint& stored,
                          const v1::TrainingRunOptions& now,
                          const Encoder& fresh) {
  ASSIGN_OR_RETURN(v1::EncoderConfigProto stored_model,
                   ModelConfigOf(stored.model(), path));
  ASSIGN_OR_RETURN(v1::EncoderConfigProto fresh_model,
                   ModelConfigOf(fresh.ToBytes(), "this run"));
  std::string differences = Differences(stored.options(), now);
  const std::string model_differences = Differences(stored_model, fresh_model);
  if (!model_differences.empty()) {
    // The architecture's first difference in words, then every field.
    const std::string architecture = ArchitectureDifference(
        EncoderConfigFromProto(stored_model), EncoderConfigFromProto(fresh_model));
    absl::StrAppend(&differences, differences.empty() ? "" : "; ", "model ",
                    architecture.empty() ? "" : architecture + "; ",
                    model_differences);
  }
  if (differences.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      path, " was written by a run with other options (checkpoint -> now): ",
      differences));
}

v1::EpochRecordProto EpochRecordToProto(const EpochRecord& r) {
  v1::EpochRecordProto p;
  p.set_epoch(r.epoch);
  p.set_steps(r.steps);
  p.set_global_step(r.global_step);
  p.set_loss(r.loss);
  p.set_spread(r.spread);
  p.set_lr(r.lr);
  p.set_seconds(r.seconds);
  p.set_images_per_second(r.images_per_second);
  p.set_evaluated(r.evaluated);
  *p.mutable_metrics() = MetricsToProto(r.metrics);
  p.set_held_out_evaluated(r.held_out_evaluated);
  *p.mutable_held_out() = MetricsToProto(r.held_out);
  p.set_train_seconds_total(r.train_seconds_total);
  p.set_process_cpu_seconds(r.process_cpu_seconds);
  p.set_wall_seconds(r.wall_seconds);
  return p;
}

EpochRecord EpochRecordFromProto(const v1::EpochRecordProto& p) {
  EpochRecord r;
  r.epoch = p.epoch();
  r.steps = p.steps();
  r.global_step = p.global_step();
  r.loss = p.loss();
  r.spread = p.spread();
  r.lr = p.lr();
  r.seconds = p.seconds();
  r.images_per_second = p.images_per_second();
  r.evaluated = p.evaluated();
  r.metrics = MetricsFromProto(p.metrics());
  r.held_out_evaluated = p.held_out_evaluated();
  r.held_out = MetricsFromProto(p.held_out());
  r.train_seconds_total = p.train_seconds_total();
  r.process_cpu_seconds = p.process_cpu_seconds();
  r.wall_seconds = p.wall_seconds();
  return r;
}

}  // namespace embedsearch
