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
// no longer find P-1 distinct partners at the end are skipped. Classes with
// fewer than K images never appear. The order depends only on (seed, epoch):
// the same seed gives the same batches on every platform.
//
// Not thread-safe. Copyable.
class PkSampler {
 public:
  // `labels[i]` is image i's class (any non-negative int32).
  // InvalidArgument if P < 2, K < 1, or fewer than P classes have K images.
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

  PkSamplerState state() const { return {options_.seed, epoch_, step_}; }
  // Continues from `state` (its seed replaces the options' seed).
  // InvalidArgument if epoch or step is negative or step is past the epoch.
  absl::Status Restore(const PkSamplerState& state);

 private:
  PkSampler(std::vector<std::vector<size_t>> by_class,
            const PkSamplerOptions& options);
  void PlanEpoch();  // Fills plan_ for epoch_.

  std::vector<std::vector<size_t>> by_class_;  // Classes with >= K images.
  PkSamplerOptions options_;
  int64_t epoch_ = 0;
  int64_t step_ = 0;
  std::vector<size_t> plan_;  // batches_in_epoch() * batch_size() indices.
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_DATA_PK_SAMPLER_H_
