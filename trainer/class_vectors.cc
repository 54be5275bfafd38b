#include "trainer/class_vectors.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/nn/random.h"

namespace embedsearch {

Parameter MakeClassVectors(int classes, int dim, uint64_t run_seed) {
  Parameter p;
  p.name = "class_vectors";
  p.shape = {classes, dim};
  const size_t size = static_cast<size_t>(classes) * dim;
  p.value.resize(size);
  p.grad.assign(size, 0.0f);
  nn::Rng rng(run_seed * 0x9E3779B97F4A7C15ull + 29);  // not the encoder's stream
  for (float& v : p.value) v = rng.Normal();
  return p;
}

std::string ClassVectorsToBytes(const Parameter& vectors) {
  return std::string(reinterpret_cast<const char*>(vectors.value.data()),
                     vectors.value.size() * sizeof(float));
}

absl::Status ClassVectorsFromBytes(absl::string_view bytes, Parameter* vectors) {
  if (bytes.size() != vectors->value.size() * sizeof(float)) {
    return absl::DataLossError(absl::StrCat(
        "class_vectors: ", bytes.size(), " bytes, expected ",
        vectors->value.size() * sizeof(float)));
  }
  std::memcpy(vectors->value.data(), bytes.data(), bytes.size());
  return absl::OkStatus();
}

}  // namespace embedsearch
