// The format-1 model fixtures (tests/nn/fixtures/*.model, written by
// make_format1_fixture from the pre-layer encoder) and their inputs.
#ifndef EMBEDSEARCH_TESTS_NN_FORMAT1_FIXTURE_H_
#define EMBEDSEARCH_TESTS_NN_FORMAT1_FIXTURE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/nn/encoder.h"

namespace embedsearch {

constexpr int kFixtureImages = 5;

struct FixtureModel {
  std::string name;
  EncoderConfig config;
  uint64_t seed;
};

inline std::vector<FixtureModel> FixtureModels() {
  std::vector<FixtureModel> out;
  EncoderConfig plain;  // no batch norm: the fused conv/pool/bias path
  plain.conv_channels = {8, 16};
  plain.hidden = 32;
  plain.embedding_dim = 16;
  out.push_back({"format1_plain", plain, 11});
  EncoderConfig bn;  // batch norm folded into the conv at inference
  bn.input_height = 16;
  bn.input_width = 12;
  bn.input_channels = 3;
  bn.conv_channels = {4, 8, 8};
  bn.batch_norm = true;
  bn.hidden = 24;
  bn.embedding_dim = 8;
  bn.dropout = 0.25f;
  out.push_back({"format1_bn", bn, 12});
  EncoderConfig linear;  // no conv layers, no L2 normalization
  linear.input_height = 6;
  linear.input_width = 5;
  linear.conv_channels = {};
  linear.hidden = 12;
  linear.embedding_dim = 4;
  linear.l2_normalize = false;
  out.push_back({"format1_linear", linear, 13});
  return out;
}

// Deterministic inputs in about [-2, 2] (a fixed integer hash, no RNG
// whose stream could change).
inline std::vector<float> FixtureInputs(int64_t input_size, int n,
                                        uint32_t salt) {
  std::vector<float> x(size_t(n) * input_size);
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u + salt * 40503u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    x[i] = static_cast<float>(h % 4001u) / 1000.0f - 2.0f;
  }
  return x;
}

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TESTS_NN_FORMAT1_FIXTURE_H_
