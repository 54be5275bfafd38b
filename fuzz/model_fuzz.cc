// The model loader: arbitrary bytes as a model.pb. Must give a status,
// never crash, and never allocate absurd tensors from a lying header.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/nn/encoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto encoder = embedsearch::Encoder::FromBytes(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (encoder.ok()) {
    // A model that loads must also run.
    const auto& config = (*encoder)->config();
    std::vector<float> input(static_cast<size_t>(config.input_channels) *
                             config.input_height * config.input_width);
    std::vector<float> output((*encoder)->dim());
    (*encoder)->Encode(input.data(), 1, output.data());
  }
  return 0;
}
