// PK batches for metric learning: each batch holds P classes x K images per
// class, so every anchor has K-1 positives and (P-1)K negatives in the batch
// (what triplet and margin losses with in-batch mining need).
#ifndef EMBEDSEARCH_CORE_DATA_PK_SAMPLER_H_
#define EMBEDSEARCH_CORE_DATA_PK_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace embedsearch {

struct PkSamplerOptions {
  int classes_per_batch = 8;  // default: P = 8
  int images_per_class = 4;   // default: K = 4 (batch of 32)
  uint64_t seed = 1;          // default: 1
  // Classes with at least this many images (and fewer than K) take part too,
  // their group of K filled by repetition (see PkSampler). 0 or K: only
  // classes with K images or more. 1 < value <= K.
  int min_images_per_class = 0;  // default 0: classes smaller than K skipped
};

// Where a sampler stands: enough to continue a run identically after a
// restart (save it in the checkpoint, pass it to Restore).
struct PkSamplerState {
  uint64_t seed = 0;
  int64_t epoch = 0;  // 0-based epoch of the next batch.
  int64_t step = 0;   // Index of the next batch within that epoch.
};

// An epoch is one pass over the dataset in a fresh shuffled order: each
// class's images are shuffled and cut into groups of K, the groups of all
// classes are shuffled, and batches take the first P groups of distinct
// classes. Every image appears at most once per epoch; per class, the
// n mod K images left over (different ones each epoch) and groups that can
// no longer find P-1 distinct partners at the end are skipped. The order
// depends only on (seed, epoch): the same seed gives the same batches on
// every platform.
//
// Classes with fewer than K images (n < K): with the default
// min_images_per_class they never appear. When n >= min_images_per_class
// the class makes one group per epoch: all n of its images in shuffled
// order, then K - n more drawn at random from the class with replacement
// (so a class of 3 with K = 4 repeats one image; every image of it is in
// every epoch). A repeated image is a positive of itself at distance 0 before
// augmentation, which adds nothing to margin losses but keeps the batch at
// P x K. Classes below the minimum (a class of one image has no positive
// at all) are excluded; excluded_labels() lists them for the caller to
// report. Datasets without small classes get the same batches as before.
//
// Not thread-safe. Copyable.
class PkSampler {
 public:
  // `labels[i]` is image i's class (any non-negative int32).
  // InvalidArgument if P < 2, K < 1, min_images_per_class is not 0 or in
  // 2..K, or fewer than P classes are usable (K images, or
  // min_images_per_class when set).
  static absl::StatusOr<PkSampler> Create(const std::vector<int32_t>& labels,
                                          const PkSamplerOptions& options = {});

  // The next batch: P * K dataset indices, grouped by class (K consecutive
  // indices share a label, and the P groups have distinct labels). Moves to
  // the next epoch when the current one is exhausted.
  std::vector<size_t> NextBatch();

  // Batches in the current epoch (varies slightly between epochs).
  int64_t batches_in_epoch() const {
    return static_cast<int64_t>(plan_.size()) / batch_size();
  }
  int batch_size() const {
    return options_.classes_per_batch * options_.images_per_class;
  }

  // Labels of the classes left out for having too few images, ascending.
  const std::vector<int32_t>& excluded_labels() const { return excluded_; }
  // Usable classes with fewer than K images (their groups repeat images).
  int64_t padded_classes() const { return padded_classes_; }

  PkSamplerState state() const { return {options_.seed, epoch_, step_}; }
  // Continues from `state` (its seed replaces the options' seed).
  // InvalidArgument if epoch or step is negative or step is past the epoch.
  absl::Status Restore(const PkSamplerState& state);

 private:
  PkSampler(std::vector<std::vector<size_t>> by_class,
            std::vector<int32_t> excluded, const PkSamplerOptions& options);
  void PlanEpoch();  // Fills plan_ for epoch_.

  std::vector<std::vector<size_t>> by_class_;  // Usable classes.
  std::vector<int32_t> excluded_;
  int64_t padded_classes_ = 0;
  PkSamplerOptions options_;
  int64_t epoch_ = 0;
  int64_t step_ = 0;
  std::vector<size_t> plan_;  // batches_in_epoch() * batch_size() indices.
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_DATA_PK_SAMPLER_H_
