// The learned class vectors of --answers=classes and --class_weight: the answers of the
// lecture's energy-based classifier (core/loss/class_energy_loss.h), trained
// with the encoder by the same optimizer and kept in the checkpoint. They are
// training state only: the bundle holds the encoder, and search compares
// images with images.
#ifndef EMBEDSEARCH_TRAINER_CLASS_VECTORS_H_
#define EMBEDSEARCH_TRAINER_CLASS_VECTORS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/nn/encoder.h"

namespace embedsearch {

// "class_vectors" [classes, dim], standard normal entries drawn from a
// stream derived from the run's --seed (the loss normalizes them, so only
// directions matter: random directions in dim >= 16 are nearly orthogonal,
// a good start).
Parameter MakeClassVectors(int classes, int dim, uint64_t run_seed);

// The values as raw little-endian floats, for the checkpoint.
std::string ClassVectorsToBytes(const Parameter& vectors);
// DataLoss when `bytes` does not hold exactly the parameter's size.
absl::Status ClassVectorsFromBytes(absl::string_view bytes, Parameter* vectors);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_CLASS_VECTORS_H_
