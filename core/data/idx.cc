// IDX files (the MNIST container): big-endian header, then raw bytes,
// usually gzipped. Sizes come from the header, so the header is checked
// against what the file can possibly hold before anything is allocated.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/data/dataset.h"
#include "core/util/file.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

constexpr int kMaxDims = 4;
// Deflate cannot compress better than about 1032:1.
constexpr uint64_t kMaxDeflateRatio = 1040;
// Nothing we read is bigger than this (Fashion-MNIST train is 47 MB).
constexpr uint64_t kMaxPayload = uint64_t{4} << 30;

bool IsGzip(absl::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1F &&
         static_cast<unsigned char>(bytes[1]) == 0x8B;
}

// Streams the decompressed (or plain) content into caller buffers, so the
// header can be read and checked before the payload buffer exists.
class Source {
 public:
  Source(absl::string_view bytes, std::string name)
      : bytes_(bytes), name_(std::move(name)), gzip_(IsGzip(bytes)) {}
  ~Source() {
    if (stream_open_) inflateEnd(&stream_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  absl::Status Init() {
    if (!gzip_) return absl::OkStatus();
    std::memset(&stream_, 0, sizeof(stream_));
    if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) {
      return absl::ResourceExhaustedError(name_ + ": inflateInit failed");
    }
    stream_open_ = true;
    stream_.next_in =
        reinterpret_cast<Bytef*>(const_cast<char*>(bytes_.data()));
    stream_.avail_in = static_cast<uInt>(
        std::min<size_t>(bytes_.size(), std::numeric_limits<uInt>::max()));
    return absl::OkStatus();
  }

  // The most bytes the content can possibly hold.
  uint64_t MaxContentSize() const {
    return gzip_ ? bytes_.size() * kMaxDeflateRatio : bytes_.size();
  }
  bool gzip() const { return gzip_; }

  // Reads exactly `n` bytes or fails with DataLoss naming `what`.
  absl::Status Read(uint8_t* out, size_t n, const char* what) {
    size_t got = 0;
    RETURN_IF_ERROR(ReadSome(out, n, &got));
    if (got < n) {
      return absl::DataLossError(absl::StrCat(
          name_, ": truncated ", what, " (got ", got, " of ", n, " bytes)"));
    }
    return absl::OkStatus();
  }

  // OK only if the content ends here (and, for gzip, the CRC matches).
  absl::Status ExpectEnd() {
    uint8_t scratch[64];
    size_t got = 0;
    RETURN_IF_ERROR(ReadSome(scratch, sizeof(scratch), &got));
    if (got > 0) {
      return absl::DataLossError(absl::StrCat(
          name_, ": trailing bytes after the data the header declares"));
    }
    if (gzip_ && stream_.avail_in > 0) {
      return absl::DataLossError(
          absl::StrCat(name_, ": trailing bytes after the gzip stream"));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status ReadSome(uint8_t* out, size_t n, size_t* got) {
    *got = 0;
    if (!gzip_) {
      const size_t take = std::min(n, bytes_.size() - pos_);
      std::memcpy(out, bytes_.data() + pos_, take);
      pos_ += take;
      *got = take;
      return absl::OkStatus();
    }
    while (*got < n && !stream_end_) {
      const size_t want = std::min<size_t>(n - *got, 1u << 30);
      stream_.next_out = out + *got;
      stream_.avail_out = static_cast<uInt>(want);
      const int rc = inflate(&stream_, Z_NO_FLUSH);
      *got += want - stream_.avail_out;
      if (rc == Z_STREAM_END) {
        stream_end_ = true;
      } else if (rc == Z_BUF_ERROR && stream_.avail_in == 0) {
        return absl::DataLossError(
            absl::StrCat(name_, ": truncated gzip stream"));
      } else if (rc != Z_OK) {
        return absl::DataLossError(absl::StrCat(
            name_, ": corrupt gzip data (",
            stream_.msg != nullptr ? stream_.msg : zError(rc), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::string_view bytes_;
  std::string name_;
  bool gzip_;
  size_t pos_ = 0;
  z_stream stream_;
  bool stream_open_ = false;
  bool stream_end_ = false;
};

uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

absl::StatusOr<std::string> Gzip(absl::string_view data) {
  z_stream stream;
  std::memset(&stream, 0, sizeof(stream));
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS,
                   8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::ResourceExhaustedError("deflateInit failed");
  }
  std::string out(deflateBound(&stream, data.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (rc != Z_STREAM_END) return absl::InternalError("deflate failed");
  return out;
}

}  // namespace

absl::StatusOr<IdxArray> ParseIdx(absl::string_view bytes,
                                  absl::string_view name) {
  Source source(bytes, std::string(name));
  RETURN_IF_ERROR(source.Init());
  uint8_t magic[4];
  RETURN_IF_ERROR(source.Read(magic, 4, "header"));
  if (magic[0] != 0 || magic[1] != 0) {
    return absl::DataLossError(
        absl::StrCat(name, ": not an IDX file (bad magic)"));
  }
  if (magic[2] != 0x08) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": unsupported IDX element type 0x",
        absl::Hex(magic[2], absl::kZeroPad2), " (only unsigned byte, 0x08)"));
  }
  const int ndims = magic[3];
  if (ndims < 1 || ndims > kMaxDims) {
    return absl::DataLossError(absl::StrCat(name, ": IDX header declares ",
                                            ndims, " dimensions (want 1..",
                                            kMaxDims, ")"));
  }
  uint8_t dims_raw[4 * kMaxDims];
  RETURN_IF_ERROR(source.Read(dims_raw, 4 * ndims, "header"));
  IdxArray array;
  uint64_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    array.dims.push_back(LoadBe32(dims_raw + 4 * d));
    total *= array.dims.back();
    if (total > kMaxPayload) break;  // Stops overflow; refused just below.
  }
  const uint64_t header = 4 + 4 * static_cast<uint64_t>(ndims);
  const uint64_t can_hold =
      source.MaxContentSize() > header ? source.MaxContentSize() - header : 0;
  if (total > kMaxPayload || total > can_hold) {
    return absl::DataLossError(absl::StrCat(
        name, ": header claims ", total > kMaxPayload ? "more than " : "",
        std::min(total, kMaxPayload), " bytes of data but a ",
        source.gzip() ? "gzip " : "", "file of ", bytes.size(),
        " bytes can hold at most ", can_hold, " (truncated or corrupt)"));
  }
  array.data.resize(total);
  RETURN_IF_ERROR(source.Read(array.data.data(), total, "data"));
  RETURN_IF_ERROR(source.ExpectEnd());
  return array;
}

absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseIdx(bytes, path);
}

absl::Status WriteIdxFile(const std::string& path, const IdxArray& array,
                          bool gzip) {
  if (array.dims.empty() || array.dims.size() > kMaxDims) {
    return absl::InvalidArgumentError(
        absl::StrCat("WriteIdxFile ", path, ": ", array.dims.size(),
                     " dims (want 1..", kMaxDims, ")"));
  }
  uint64_t total = 1;
  for (uint32_t d : array.dims) total *= d;
  if (total != array.data.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("WriteIdxFile ", path, ": dims hold ", total,
                     " bytes but data has ", array.data.size()));
  }
  std::string raw;
  raw.reserve(4 + 4 * array.dims.size() + array.data.size());
  raw.push_back(0);
  raw.push_back(0);
  raw.push_back(0x08);
  raw.push_back(static_cast<char>(array.dims.size()));
  for (uint32_t d : array.dims) {
    for (int s = 24; s >= 0; s -= 8) raw.push_back(static_cast<char>(d >> s));
  }
  raw.append(reinterpret_cast<const char*>(array.data.data()),
             array.data.size());
  if (!gzip) return WriteFileAtomically(path, raw);
  ASSIGN_OR_RETURN(std::string compressed, Gzip(raw));
  return WriteFileAtomically(path, compressed);
}

}  // namespace embedsearch
