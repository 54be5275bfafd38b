#include "trainer/progress.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace embedsearch {

ProgressReporter::ProgressReporter(FILE* out, const ProgressOptions& options)
    : out_(out), options_(options) {}

void ProgressReporter::StartEpoch(int epoch, int epochs,
                                  int64_t steps_per_epoch) {
  epoch_ = epoch;
  epochs_ = epochs;
  steps_per_epoch_ = steps_per_epoch;
  step_ = 0;
  images_ = 0;
  have_loss_ = false;
  start_ = absl::Now();
  last_draw_ = absl::InfinitePast();
  drawn_ = false;
}

void ProgressReporter::Step(int64_t step_in_epoch, int64_t images, double loss,
                            int64_t remaining_steps) {
  step_ = step_in_epoch;
  images_ += images;
  remaining_ = remaining_steps;
  last_loss_ = loss;
  // A short exponential average keeps the number readable while it moves.
  loss_ema_ = have_loss_ ? 0.95 * loss_ema_ + 0.05 * loss : loss;
  have_loss_ = true;
  const absl::Time now = absl::Now();
  if (options_.tty) {
    // Redraw at most ~10 times a second, and always on the last step.
    if (now - last_draw_ < absl::Milliseconds(100) &&
        step_ != steps_per_epoch_) {
      return;
    }
    last_draw_ = now;
    std::fprintf(out_, "\r%s\033[K", Render().c_str());
    std::fflush(out_);
    drawn_ = true;
  } else if (options_.log_every > 0 &&
             (step_ % options_.log_every == 0 || step_ == steps_per_epoch_)) {
    std::fprintf(out_, "%s\n", Render().c_str());
    std::fflush(out_);
  }
}

void ProgressReporter::EndEpoch() {
  if (options_.tty && drawn_) {
    std::fprintf(out_, "\n");
    std::fflush(out_);
  }
  drawn_ = false;
}

void ProgressReporter::Line(const std::string& text) {
  if (options_.tty && drawn_) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "%s\n", text.c_str());
  if (options_.tty && drawn_) std::fprintf(out_, "%s", Render().c_str());
  std::fflush(out_);
}

std::string ProgressReporter::Render() const {
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start_);
  const double rate = elapsed > 0 ? images_ / elapsed : 0;
  const double sec_per_step = step_ > 0 ? elapsed / step_ : 0;
  const std::string eta =
      step_ > 0 ? FormatEta(absl::Seconds(sec_per_step * remaining_))
                : "?";
  std::string head = absl::StrFormat("epoch %d/%d", epoch_, epochs_);
  std::string tail = absl::StrFormat(
      "step %d/%d | %.0f img/s | loss %.4f | ETA %s", step_, steps_per_epoch_,
      rate, have_loss_ ? loss_ema_ : 0.0, eta);
  if (!options_.tty) return head + " " + tail;
  const int width = std::max(1, options_.bar_width);
  const double frac =
      steps_per_epoch_ > 0
          ? std::clamp(static_cast<double>(step_) / steps_per_epoch_, 0.0, 1.0)
          : 0.0;
  const int filled = static_cast<int>(std::lround(frac * width));
  std::string bar(filled, '#');
  bar.append(width - filled, '.');
  return absl::StrFormat("%s [%s] %3.0f%% %s", head, bar, 100 * frac, tail);
}

std::string FormatEta(absl::Duration d) {
  int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(d));
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

}  // namespace embedsearch
