// --arch and --input: the encoder architecture of a training run.
#ifndef EMBEDSEARCH_TRAINER_MODEL_ARCH_H_
#define EMBEDSEARCH_TRAINER_MODEL_ARCH_H_

#include "absl/status/status.h"
#include "core/nn/encoder.h"
#include "trainer/trainer_options.h"

namespace embedsearch {

// Applies o.input and o.arch (core/nn/arch_spec.h) to `config`, whose input
// shape is the training data's and whose legacy fields and embedding_dim
// come from the other options. An empty o.arch picks colour-small for
// 3-channel input and fmnist-small otherwise. InvalidArgument when --input does
// not match the data or the spec does not parse or fit (naming the token).
absl::Status ApplyArchOptions(const TrainerOptions& o, EncoderConfig* config);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_MODEL_ARCH_H_
