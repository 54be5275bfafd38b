// Readable encoder architectures: the trainer's --arch and --input.
//
// Spec grammar (comma-separated tokens, applied left to right):
//   c<W>[k<K>][s<S>][p<P>][x<N>]  N x (conv WxKxK stride S pad P, no bias ->
//                                 batch norm -> ReLU); K default 3, P K/2,
//                                 S 1 (only the first of the N is strided)
//   p[<K>][s<S>]                  max-pool KxK stride S (default 2, S = K)
//   a[<K>][s<S>]                  average pool, same defaults
//   r<W>[s<S>][x<N>][i]           N residual blocks of width W; the first is
//                                 strided by S and gets a 1x1 projection
//                                 shortcut when width or stride change; `i`
//                                 forces identity shortcuts (a width
//                                 mismatch is then an error)
//   gap                           global average pooling
//   fc<N>                         linear with N outputs; a ReLU follows every
//                                 fc but the last
//   d<R>                          dropout with rate R, e.g. d0.2
// An L2 normalization always ends the list (the embedding is unit-norm).
// Example: c32x2,p,c64x2,p,c128x2,p,gap,fc128 or c32,p,r64x2,r128s2x2,gap,fc64.
//
// Presets (ApplyArch): "fmnist-small" is the legacy layout from the
// config's conv_channels/batch_norm/hidden/dropout (with the trainer's
// defaults: today's Fashion-MNIST network, format-1 model files);
// "colour-small" = c32,p,c64,p,r128,p,gap,fc<embedding_dim>, for 64x64x3.
//
// All functions are pure and thread-safe. Errors are InvalidArgument and
// name the offending token (its 1-based position and text).
#ifndef EMBEDSEARCH_CORE_NN_ARCH_SPEC_H_
#define EMBEDSEARCH_CORE_NN_ARCH_SPEC_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/nn/encoder.h"
#include "core/nn/layer_spec.h"

namespace embedsearch {

inline constexpr char kLegacyArchPreset[] = "fmnist-small";

// Preset names, in the order --help lists them.
std::vector<std::string> ArchPresetNames();

// The layer list of `spec` on `input` (shapes checked token by token).
absl::StatusOr<std::vector<LayerSpec>> ParseArchSpec(absl::string_view spec,
                                                     const TensorShape& input);

// Applies an --arch value (preset name or spec; "" means fmnist-small) to
// `config`, whose input shape and embedding_dim are already set: clears
// config->layers for the legacy preset, else sets them.
absl::Status ApplyArch(absl::string_view arch, EncoderConfig* config);

// "HxWxC", e.g. "64x64x3" (each within 1..4096, C within 1..64).
absl::StatusOr<TensorShape> ParseInputShape(absl::string_view text);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_ARCH_SPEC_H_
