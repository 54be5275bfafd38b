#include "core/data/pk_sampler.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "core/data/rng.h"

namespace embedsearch {

absl::StatusOr<PkSampler> PkSampler::Create(const std::vector<int32_t>& labels,
                                            const PkSamplerOptions& options) {
  if (options.classes_per_batch < 2 || options.images_per_class < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PkSampler: need P >= 2 classes and K >= 1 images per class, got P=",
        options.classes_per_batch, " K=", options.images_per_class));
  }
  const int k = options.images_per_class;
  const int min_images = options.min_images_per_class;
  if (min_images != 0 && (min_images < 2 || min_images > k)) {
    return absl::InvalidArgumentError(
        absl::StrCat("PkSampler: min_images_per_class must be 0 or in 2..K=", k,
                     ", got ", min_images));
  }
  const size_t usable = static_cast<size_t>(min_images > 0 ? min_images : k);
  std::map<int32_t, std::vector<size_t>> groups;  // Sorted by label.
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("PkSampler: negative label at index ", i));
    }
    groups[labels[i]].push_back(i);
  }
  std::vector<std::vector<size_t>> by_class;
  std::vector<int32_t> excluded;
  for (auto& [label, indices] : groups) {
    if (indices.size() >= usable) {
      by_class.push_back(std::move(indices));
    } else {
      excluded.push_back(label);
    }
  }
  if (by_class.size() < static_cast<size_t>(options.classes_per_batch)) {
    return absl::InvalidArgumentError(
        absl::StrCat("PkSampler: only ", by_class.size(),
                     " classes have at least ", usable, " images (K=", k,
                     "), but a batch needs P=", options.classes_per_batch));
  }
  return PkSampler(std::move(by_class), std::move(excluded), options);
}

PkSampler::PkSampler(std::vector<std::vector<size_t>> by_class,
                     std::vector<int32_t> excluded,
                     const PkSamplerOptions& options)
    : by_class_(std::move(by_class)),
      excluded_(std::move(excluded)),
      options_(options) {
  for (const auto& cls : by_class_) {
    padded_classes_ +=
        cls.size() < static_cast<size_t>(options_.images_per_class);
  }
  PlanEpoch();
}

void PkSampler::PlanEpoch() {
  // One generator per (seed, epoch): any epoch can be planned directly,
  // which is what makes Restore cheap and exact.
  Rng rng(options_.seed * 0x9E3779B97F4A7C15ull +
          static_cast<uint64_t>(epoch_));
  const size_t k = static_cast<size_t>(options_.images_per_class);
  const size_t p = static_cast<size_t>(options_.classes_per_batch);
  std::vector<std::vector<size_t>> shuffled = by_class_;
  struct Group {
    size_t cls;
    size_t first;  // Offset into shuffled[cls].
  };
  std::vector<Group> groups;
  for (size_t c = 0; c < shuffled.size(); ++c) {
    rng.Shuffle(&shuffled[c]);
    // A class smaller than K: one group, padded with random repeats.
    const size_t n = shuffled[c].size();
    for (size_t i = n; i < k; ++i) {
      shuffled[c].push_back(shuffled[c][static_cast<size_t>(rng.Uniform(n))]);
    }
    for (size_t g = 0; g + k <= shuffled[c].size(); g += k)
      groups.push_back({c, g});
  }
  rng.Shuffle(&groups);

  plan_.clear();
  std::vector<bool> used(groups.size(), false);
  std::vector<int64_t> in_batch(shuffled.size(), -1);  // Batch number.
  size_t start = 0;                                    // First unused group.
  for (int64_t batch = 0;; ++batch) {
    while (start < groups.size() && used[start]) ++start;
    std::vector<size_t> chosen;
    for (size_t g = start; g < groups.size() && chosen.size() < p; ++g) {
      if (!used[g] && in_batch[groups[g].cls] != batch) {
        in_batch[groups[g].cls] = batch;
        chosen.push_back(g);
      }
    }
    if (chosen.size() < p) break;
    for (size_t g : chosen) {
      used[g] = true;
      const auto& cls = shuffled[groups[g].cls];
      plan_.insert(plan_.end(), cls.begin() + groups[g].first,
                   cls.begin() + groups[g].first + k);
    }
  }
}

std::vector<size_t> PkSampler::NextBatch() {
  if (step_ >= batches_in_epoch()) {
    ++epoch_;
    step_ = 0;
    PlanEpoch();
  }
  const size_t b = static_cast<size_t>(batch_size());
  const auto first = plan_.begin() + static_cast<ptrdiff_t>(step_ * b);
  ++step_;
  return std::vector<size_t>(first, first + b);
}

absl::Status PkSampler::Restore(const PkSamplerState& state) {
  if (state.epoch < 0 || state.step < 0) {
    return absl::InvalidArgumentError(
        "PkSampler::Restore: negative epoch/step");
  }
  PkSampler copy = *this;
  copy.options_.seed = state.seed;
  copy.epoch_ = state.epoch;
  copy.step_ = state.step;
  copy.PlanEpoch();
  if (state.step > copy.batches_in_epoch()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PkSampler::Restore: step ", state.step, " is past the ",
        copy.batches_in_epoch(), " batches of epoch ", state.epoch));
  }
  *this = std::move(copy);
  return absl::OkStatus();
}

}  // namespace embedsearch
