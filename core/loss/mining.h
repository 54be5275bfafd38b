// Choosing which triplets and pairs of a labelled batch enter a loss.
//
// All functions read a dissimilarity matrix `dist` (n x n, row a holds the
// dissimilarities from anchor a; it need not be symmetric, PyTorch's
// pairwise_distance is not) and n labels. Ties pick the first index.
// Pure functions; thread-safe.
#ifndef EMBEDSEARCH_CORE_LOSS_MINING_H_
#define EMBEDSEARCH_CORE_LOSS_MINING_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/loss/loss_types.h"
#include "core/loss/mining_kind.h"

namespace embedsearch {

struct Triplet {
  int anchor;
  int positive;
  int negative;
};

struct LabeledPair {
  int first;
  int second;
  double target;  // +1 same label, -1 different (CosineEmbedding /
                  // HingeEmbedding convention)
};

// Anchors without a positive or without a negative give no triplet.
std::vector<Triplet> MineTriplets(const RowMatrix& dist, const int32_t* labels,
                                  Mining mining);

// Every unordered pair i < j of the batch.
std::vector<LabeledPair> AllPairs(const int32_t* labels, int n);

// (a, p, +1) and (a, n, -1) for each triplet.
std::vector<LabeledPair> PairsFromTriplets(const std::vector<Triplet>& t);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_MINING_H_
