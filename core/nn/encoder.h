// The image encoder: a small CNN whose output is the search embedding.
//
// Architecture (from EncoderConfig): for each conv width w:
//   conv 3x3 (pad 1) -> [batch norm] -> ReLU -> max-pool 2x2,
// then flatten -> linear(hidden) -> ReLU -> [dropout] -> linear(dim)
// -> [L2 normalize]. The reference encoder is conv_channels={32,64},
// hidden=128, dim=64 on 28x28x1 input.
//
// Thread safety: Forward in eval mode (Encode) is const and may be called
// from many threads at once; training calls (Forward with training=true,
// Backward) need exclusive access.
#ifndef EMBEDSEARCH_CORE_NN_ENCODER_H_
#define EMBEDSEARCH_CORE_NN_ENCODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/preprocess.h"

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
  Normalization normalization;           // applied by the preprocessing
};

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
  // Model file (ModelProto, binary). Errors name what is wrong: missing
  // file, corrupt data, format_version mismatch, tensor shape mismatch.
  static absl::StatusOr<std::unique_ptr<Encoder>> Load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Encoder>> FromBytes(absl::string_view bytes);
  absl::Status Save(const std::string& path) const;
  std::string ToBytes() const;

  const EncoderConfig& config() const;
  int dim() const;
  // "enc-" + first 12 hex digits of a hash of config and weights.
  std::string model_version() const;

  // Inference: n preprocessed inputs (n * C*H*W floats) to n embeddings
  // (n * dim floats). Thread-safe; uses at most `threads` OpenMP threads
  // (0 = the OpenMP default).
  void Encode(const float* input, int n, float* output, int threads = 1) const;

  // Training: forward keeps activations; backward takes dL/d(embedding)
  // (n * dim) and accumulates parameter gradients.
  void Forward(const float* input, int n, float* output, bool training);
  void Backward(const float* grad_output);
  void ZeroGrad();
  std::vector<Parameter*> parameters();

  ~Encoder();

 private:
  Encoder();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_ENCODER_H_
