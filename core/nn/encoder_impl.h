// Private to core/nn: the encoder's layers, parameters and training cache.
#ifndef EMBEDSEARCH_CORE_NN_ENCODER_IMPL_H_
#define EMBEDSEARCH_CORE_NN_ENCODER_IMPL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "core/nn/batchnorm.h"
#include "core/nn/conv2d.h"
#include "core/nn/encoder.h"
#include "core/nn/pool.h"
#include "core/nn/random.h"

namespace embedsearch {

// One conv width of the config: conv 3x3 pad 1 -> [BN] -> ReLU -> max-pool.
// Without batch norm the conv bias and ReLU are applied after pooling
// (pool(relu(x + b)) == relu(pool(x) + b) for a per-channel b), a 4x smaller
// tensor; with batch norm (whose scale may be negative) the order is kept.
struct ConvStage {
  nn::Conv2dShape conv;
  nn::PoolShape pool;
  Parameter* weight = nullptr;
  Parameter* bias = nullptr;  // without batch norm only
  Parameter* gamma = nullptr;  // batch norm only, from here on
  Parameter* beta = nullptr;
  Parameter* running_mean = nullptr;
  Parameter* running_var = nullptr;

  // Training cache (sized for the last Forward's batch).
  std::vector<float> pre;   // BN: conv output [n, C, H*W]
  std::vector<float> act;   // BN: relu(bn(pre)) [n, C, H*W]
  std::vector<float> save_mean, save_invstd;  // BN: batch statistics
  std::vector<int32_t> argmax;                // [n, pool.out_size()]
  std::vector<float> out;   // stage output [n, pool.out_size()]
  std::vector<float> dout;  // dL/d(out), filled by Backward
  // BN backward scratch, [n, C, H*W] each; kept between steps so a step
  // does not allocate and zero 2 x 16 MB (conv0 at batch 160). Every
  // element is overwritten before it is read.
  std::vector<float> dact, dpre;
};

struct Encoder::Impl {
  EncoderConfig config;
  std::vector<std::unique_ptr<Parameter>> params;  // stable addresses
  std::vector<ConvStage> stages;
  int64_t input_size = 0;  // C*H*W
  int64_t flat = 0;        // features entering fc1
  Parameter* fc1_weight = nullptr;
  Parameter* fc1_bias = nullptr;
  Parameter* fc2_weight = nullptr;
  Parameter* fc2_bias = nullptr;
  nn::BatchNormOptions bn_options;
  int threads = 1;
  nn::Rng dropout_rng{0};

  // Training cache.
  int n = 0;
  bool training = false;
  bool have_forward = false;
  std::vector<float> input;       // copy of the last input
  std::vector<float> hidden;      // relu(fc1) [n, hidden]
  std::vector<float> dropout_mask;
  std::vector<float> fc2_input;   // hidden * mask (training with dropout)
  std::vector<float> pre_norm;    // fc2 output [n, dim]
  std::vector<float> norms;       // [n]
  std::vector<float> embedding;   // final output [n, dim]
  std::vector<float> d_embedding, d_hidden, d_flat;

  Parameter* AddParameter(std::string name, std::vector<int> shape,
                          bool trainable = true);
  // Builds layers and zero/one-initialised parameters for a valid config.
  void Build(const EncoderConfig& c);
  const float* Fc2Input() const;
};

// InvalidArgument naming the offending field, or OK.
absl::Status ValidateEncoderConfig(const EncoderConfig& config);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_ENCODER_IMPL_H_
