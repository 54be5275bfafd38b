// Learning-rate schedules as a pure function of the step, so a resumed run
// continues the schedule exactly from the optimizer's step count.
#ifndef EMBEDSEARCH_CORE_NN_LR_SCHEDULE_H_
#define EMBEDSEARCH_CORE_NN_LR_SCHEDULE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedsearch {

struct LearningRateSchedule {
  enum class Kind { kConstant, kStep, kCosine };
  Kind kind = Kind::kConstant;  // default: constant
  float base_lr = 0.01f;        // default: 0.01
  // Linear warm-up from base_lr/warmup_steps to base_lr over the first
  // warmup_steps steps; the chosen kind then runs from step warmup_steps.
  int64_t warmup_steps = 0;     // default: no warm-up
  int64_t step_size = 1000;     // kStep: lr *= gamma every step_size steps
  float gamma = 0.1f;           // kStep: decay factor
  int64_t total_steps = 0;      // kCosine: steps including warm-up
  float min_lr = 0.0f;          // kCosine: final learning rate
};

// Learning rate for 0-based `step`. kCosine: min_lr + (base-min)*(1 +
// cos(pi*t/T))/2 with t = step - warmup, T = total - warmup, t clamped to T.
float LearningRateAt(const LearningRateSchedule& schedule, int64_t step);

// "constant" | "step" | "cosine"; InvalidArgument otherwise.
absl::StatusOr<LearningRateSchedule::Kind> ParseLearningRateScheduleKind(absl::string_view name);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_LR_SCHEDULE_H_
