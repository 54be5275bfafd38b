#include "trainer/model_arch.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/nn/arch_spec.h"

namespace embedsearch {

absl::Status ApplyArchOptions(const TrainerOptions& o, EncoderConfig* config) {
  if (!o.input.empty()) {
    absl::StatusOr<TensorShape> shape = ParseInputShape(o.input);
    if (!shape.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("--input: ", shape.status().message()));
    // The data loader decides the decoded size; a model of another shape
    // could not take its images.
    if (shape->height != config->input_height ||
        shape->width != config->input_width ||
        shape->channels != config->input_channels) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--input ", o.input, " does not match the training data's ",
          config->input_height, "x", config->input_width, "x",
          config->input_channels, " images"));
    }
  }
  std::string arch = o.arch;
  if (arch.empty())
    arch = config->input_channels == 3 ? "colour-small" : kLegacyArchPreset;
  return ApplyArch(arch, config);
}

}  // namespace embedsearch
