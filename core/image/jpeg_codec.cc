// JPEG through libjpeg(-turbo). libjpeg's default error handler calls exit();
// ours longjmps back instead, so the functions that call setjmp keep only
// trivially destructible locals and reach C++ objects through pointers.
// jpeglib.h uses size_t and FILE without including their headers.
#include <cstddef>
#include <cstdio>

// clang-format off: jpeglib.h must come before jerror.h.
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <csetjmp>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/image/codec_internal.h"
#include "core/image/image.h"

namespace embedsearch {
namespace {

// Progressive JPEGs may hold many scans, each a full pass over the
// coefficients: a small file could keep us busy for minutes. Real encoders
// write about ten; refuse files with absurdly many.
constexpr int kMaxScans = 1000;

struct JpegError {
  jpeg_error_mgr mgr;  // First member: libjpeg casts the pointer back.
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
  bool too_many_scans = false;
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

// Warnings (e.g. "premature end of data") only count; the decoder turns them
// into errors afterwards, so a truncated file is never returned as an image.
void JpegEmitMessage(j_common_ptr cinfo, int msg_level) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  if (msg_level < 0) {
    if (err->mgr.num_warnings == 0) {
      (*cinfo->err->format_message)(cinfo, err->message);
    }
    ++err->mgr.num_warnings;
  }
}

void JpegProgress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    reinterpret_cast<JpegError*>(cinfo->err)->too_many_scans = true;
    longjmp(reinterpret_cast<JpegError*>(cinfo->err)->jump, 1);
  }
}

struct JpegDecodeState {
  const DecodeLimits* limits = nullptr;
  absl::Status limit_status;
  Image* image = nullptr;
  std::vector<uint8_t> cmyk;  // Scratch row for CMYK/YCCK input.
};

bool DecodeJpegInto(jpeg_decompress_struct* cinfo, JpegError* err,
                    jpeg_progress_mgr* progress, absl::string_view bytes,
                    JpegDecodeState* state) {
  if (setjmp(err->jump)) return false;
  jpeg_create_decompress(cinfo);  // Zeroes everything but cinfo->err.
  cinfo->progress = progress;
  jpeg_mem_src(cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(cinfo, TRUE);
  state->limit_status = image_internal::CheckDimensions(
      "JPEG", cinfo->image_width, cinfo->image_height, *state->limits);
  if (!state->limit_status.ok()) return false;

  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK ||
                    cinfo->jpeg_color_space == JCS_YCCK;
  if (cmyk) {
    cinfo->out_color_space = JCS_CMYK;
  } else if (cinfo->num_components == 1) {
    cinfo->out_color_space = JCS_GRAYSCALE;
  } else {
    cinfo->out_color_space = JCS_RGB;
  }
  jpeg_start_decompress(cinfo);
  const int channels = cmyk ? 3 : cinfo->output_components;
  if ((cmyk && cinfo->output_components != 4) ||
      (!cmyk && channels != 1 && channels != 3)) {
    ERREXIT(cinfo, JERR_BAD_J_COLORSPACE);
  }
  Image* image = state->image;
  image->width = static_cast<int>(cinfo->output_width);
  image->height = static_cast<int>(cinfo->output_height);
  image->channels = channels;
  const size_t stride = static_cast<size_t>(image->width) * channels;
  image->pixels.resize(stride * image->height);
  if (cmyk) state->cmyk.resize(static_cast<size_t>(image->width) * 4);
  while (cinfo->output_scanline < cinfo->output_height) {
    uint8_t* row = image->pixels.data() + cinfo->output_scanline * stride;
    JSAMPROW target = cmyk ? state->cmyk.data() : row;
    if (jpeg_read_scanlines(cinfo, &target, 1) != 1) {
      ERREXIT(cinfo, JERR_INPUT_EOF);
    }
    if (cmyk) {
      // Adobe writes inverted CMYK: R = C * K / 255 on the stored values.
      for (int x = 0; x < image->width; ++x) {
        const uint8_t* p = state->cmyk.data() + 4 * x;
        for (int k = 0; k < 3; ++k) {
          row[3 * x + k] = static_cast<uint8_t>((p[k] * p[3] + 127) / 255);
        }
      }
    }
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

bool EncodeJpegInto(jpeg_compress_struct* cinfo, JpegError* err,
                    const Image* image, int quality, unsigned char** buffer,
                    unsigned long* size) {
  if (setjmp(err->jump)) return false;
  jpeg_create_compress(cinfo);
  jpeg_mem_dest(cinfo, buffer, size);
  cinfo->image_width = static_cast<JDIMENSION>(image->width);
  cinfo->image_height = static_cast<JDIMENSION>(image->height);
  cinfo->input_components = image->channels;
  cinfo->in_color_space = image->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  const size_t stride = static_cast<size_t>(image->width) * image->channels;
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(image->pixels.data() +
                                        cinfo->next_scanline * stride);
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

}  // namespace

absl::StatusOr<Image> DecodeJpeg(absl::string_view bytes,
                                 const DecodeLimits& limits) {
  if (DetectFormat(bytes) != ImageFormat::kJpeg) {
    return absl::InvalidArgumentError("JPEG: missing SOI marker");
  }
  Image image;
  JpegDecodeState state;
  state.limits = &limits;
  state.image = &image;
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = JpegErrorExit;
  err.mgr.emit_message = JpegEmitMessage;
  jpeg_progress_mgr progress = {};
  progress.progress_monitor = JpegProgress;
  const bool ok = DecodeJpegInto(&cinfo, &err, &progress, bytes, &state);
  jpeg_destroy_decompress(&cinfo);
  if (!state.limit_status.ok()) return state.limit_status;
  if (err.too_many_scans) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JPEG: more than ", kMaxScans, " progressive scans, refused"));
  }
  if (!ok || err.mgr.num_warnings > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("JPEG: corrupt or truncated data (", err.message, ")"));
  }
  return image;
}

absl::StatusOr<std::string> EncodeJpeg(const Image& image, int quality) {
  absl::Status valid = image_internal::ValidateImage("JPEG encode", image);
  if (!valid.ok()) return valid;
  if (quality < 1 || quality > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("JPEG encode: quality ", quality, " not in [1, 100]"));
  }
  // JPEG has no alpha: composite over black like ToGrayscale does.
  Image rgb;
  const Image* source = &image;
  if (image.channels == 4) {
    rgb = ToRgb(image);
    source = &rgb;
  }
  jpeg_compress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = JpegErrorExit;
  err.mgr.emit_message = JpegEmitMessage;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const bool ok = EncodeJpegInto(&cinfo, &err, source, quality, &buffer, &size);
  jpeg_destroy_compress(&cinfo);
  std::string out;
  if (ok) out.assign(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  if (!ok) {
    return absl::InternalError(
        absl::StrCat("JPEG encode failed: ", err.message));
  }
  return out;
}

}  // namespace embedsearch
