// Helpers shared by the codecs of core/image; not part of the public API.
#ifndef EMBEDSEARCH_CORE_IMAGE_CODEC_INTERNAL_H_
#define EMBEDSEARCH_CORE_IMAGE_CODEC_INTERNAL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/image/image.h"

namespace embedsearch {
namespace image_internal {

// InvalidArgument unless 1 <= width, height <= limits.max_side and
// width * height <= limits.max_pixels. Called with header values, before any
// pixel buffer exists, so a forged header cannot make us allocate.
absl::Status CheckDimensions(absl::string_view format, int64_t width,
                             int64_t height, const DecodeLimits& limits);

// InvalidArgument unless the image is well formed: positive size, 1/3/4
// channels and exactly height * width * channels bytes.
absl::Status ValidateImage(absl::string_view what, const Image& image);

}  // namespace image_internal
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_IMAGE_CODEC_INTERNAL_H_
