// Private to core/nn: the runnable layers an Encoder is made of.
//
// BuildLayers turns a LayerSpec list into Layer objects, fusing a conv with
// the batch norm, ReLU and max-pool that follow it (one ConvUnit: batch
// norm folds into the conv at inference, the no-BN conv+ReLU+pool trains
// with the sparse argmax backward) and a linear with its ReLU. Fusion never
// changes results: every unit computes what its layers would in sequence,
// in the same float operations as the pre-layer encoder for format-1
// layouts (tests/nn/format1_fixture_test.cc).
//
// Contract of every Layer:
//  - Infer is const and thread-safe: per-thread scratch only
//    (nn::ThreadScratch, slots below), no allocation once warm. `state` is
//    what PrepareInference wrote (InferenceStateSize() floats) for this
//    Encode call, e.g. batch norm folded into conv weights.
//  - Forward keeps what Backward needs (inside the layer); the encoder
//    keeps each layer's input and output and passes them back to Backward.
//  - Backward accumulates (+=) parameter gradients, writes din (skipped
//    when null: the first layer) and may overwrite dout.
//  - Forward/Backward use ctx.threads OpenMP threads; for a fixed count the
//    results are deterministic.
#ifndef EMBEDSEARCH_CORE_NN_LAYERS_H_
#define EMBEDSEARCH_CORE_NN_LAYERS_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/nn/batchnorm.h"
#include "core/nn/encoder.h"
#include "core/nn/layer_spec.h"
#include "core/nn/random.h"

namespace embedsearch {
namespace nn {

// nn::ThreadScratch slots. conv2d.cc's batch helpers use 0-1 inside a call.
enum ScratchSlot {
  kSlotCol = 0,
  kSlotConvOut = 1,
  kSlotPing = 2,
  kSlotPong = 3,
  kSlotDcol = 4,
  kSlotChunkA = 5,
  kSlotChunkB = 6,
  kSlotGrad = 7,
  kSlotInferState = 8,
  kSlotResidualA = 9,
  kSlotResidualShortcut = 10,
};

struct RunContext {
  int threads = 1;
  bool training = false;
  Rng* dropout_rng = nullptr;
  BatchNormOptions bn;
};

class Layer {
 public:
  Layer(TensorShape in, TensorShape out) : in_(in), out_(out) {}
  virtual ~Layer() = default;
  const TensorShape& in() const { return in_; }
  const TensorShape& out() const { return out_; }

  // Linear layers and everything after the first one run on chunks of
  // images at inference (a GEMM); the rest one image at a time.
  virtual bool IsLinear() const { return false; }
  // Skipped by Encode (dropout).
  virtual bool IdentityAtInference() const { return false; }
  virtual size_t InferenceStateSize() const { return 0; }
  virtual void PrepareInference(float* /*state*/) const {}
  virtual void Infer(const float* in, int rows, float* out,
                     const float* state) const = 0;
  virtual void Forward(const float* in, int n, float* out,
                       const RunContext& ctx) = 0;
  virtual void Backward(const float* in, const float* out, float* dout, int n,
                        float* din, const RunContext& ctx) = 0;
  // Random initial weights, drawn in layer order: He normal for layers
  // followed by ReLU, Xavier uniform when `last` (the final weight layer).
  virtual void Init(Rng* /*rng*/, bool /*last*/) {}
  virtual bool HasWeights() const { return false; }

 private:
  TensorShape in_, out_;
};

// Creates a parameter owned by the encoder (stable address), zero-filled.
using AddParameterFn = std::function<Parameter*(
    std::string name, std::vector<int> shape, bool trainable)>;

// Runnable layers for a list whose shapes LayerOutputShape accepted.
std::vector<std::unique_ptr<Layer>> BuildLayers(
    const std::vector<LayerSpec>& specs, TensorShape input,
    const AddParameterFn& add);

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_LAYERS_H_
