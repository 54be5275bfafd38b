#include "core/nn/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace embedsearch {

float LearningRateAt(const LearningRateSchedule& s, int64_t step) {
  step = std::max<int64_t>(step, 0);
  if (step < s.warmup_steps) {
    return s.base_lr * static_cast<float>(step + 1) / static_cast<float>(s.warmup_steps);
  }
  const int64_t t = step - std::max<int64_t>(s.warmup_steps, 0);
  switch (s.kind) {
    case LearningRateSchedule::Kind::kConstant:
      return s.base_lr;
    case LearningRateSchedule::Kind::kStep:
      return s.base_lr *
             std::pow(s.gamma, static_cast<float>(t / std::max<int64_t>(s.step_size, 1)));
    case LearningRateSchedule::Kind::kCosine: {
      const int64_t span = std::max<int64_t>(s.total_steps - s.warmup_steps, 1);
      const double frac = static_cast<double>(std::min(t, span)) / span;
      return static_cast<float>(s.min_lr + (s.base_lr - s.min_lr) * 0.5 *
                                               (1.0 + std::cos(M_PI * frac)));
    }
  }
  return s.base_lr;
}

absl::StatusOr<LearningRateSchedule::Kind> ParseLearningRateScheduleKind(absl::string_view name) {
  if (name == "constant") return LearningRateSchedule::Kind::kConstant;
  if (name == "step") return LearningRateSchedule::Kind::kStep;
  if (name == "cosine") return LearningRateSchedule::Kind::kCosine;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown learning-rate schedule '", name,
                   "' (expected constant, step or cosine)"));
}

}  // namespace embedsearch
