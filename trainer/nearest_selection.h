// The k nearest of one query's distance row, in rank order, for the
// trainer's exact retrieval evaluation (mAP@R needs the R nearest in order,
// R = 6000 of 60,000 for Fashion-MNIST).
//
// Order: ascending distance, equal distances in gallery order (the order
// FAISS's flat search and a stable sort give). Distances below zero (the
// rounding of |x|^2 + |y|^2 - 2xy) count as 0. NaN is not expected.
#ifndef EMBEDSEARCH_TRAINER_NEAREST_SELECTION_H_
#define EMBEDSEARCH_TRAINER_NEAREST_SELECTION_H_

#include <cstdint>
#include <vector>

namespace embedsearch {

// Reusable buffers; one per thread (not thread-safe).
struct NearestSelectionScratch {
  std::vector<uint32_t> keys;  // distance bits per gallery item
  std::vector<uint32_t> histogram;
  std::vector<uint64_t> candidates;  // (distance bits << 32 | index)
  std::vector<uint64_t> sorted;
};

// Writes the indices of the min(k, n) nearest of `distances` (n floats,
// n < 2^32) to `out`, nearest first.
void SelectNearestInOrder(const float* distances, int64_t n, int64_t k,
                          NearestSelectionScratch& scratch, uint32_t* out);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_NEAREST_SELECTION_H_
