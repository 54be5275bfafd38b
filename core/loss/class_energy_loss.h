// The lecture's energy-based classifier as a training loss for the encoder:
// the answers Y are the classes, each with a learned vector w_c, and the
// energy of image x and answer c is
//
//   E(x, c) = || f(x) - w_c / ||w_c|| ||_2^2      (= 2 - 2 cos(f(x), w_c)
//                                                   for unit-norm f(x)),
//
// on which any loss of EbmLoss (core/loss/ebm_loss.h) applies: the NLL is
// then a softmax classifier over cosines with scale 2*beta, the margin losses
// push up the most offending incorrect class. Unlike the batch losses of
// ComputeEmbeddingLoss, every image meets every class in every step, so the
// loss needs no mining and cannot collapse to a point (the class vectors are
// kept apart by the push-up term). Retrieval uses f(x) only; the class
// vectors are training state.
//
// Why the prototypes are normalized: the energy then depends on directions
// only, the scale of the energies is fixed (0..4) so margins and beta mean
// the same at every step, and a class cannot win by growing its vector.
//
// Thread safety: a pure function.
#ifndef EMBEDSEARCH_CORE_LOSS_CLASS_ENERGY_LOSS_H_
#define EMBEDSEARCH_CORE_LOSS_CLASS_ENERGY_LOSS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/loss/ebm_loss.h"

namespace embedsearch {

struct ClassEnergyLossResult {
  double loss = 0;                       // mean over the n images
  std::vector<float> grad_embeddings;    // n * dim: dLoss/df(x)
  std::vector<float> grad_prototypes;    // classes * dim: dLoss/dw
  int64_t correct = 0;  // images whose own class has the lowest energy
  // Means over the images of E(x, own class) and E(x, most offending class).
  double mean_positive_energy = 0;
  double mean_negative_energy = 0;
};

// embeddings: n x dim (row-major); labels: n values in [0, classes);
// prototypes: classes x dim, none all-zero. InvalidArgument for n < 1,
// dim < 1, classes < 2, a label out of range, a zero prototype or an invalid
// EbmOptions value (CheckEbmOptions).
absl::StatusOr<ClassEnergyLossResult> ClassEnergyLoss(
    const float* embeddings, int n, int dim, const int32_t* labels,
    const float* prototypes, int classes, EbmLossKind kind,
    const EbmOptions& options);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_CLASS_ENERGY_LOSS_H_
