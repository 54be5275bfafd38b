// The trainer's pictures, as SVG documents: the training curve and a 2-D
// PCA map of embeddings coloured by class.
#ifndef EMBEDSEARCH_TRAINER_PLOTS_H_
#define EMBEDSEARCH_TRAINER_PLOTS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace embedsearch {

struct EpochPoint {
  int epoch = 0;          // 1-based
  double loss = 0;        // mean training loss of the epoch
  double precision_at_1 = 0;
  bool evaluated = true;  // false: no precision@1 for this epoch
  double held_out_precision_at_1 = 0;  // leave-one-out, held-out classes
  bool held_out = false;  // default: no held-out classes (no second line)
};

// Two panels side by side: mean loss per epoch and precision@1 per epoch
// (test queries, and held-out classes when any point has them).
std::string TrainingCurveSvg(const std::vector<EpochPoint>& points,
                             const std::string& title);

// The first two principal components of `embeddings` (n * dim): the
// eigenvectors of the dim x dim covariance with the largest eigenvalues
// (Eigen's SelfAdjointEigenSolver), each signed so its largest entry is
// positive. `components` receives
// 2 * dim floats (row-major, PC1 then PC2) when not null.
std::vector<std::pair<float, float>> Pca2d(const float* embeddings, int64_t n,
                                           int dim,
                                           std::vector<float>* components = nullptr);

// Scatter of the PCA projection with one colour per label and a legend.
// At most `max_points` points are drawn (an even stride over the input) to
// keep the file small.
std::string EmbeddingMapSvg(const float* embeddings, int64_t n, int dim,
                            const std::vector<int32_t>& labels,
                            const std::vector<std::string>& label_names,
                            const std::string& title, int64_t max_points = 3000);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_PLOTS_H_
