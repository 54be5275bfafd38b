// PNG through libpng. libpng reports errors by longjmp, so the functions that
// call setjmp keep only trivially destructible locals; every C++ object they
// touch lives in the caller's frame and is reached through a pointer.
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/image/codec_internal.h"
#include "core/image/image.h"

namespace embedsearch {
namespace {

struct PngIo {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  std::string* out = nullptr;  // Encoder output.
  char error[200] = {0};
};

void PngError(png_structp png, png_const_charp message) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->error, sizeof(io->error), "%s", message);
  png_longjmp(png, 1);
}

void PngWarning(png_structp, png_const_charp) {}  // Warnings are not errors.

void PngRead(png_structp png, png_bytep out, png_size_t length) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (length > io->size - io->pos) png_error(png, "truncated data");
  std::memcpy(out, io->data + io->pos, length);
  io->pos += length;
}

void PngWrite(png_structp png, png_bytep data, png_size_t length) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  io->out->append(reinterpret_cast<const char*>(data), length);
}

void PngFlush(png_structp) {}

// What the decoder needs besides the png structs; owned by DecodePng.
struct PngDecodeState {
  PngIo io;
  const DecodeLimits* limits = nullptr;
  absl::Status limit_status;
  Image* image = nullptr;
  std::vector<png_bytep> rows;
};

// Returns false with state->io.error or state->limit_status set.
bool DecodePngInto(png_structp png, png_infop info, PngDecodeState* state) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, &state->io, PngRead);
  // Ancillary chunks (text, ICC profiles) may not make us allocate much.
  png_set_chunk_malloc_max(png, 8u << 20);
  png_read_info(png, info);

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, nullptr,
               nullptr, nullptr);
  state->limit_status =
      image_internal::CheckDimensions("PNG", width, height, *state->limits);
  if (!state->limit_status.ok()) return false;

  // Normalise to 8-bit gray, gray+alpha, RGB or RGBA.
  png_set_expand(png);  // Palette -> RGB, low-bit gray -> 8, tRNS -> alpha.
  png_set_strip_16(png);
  png_set_packing(png);
  if (png_set_interlace_handling(png) < 1) png_error(png, "bad interlace");
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  if (channels < 1 || channels > 4 || rowbytes != size_t{width} * channels) {
    png_error(png, "unexpected row layout after transforms");
  }
  Image* image = state->image;
  image->width = static_cast<int>(width);
  image->height = static_cast<int>(height);
  image->channels = channels;
  image->pixels.resize(rowbytes * height);
  state->rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) {
    state->rows[y] = image->pixels.data() + y * rowbytes;
  }
  png_read_image(png, state->rows.data());
  png_read_end(png, nullptr);  // Verifies the trailing chunks' CRCs.
  return true;
}

struct PngEncodeState {
  PngIo io;
  const Image* image = nullptr;
  std::vector<png_bytep> rows;
};

bool EncodePngInto(png_structp png, png_infop info, PngEncodeState* state) {
  if (setjmp(png_jmpbuf(png))) return false;
  const Image& image = *state->image;
  png_set_write_fn(png, &state->io, PngWrite, PngFlush);
  const int color_type = image.channels == 1   ? PNG_COLOR_TYPE_GRAY
                         : image.channels == 3 ? PNG_COLOR_TYPE_RGB
                                               : PNG_COLOR_TYPE_RGBA;
  png_set_IHDR(png, info, image.width, image.height, 8, color_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, state->rows.data());
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

absl::StatusOr<Image> DecodePng(absl::string_view bytes,
                                const DecodeLimits& limits) {
  if (DetectFormat(bytes) != ImageFormat::kPng) {
    return absl::InvalidArgumentError("PNG: missing PNG signature");
  }
  Image image;
  PngDecodeState state;
  state.io.data = reinterpret_cast<const uint8_t*>(bytes.data());
  state.io.size = bytes.size();
  state.limits = &limits;
  state.image = &image;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state.io,
                                           PngError, PngWarning);
  if (png == nullptr) return absl::ResourceExhaustedError("PNG: out of memory");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return absl::ResourceExhaustedError("PNG: out of memory");
  }
  const bool ok = DecodePngInto(png, info, &state);
  png_destroy_read_struct(&png, &info, nullptr);
  if (!state.limit_status.ok()) return state.limit_status;
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("PNG: corrupt or truncated data (", state.io.error, ")"));
  }
  // Gray+alpha has no Image layout of its own: widen to RGBA.
  if (image.channels == 2) {
    const size_t n = static_cast<size_t>(image.width) * image.height;
    std::vector<uint8_t> rgba(n * 4);
    for (size_t i = 0; i < n; ++i) {
      rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = image.pixels[2 * i];
      rgba[4 * i + 3] = image.pixels[2 * i + 1];
    }
    image.pixels = std::move(rgba);
    image.channels = 4;
  }
  return image;
}

absl::StatusOr<std::string> EncodePng(const Image& image) {
  absl::Status valid = image_internal::ValidateImage("PNG encode", image);
  if (!valid.ok()) return valid;
  std::string out;
  PngEncodeState state;
  state.io.out = &out;
  state.image = &image;
  const size_t stride = static_cast<size_t>(image.width) * image.channels;
  state.rows.resize(image.height);
  for (int y = 0; y < image.height; ++y) {
    state.rows[y] = const_cast<png_bytep>(image.pixels.data() + y * stride);
  }
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state.io,
                                            PngError, PngWarning);
  if (png == nullptr) return absl::ResourceExhaustedError("PNG: out of memory");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    return absl::ResourceExhaustedError("PNG: out of memory");
  }
  const bool ok = EncodePngInto(png, info, &state);
  png_destroy_write_struct(&png, &info);
  if (!ok) {
    return absl::InternalError(
        absl::StrCat("PNG encode failed: ", state.io.error));
  }
  return out;
}

}  // namespace embedsearch
