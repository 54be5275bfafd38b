// Training checkpoints: one embedsearch.v1.TrainingCheckpoint message
// (proto/embedsearch/v1/checkpoint.proto) in <work_dir>/checkpoint.bin,
// written atomically (WriteFileAtomically), so a crash or Ctrl-C while
// saving leaves the previous checkpoint intact. No checksum of our own: the
// write is atomic and the model inside verifies itself (Encoder::FromBytes
// recomputes its content-derived model_version).
//
// Whether --resume may continue is decided field by field: the stored
// TrainingRunOptions against this run's, and the stored model's config
// (EncoderConfigProto, every field, whatever the architecture) against the
// model this run builds. Thread-compatible: no shared state.
#ifndef EMBEDSEARCH_TRAINER_CHECKPOINT_H_
#define EMBEDSEARCH_TRAINER_CHECKPOINT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/nn/encoder.h"
#include "embedsearch/v1/checkpoint.pb.h"
#include "trainer/trainer.h"
#include "trainer/trainer_options.h"

namespace embedsearch {

// The current TrainingCheckpoint.format_version.
inline constexpr uint32_t kCheckpointFormatVersion = 2;

// The trajectory-shaping options of `o` (the margin as EffectiveMargin).
v1::TrainingRunOptions RunOptionsOf(const TrainerOptions& o);

// Writes `checkpoint` (format_version set to the current one) atomically.
absl::Status SaveCheckpoint(const std::string& path,
                            v1::TrainingCheckpoint checkpoint);

// Errors: NotFound (no file); FailedPrecondition for a checkpoint of the
// earlier "ESCKPT01" format or another format_version (the message says so
// and what to do); DataLoss when the bytes are not a checkpoint.
absl::StatusOr<v1::TrainingCheckpoint> LoadCheckpoint(const std::string& path);

// OK when `stored` was written by a run with the same options and model
// config as `now` and `fresh` (the model this run would start from);
// otherwise FailedPrecondition naming each differing field with the
// checkpoint's and this run's values. `path` is only for the message.
absl::Status CheckSameRun(const std::string& path,
                          const v1::TrainingCheckpoint& stored,
                          const v1::TrainingRunOptions& now,
                          const Encoder& fresh);

// EpochRecord <-> its message, every bit kept.
v1::EpochRecordProto EpochRecordToProto(const EpochRecord& r);
EpochRecord EpochRecordFromProto(const v1::EpochRecordProto& p);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_CHECKPOINT_H_
