// Binary PGM (P5), 8-bit: the format Fashion-MNIST-style tools write.
#include <string>

#include "absl/strings/str_cat.h"
#include "core/image/codec_internal.h"
#include "core/image/image.h"

namespace embedsearch {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

// Skips whitespace and '#' comments (which run to the end of the line).
void SkipSpaceAndComments(absl::string_view bytes, size_t* pos) {
  while (*pos < bytes.size()) {
    if (IsSpace(bytes[*pos])) {
      ++*pos;
    } else if (bytes[*pos] == '#') {
      while (*pos < bytes.size() && bytes[*pos] != '\n' &&
             bytes[*pos] != '\r') {
        ++*pos;
      }
    } else {
      return;
    }
  }
}

// Parses one header number; refuses anything above `max` before it overflows.
absl::Status ParseHeaderNumber(absl::string_view bytes, size_t* pos,
                               const char* what, int64_t max, int64_t* out) {
  SkipSpaceAndComments(bytes, pos);
  if (*pos >= bytes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("PGM: truncated header (missing ", what, ")"));
  }
  if (bytes[*pos] < '0' || bytes[*pos] > '9') {
    return absl::InvalidArgumentError(
        absl::StrCat("PGM: malformed header (", what, " is not a number)"));
  }
  int64_t value = 0;
  while (*pos < bytes.size() && bytes[*pos] >= '0' && bytes[*pos] <= '9') {
    value = value * 10 + (bytes[*pos] - '0');
    if (value > max) {
      return absl::InvalidArgumentError(
          absl::StrCat("PGM: ", what, " in header is larger than ", max));
    }
    ++*pos;
  }
  *out = value;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Image> DecodePgm(absl::string_view bytes,
                                const DecodeLimits& limits) {
  if (DetectFormat(bytes) != ImageFormat::kPgm) {
    return absl::InvalidArgumentError("PGM: missing 'P5' magic");
  }
  size_t pos = 2;
  if (pos >= bytes.size() || !(IsSpace(bytes[pos]) || bytes[pos] == '#')) {
    return absl::InvalidArgumentError(
        "PGM: malformed header (no whitespace after 'P5')");
  }
  // Bound the numbers generously; CheckDimensions gives the real verdict.
  constexpr int64_t kMaxHeaderValue = int64_t{1} << 31;
  int64_t width = 0, height = 0, maxval = 0;
  absl::Status s =
      ParseHeaderNumber(bytes, &pos, "width", kMaxHeaderValue, &width);
  if (s.ok())
    s = ParseHeaderNumber(bytes, &pos, "height", kMaxHeaderValue, &height);
  if (s.ok()) s = ParseHeaderNumber(bytes, &pos, "maxval", 65535, &maxval);
  if (!s.ok()) return s;
  if (maxval < 1 || maxval > 255) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PGM: maxval ", maxval, " unsupported (only 8-bit, 1..255)"));
  }
  s = image_internal::CheckDimensions("PGM", width, height, limits);
  if (!s.ok()) return s;
  // Exactly one whitespace byte separates the header from the raster.
  if (pos >= bytes.size() || !IsSpace(bytes[pos])) {
    return absl::InvalidArgumentError(
        "PGM: truncated header (no whitespace after maxval)");
  }
  ++pos;
  const size_t count = static_cast<size_t>(width) * static_cast<size_t>(height);
  if (bytes.size() - pos < count) {
    return absl::InvalidArgumentError(
        absl::StrCat("PGM: truncated raster (", bytes.size() - pos, " of ",
                     count, " bytes for ", width, "x", height, ")"));
  }
  Image image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.channels = 1;
  image.pixels.assign(bytes.begin() + pos, bytes.begin() + pos + count);
  if (maxval != 255) {
    for (uint8_t& p : image.pixels) {
      if (p > maxval) {
        return absl::InvalidArgumentError(absl::StrCat(
            "PGM: pixel value ", int{p}, " above maxval ", maxval));
      }
      p = static_cast<uint8_t>((p * 255 + maxval / 2) / maxval);
    }
  }
  return image;
}

absl::StatusOr<std::string> EncodePgm(const Image& image) {
  absl::Status valid = image_internal::ValidateImage("PGM encode", image);
  if (!valid.ok()) return valid;
  const Image gray = ToGrayscale(image);
  std::string out =
      absl::StrCat("P5\n", gray.width, " ", gray.height, "\n255\n");
  out.append(reinterpret_cast<const char*>(gray.pixels.data()),
             gray.pixels.size());
  return out;
}

}  // namespace embedsearch
