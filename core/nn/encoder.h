// The image encoder: a CNN whose output is the search embedding, made of a
// list of layers (core/nn/layer_spec.h).
//
// Two ways to describe it (EncoderConfig):
//  - layers empty (the "legacy" layout, model file format_version 1): for
//    each conv width w: conv 3x3 (pad 1) -> [batch norm] -> ReLU -> max-pool
//    2x2, then flatten -> linear(hidden) -> ReLU -> [dropout] -> linear(dim)
//    -> [L2 normalize]. The reference encoder is conv_channels={32,64},
//    hidden=128, dim=64 on 28x28x1 input (the trainer's fmnist-small).
//  - layers non-empty (format_version 2): exactly that list, e.g. from an
//    arch spec (arch_spec.h); conv_channels, batch_norm, hidden, dropout and
//    l2_normalize are then ignored and embedding_dim is the list's output
//    size (Create sets it).
//
// Thread safety: Encode is const and may be called from many threads at
// once (per-thread scratch, no shared mutable state); everything non-const
// (Forward, Backward, ZeroGrad, set_threads, mutation through parameters())
// needs exclusive access.
//
// Parameters (names as in PyTorch's state_dict of the same network), legacy:
//   conv<i>.weight [C_out, C_in, 3, 3], conv<i>.bias [C_out] (no batch norm),
//   bn<i>.weight, bn<i>.bias, bn<i>.running_mean, bn<i>.running_var [C_out]
//   (batch norm; running stats have trainable = false),
//   fc1.weight [hidden, flat], fc1.bias, fc2.weight [dim, hidden], fc2.bias.
// Layer lists: <layer name>.weight / .bias / .running_mean / .running_var,
// residual blocks <name>.conv1, .bn1, .conv2, .bn2 [, .proj, .proj_bn].
#ifndef EMBEDSEARCH_CORE_NN_ENCODER_H_
#define EMBEDSEARCH_CORE_NN_ENCODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data/preprocess.h"
#include "core/nn/layer_spec.h"

namespace embedsearch {

struct EncoderConfig {
  int input_height = 28;                 // default: Fashion-MNIST 28x28
  int input_width = 28;
  int input_channels = 1;                // default: grayscale
  std::vector<int> conv_channels = {32, 64};  // default: reference encoder
  bool batch_norm = false;               // default: off
  int hidden = 128;                      // default: 128
  int embedding_dim = 64;                // default: 64
  bool l2_normalize = true;              // default: on (unit-norm embeddings)
  float dropout = 0.0f;                  // default: off
  // How images become input (resize, background, per-channel mean/std);
  // the shape is input_height/width/channels above. default: format-1
  // models' (stretch, black, Fashion-MNIST's gray mean/std).
  Preprocessing preprocessing;
  // Default empty: the legacy layout above. Otherwise the model's layers.
  std::vector<LayerSpec> layers;
  // Encode returns normalize(f(x) + f(mirror x)), mirror = left-right flip
  // of the input: an image and its mirror image get the same embedding,
  // and the average of the two views is a steadier one (test-time
  // augmentation). Twice the inference cost. Training (Forward/Backward)
  // is unchanged: the model learns f, with flips as augmentation.
  // Default: off. Saved as model format 3.
  bool flip_average = false;
};

// The config's input as core/data's InputSpec (for PreprocessImage).
inline InputSpec InputSpecOf(const EncoderConfig& c) {
  return {c.input_height, c.input_width, c.input_channels, c.preprocessing};
}

// The layer list a config describes: `layers`, or the legacy layout spelled
// out (conv<i>, bn<i>, fc1, fc2 names). Meaningful for a valid config.
std::vector<LayerSpec> EncoderLayers(const EncoderConfig& config);

// Architecture comparison for checkpoints and --resume: "" when `a` and `b`
// build the same network (input shape, layer list -- the legacy layout
// compared as its layer list -- embedding size and input normalization),
// else one line naming the first difference, e.g.
// "layer 3: stored conv1: conv 64 k3 s1 p1, now conv1: conv 32 k3 s1 p1".
std::string ArchitectureDifference(const EncoderConfig& stored,
                                   const EncoderConfig& now);

// A parameter tensor with its gradient, owned by the encoder.
struct Parameter {
  std::string name;            // e.g. "conv0.weight"
  std::vector<int> shape;
  std::vector<float> value;
  std::vector<float> grad;
  bool trainable = true;       // false for batch-norm running stats
};

class Encoder {
 public:
  // He initialisation for conv/ReLU layers, Xavier for the last linear.
  static absl::StatusOr<std::unique_ptr<Encoder>> Create(
      const EncoderConfig& config, uint64_t seed);
  // InvalidArgument for a config that cannot be built (names the field).
  // Same config and seed give bit-identical weights on every platform.
  //
  // Model file (ModelProto, binary): format_version 1 for the legacy
  // layout (byte-compatible with older builds), 2 for a layer list
  // (EncoderConfigProto.layers). Both load. Errors: NotFound (missing
  // file), DataLoss (unparsable bytes, invalid config, missing or
  // mis-shaped tensor -- named -- or weights not matching the stored
  // model_version), FailedPrecondition (a format_version other than 1 or 2;
  // the message names the versions). Save writes atomically (temp + rename).
  static absl::StatusOr<std::unique_ptr<Encoder>> Load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Encoder>> FromBytes(absl::string_view bytes);
  absl::Status Save(const std::string& path) const;
  std::string ToBytes() const;

  const EncoderConfig& config() const;
  int dim() const;
  // "enc-" + first 12 hex digits of a 64-bit hash of config and weights.
  // Computed from the current weights on each call (O(weights), about
  // 0.3 ms for the reference encoder): cache it if you need it per request.
  std::string model_version() const;
  // Floats per input image: input_channels * input_height * input_width.
  int64_t input_size() const;

  // Inference: n preprocessed inputs (n * C*H*W floats) to n embeddings
  // (n * dim floats); with config().flip_average, the normalized sum of the
  // embeddings of each input and its mirror image. Thread-safe; uses at
  // most `threads` OpenMP threads (0 = the OpenMP default; n = 1 never
  // forks). Without flip_average it equals Forward(training = false) up to
  // float rounding (batch norm is folded into the conv).
  void Encode(const float* input, int n, float* output, int threads = 1) const;

  // Training: forward keeps activations (output may be null); backward takes
  // dL/d(embedding) (n * dim) of the last Forward and accumulates (+=)
  // parameter gradients. training=true uses batch statistics for batch norm
  // (and updates the running ones) and applies dropout; training=false is
  // the inference network. Uses threads() OpenMP threads; with a fixed
  // thread count the results are deterministic.
  void Forward(const float* input, int n, float* output, bool training);
  void Backward(const float* grad_output);
  void ZeroGrad();
  // Restarts the dropout mask generator from `seed`. The trainer seeds it
  // per step (from --seed and the step number), so a resumed run draws the
  // same masks as an uninterrupted one without checkpointing RNG state.
  void SeedDropout(uint64_t seed);
  // Threads for Forward/Backward (default 1; 0 = the OpenMP default).
  void set_threads(int threads);
  int threads() const;
  // All tensors in a fixed order (the model file's order), including batch
  // norm running stats (trainable = false). Pointers live as long as the
  // encoder; shapes must not be changed.
  std::vector<Parameter*> parameters();
  std::vector<const Parameter*> parameters() const;

  ~Encoder();

 private:
  Encoder();
  // f(x) of each input: the layers, without flip averaging.
  void EncodeViews(const float* input, int n, float* output, int threads) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_ENCODER_H_
