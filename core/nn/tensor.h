// Shape helpers and Eigen views shared by the layers.
//
// Layout convention of core/nn: activations are dense float batches in NCHW
// order (image i, channel c, row y, column x at ((i*C + c)*H + y)*W + x);
// matrices are row-major. Flatten is therefore a no-op on the data: an NCHW
// batch of n images *is* the [n, C*H*W] row-major matrix the linear layers
// take, in PyTorch's flatten order. Its forward and backward are identities,
// which is why there is no flatten kernel, only FlattenedSize().
#ifndef EMBEDSEARCH_CORE_NN_TENSOR_H_
#define EMBEDSEARCH_CORE_NN_TENSOR_H_

#include <cstdint>
#include <vector>

#include "Eigen/Core"

namespace embedsearch {
namespace nn {

using RowMatrix =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXf>;

// Number of elements of a shape (1 for the empty shape).
inline int64_t NumElements(const std::vector<int>& shape) {
  int64_t n = 1;
  for (int d : shape) n *= d;
  return n;
}

// Per-image size of a [C, H, W] activation, i.e. its flattened feature count.
inline int64_t FlattenedSize(int channels, int height, int width) {
  return static_cast<int64_t>(channels) * height * width;
}

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_TENSOR_H_
