#include "trainer/collapse_detector.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_format.h"

namespace embedsearch {

CollapseDetector::CollapseDetector(const CollapseOptions& options)
    : options_(options) {}

bool CollapseDetector::Observe(double loss, double trivial_loss,
                               double spread) {
  last_loss_ = loss;
  last_trivial_ = trivial_loss;
  last_spread_ = spread;
  const double tol =
      options_.loss_tolerance * std::max(std::abs(trivial_loss), 1e-3);
  const bool at_trivial = std::abs(loss - trivial_loss) <= tol;
  const bool narrow = spread < options_.min_spread;
  const bool point = spread < options_.min_spread / 10;
  if ((narrow && at_trivial) || point) {
    ++run_;
  } else {
    run_ = 0;
  }
  if (!collapsed_ && run_ >= options_.patience) {
    collapsed_ = true;
    return true;
  }
  return false;
}

std::string CollapseDetector::Explain() const {
  return absl::StrFormat(
      "embeddings collapsed: for %d steps the batch spread was %.4g (random "
      "unit vectors: ~1) and the loss %.4f sat at its trivial value %.4f "
      "(the loss of identical embeddings). The encoder maps every image to "
      "the same point and gets no gradient. Use --mining=all (batch-all) or "
      "--mining=semi-hard, keep --mining_warmup_steps at -1, or lower --lr.",
      run_, last_spread_, last_loss_, last_trivial_);
}

double EmbeddingSpread(const float* embeddings, int n, int dim) {
  if (n <= 0 || dim <= 0) return 0;
  std::vector<double> mean(dim, 0.0);
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < dim; ++d) mean[d] += embeddings[i * dim + d];
  for (double& m : mean) m /= n;
  double sum = 0;
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < dim; ++d) {
      const double c = embeddings[i * dim + d] - mean[d];
      sum += c * c;
    }
  return std::sqrt(sum / n);
}

}  // namespace embedsearch
