// Training progress display: a bar redrawn in place with '\r' when the
// stream is a terminal, plain log lines every `log_every` steps otherwise.
// Not thread-safe; one trainer thread drives it.
#ifndef EMBEDSEARCH_TRAINER_PROGRESS_H_
#define EMBEDSEARCH_TRAINER_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/time/time.h"

namespace embedsearch {

struct ProgressOptions {
  bool tty = false;     // default: plain lines (callers pass isatty(stderr))
  int log_every = 100;  // default: a plain line every 100 steps
  int bar_width = 28;   // default: 28 characters of bar
};

class ProgressReporter {
 public:
  ProgressReporter(FILE* out, const ProgressOptions& options);

  // Starts an epoch of `steps_per_epoch` steps (epoch is 1-based).
  void StartEpoch(int epoch, int epochs, int64_t steps_per_epoch);
  // After each step: `images` processed in it, its loss, the global step,
  // and the total number of steps remaining in the whole run (for the ETA).
  void Step(int64_t step_in_epoch, int64_t images, double loss,
            int64_t remaining_steps);
  // Ends the bar's line (a newline on a TTY).
  void EndEpoch();
  // Prints a full line, clearing the bar first on a TTY.
  void Line(const std::string& text);

  // The text of the bar/line for the current state (for tests).
  std::string Render() const;

 private:
  FILE* out_;
  ProgressOptions options_;
  int epoch_ = 0;
  int epochs_ = 0;
  int64_t steps_per_epoch_ = 0;
  int64_t step_ = 0;
  int64_t remaining_ = 0;
  double loss_ema_ = 0;
  double last_loss_ = 0;
  bool have_loss_ = false;
  int64_t images_ = 0;
  absl::Time start_;
  absl::Time last_draw_;
  bool drawn_ = false;
};

// "1h02m", "3m05s", "42s".
std::string FormatEta(absl::Duration d);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_PROGRESS_H_
