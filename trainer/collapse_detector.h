// Collapse detection. A metric-learning run "collapses" when the encoder
// maps every image to (nearly) the same point: all distances are ~0, so
// every loss sits at its trivial value (the margin for triplet/hinge with
// batch-hard mining, log 2 for the soft-margin/log loss) and the gradient
// carries no signal. Batch-hard mining from a random initialisation does
// this on Fashion-MNIST (measured with PyTorch). Signs watched per step:
//   spread: RMS distance of the batch's embeddings to their mean (about 1
//           for random unit vectors in 64-d, ~0 when collapsed);
//   loss:   within `loss_tolerance` (relative) of the trivial loss, i.e. the
//           loss of the same batch with all embeddings equal.
// Collapse is declared after `patience` consecutive steps with spread below
// `min_spread` and the loss at its trivial value, or spread below
// `min_spread / 10` alone.
#ifndef EMBEDSEARCH_TRAINER_COLLAPSE_DETECTOR_H_
#define EMBEDSEARCH_TRAINER_COLLAPSE_DETECTOR_H_

#include <cstdint>
#include <string>

namespace embedsearch {

struct CollapseOptions {
  int patience = 100;           // default: 100 consecutive steps
  double min_spread = 0.05;     // default: 0.05 (unit-norm embeddings)
  double loss_tolerance = 0.02;  // default: 2 % of the trivial loss
};

class CollapseDetector {
 public:
  explicit CollapseDetector(const CollapseOptions& options = {});

  // One training step. Returns true exactly once: on the step at which
  // collapse is first declared.
  bool Observe(double loss, double trivial_loss, double spread);
  bool collapsed() const { return collapsed_; }
  int64_t suspicious_steps() const { return run_; }
  // A human explanation of the last declared collapse.
  std::string Explain() const;

 private:
  CollapseOptions options_;
  int64_t run_ = 0;
  bool collapsed_ = false;
  double last_loss_ = 0;
  double last_trivial_ = 0;
  double last_spread_ = 0;
};

// RMS distance of n rows (dim floats each) to their mean.
double EmbeddingSpread(const float* embeddings, int n, int dim);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_COLLAPSE_DETECTOR_H_
