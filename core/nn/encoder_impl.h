// Private to core/nn: the encoder's layers, parameters and training cache.
#ifndef EMBEDSEARCH_CORE_NN_ENCODER_IMPL_H_
#define EMBEDSEARCH_CORE_NN_ENCODER_IMPL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "core/nn/encoder.h"
#include "core/nn/layers.h"
#include "core/nn/random.h"

namespace embedsearch {

struct Encoder::Impl {
  EncoderConfig config;
  std::vector<std::unique_ptr<Parameter>> params;  // stable addresses
  std::vector<std::unique_ptr<nn::Layer>> layers;
  int64_t input_size = 0;  // C*H*W
  // Layers [0, chunk_start) run one image at a time in Encode, the rest
  // (from the first linear layer) on chunks of images.
  size_t chunk_start = 0;
  int threads = 1;
  nn::Rng dropout_rng{0};
  nn::BatchNormOptions bn_options;

  // Training cache: acts[0] is a copy of the last input, acts[i + 1] the
  // output of layers[i]; grads are Backward's two ping-pong buffers.
  int n = 0;
  bool training = false;
  bool have_forward = false;
  std::vector<std::vector<float>> acts;
  std::vector<float> grad_a, grad_b;

  Parameter* AddParameter(std::string name, std::vector<int> shape,
                          bool trainable = true);
  // Builds layers and zero/one-initialised parameters for a valid config
  // (config.embedding_dim is set from the layer list).
  void Build(const EncoderConfig& c);
};

// InvalidArgument naming the offending field or layer, or OK.
absl::Status ValidateEncoderConfig(const EncoderConfig& config);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_ENCODER_IMPL_H_
