// EncoderConfig <-> EncoderConfigProto (proto/embedsearch/v1/bundle.proto),
// the config part of the model file. For code that stores a model's
// architecture elsewhere (checkpoints) and compares it later with
// ArchitectureDifference (encoder.h). Thread-safe, no I/O.
#ifndef EMBEDSEARCH_CORE_NN_MODEL_CONFIG_H_
#define EMBEDSEARCH_CORE_NN_MODEL_CONFIG_H_

#include "core/nn/encoder.h"
#include "embedsearch/v1/bundle.pb.h"

namespace embedsearch {

// Every field, including the layer list (field 20). Lossless for a valid
// config: EncoderConfigFromProto(EncoderConfigToProto(c)) builds the same
// network as c.
v1::EncoderConfigProto EncoderConfigToProto(const EncoderConfig& config);
// No validation (Encoder::Create / ValidateEncoderConfig do that): values
// beyond int range become -1 and fail it. With layers, the legacy layout
// fields are cleared.
EncoderConfig EncoderConfigFromProto(const v1::EncoderConfigProto& proto);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_MODEL_CONFIG_H_
