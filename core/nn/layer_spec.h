// The encoder's layer list: what a model is made of, as stored in the model
// file (format_version 2) and built by the arch spec parser (arch_spec.h).
//
// A LayerSpec is plain data; the encoder turns the list into runnable layers
// (core/nn/layers.h, private), fusing neighbours where it is faster (conv +
// batch norm + ReLU + max-pool run as one unit) without changing results.
// Activations are NCHW per image; a flat vector of f features is [f, 1, 1],
// so linear layers take any shape (flatten is a no-op, see tensor.h).
#ifndef EMBEDSEARCH_CORE_NN_LAYER_SPEC_H_
#define EMBEDSEARCH_CORE_NN_LAYER_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace embedsearch {

// Numbering is the model file's (LayerProto.kind); never reuse a value.
enum class LayerKind {
  kConv = 1,       // 2-D convolution, square kernel; weight [C_out, C_in, k, k]
  kBatchNorm = 2,  // BatchNorm2d (BatchNorm1d on [f, 1, 1]); PyTorch semantics
  kRelu = 3,
  kMaxPool = 4,        // floor mode, no padding (PyTorch's default)
  kAvgPool = 5,        // floor mode, no padding
  kResidual = 6,       // basic block, see LayerSpec::projection
  kGlobalAvgPool = 7,  // [C, H, W] -> [C, 1, 1]
  kLinear = 8,         // y = x W^T + b on the flattened input; weight [out, in]
  kDropout = 9,        // inverted dropout (identity at inference)
  kL2Normalize = 10,   // row-wise x / max(||x||, 1e-12)
};

// "conv", "batch_norm", ... (the model file's and error messages' names).
const char* LayerKindName(LayerKind kind);

struct LayerSpec {
  LayerKind kind = LayerKind::kRelu;
  // Parameter prefix: "conv0" names conv0.weight / conv0.bias. Required
  // (non-empty, unique) for conv, batch_norm, residual and linear; a
  // residual block's tensors are <name>.conv1/.bn1/.conv2/.bn2 and, with a
  // projection, <name>.proj/.proj_bn.
  std::string name;
  int channels = 0;   // conv, residual: output channels; linear: outputs
  int kernel = 3;     // conv: kernel size; pools: window size
  int stride = 1;     // conv, pools, residual (first conv and shortcut)
  int padding = 1;    // conv only (zero padding on every side)
  bool bias = true;   // conv, linear
  float rate = 0.0f;  // dropout probability, in [0, 1)
  // Residual block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
  // both convs 3x3 pad 1 without bias, conv1 with `stride`. The shortcut is
  // the identity (needs input channels == channels and stride 1) or, with
  // projection, bn(conv 1x1 stride `stride`(x)).
  bool projection = false;

  bool operator==(const LayerSpec& other) const;
  bool operator!=(const LayerSpec& other) const { return !(*this == other); }
};

// Constructors with each kind's defaults.
LayerSpec ConvSpec(std::string name, int channels, int kernel = 3,
                   int stride = 1, int padding = 1, bool bias = true);
LayerSpec BatchNormSpec(std::string name);
LayerSpec ReluSpec();
LayerSpec MaxPoolSpec(int kernel = 2, int stride = 2);
LayerSpec AvgPoolSpec(int kernel = 2, int stride = 2);
LayerSpec ResidualSpec(std::string name, int channels, int stride = 1,
                       bool projection = false);
LayerSpec GlobalAvgPoolSpec();
LayerSpec LinearSpec(std::string name, int outputs, bool bias = true);
LayerSpec DropoutSpec(float rate);
LayerSpec L2NormalizeSpec();

// Per-image activation shape.
struct TensorShape {
  int channels = 1;
  int height = 1;
  int width = 1;
  int64_t size() const { return int64_t{channels} * height * width; }
  bool operator==(const TensorShape& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
};

// Output shape of `layer` on input `in`, or InvalidArgument saying what does
// not fit (a field out of range, a window larger than its input, an identity
// shortcut across a width or stride change, a linear layer above 2^28
// weights). Messages start with the layer kind and name; callers add where
// the layer came from.
absl::StatusOr<TensorShape> LayerOutputShape(const LayerSpec& layer,
                                             const TensorShape& in);

// "conv0: conv 32 k3 s1 p1 bias" style one-line description (for diffs).
std::string DescribeLayer(const LayerSpec& layer);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_LAYER_SPEC_H_
