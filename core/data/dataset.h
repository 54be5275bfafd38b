// Labelled image sets: Fashion-MNIST IDX files or an image folder.
#ifndef EMBEDSEARCH_CORE_DATA_DATASET_H_
#define EMBEDSEARCH_CORE_DATA_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/image/image.h"

namespace embedsearch {

// All images share one size and are 8-bit grayscale, stored contiguously.
struct Dataset {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;  // size() * height * width bytes.
  std::vector<int32_t> labels;  // One per image, in [0, label_names.size()).
  std::vector<std::string> label_names;  // Index = label.
  std::vector<std::string>
      sources;  // One per image: "idx:train:17" or a file path.

  size_t size() const { return labels.size(); }
  const uint8_t* image(size_t i) const {
    return pixels.data() + i * static_cast<size_t>(height) * width;
  }
  Image GetImage(size_t i) const;  // A copy as a 1-channel Image.
  // The images at `indices`, in that order (repeats allowed), with the same
  // label names. Every index must be < size() (checked; aborts otherwise).
  Dataset Subset(const std::vector<size_t>& indices) const;
  // The first `n` images of each label (every image of a label with fewer),
  // in dataset order: a small balanced subset for tests and evaluation.
  Dataset FirstPerLabel(size_t n) const;
};

// The ten Fashion-MNIST class names, in label order.
const std::vector<std::string>& FashionMnistLabelNames();

// Reads a gzipped (or plain) IDX file pair. `split` is "train" or "t10k".
// Errors: NotFound for missing files, DataLoss for truncated/corrupt data,
// InvalidArgument for mismatched image/label counts.
absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir,
                                         const std::string& split);

// Low level: one IDX file (magic 0x0801 labels or 0x0803 images), gz or not.
struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;
};
// Only unsigned-byte IDX (type 0x08) with 1..4 dimensions. The size claimed
// by the header is checked against what the file can hold before anything is
// allocated. Errors: NotFound, DataLoss (bad magic, truncated, corrupt gzip,
// trailing bytes), InvalidArgument (unsupported element type).
absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path);
// The same on bytes in memory (gzip or plain); `name` is used in messages.
absl::StatusOr<IdxArray> ParseIdx(absl::string_view bytes,
                                  absl::string_view name = "IDX");
// Writes atomically (see WriteFileAtomically). InvalidArgument if the dims'
// product differs from data.size() or there are not 1..4 dims.
absl::Status WriteIdxFile(const std::string& path, const IdxArray& array,
                          bool gzip);

struct ImageFolderOptions {
  int height = 28;  // default: every image is resized to 28x28 gray
  int width = 28;
  DecodeLimits limits;
};

// ROOT/<label name>/*.png|jpg|jpeg|pgm; labels in sorted label-name order,
// files in sorted order. Unreadable images are an error naming the file.
absl::StatusOr<Dataset> LoadImageFolder(const std::string& root,
                                        const ImageFolderOptions& options = {});

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_DATA_DATASET_H_
