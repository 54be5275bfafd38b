// Labelled image sets: Fashion-MNIST IDX files or an image folder.
#ifndef EMBEDSEARCH_CORE_DATA_DATASET_H_
#define EMBEDSEARCH_CORE_DATA_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/image/image.h"

namespace embedsearch {

// All images share one size and are 8-bit grayscale, stored contiguously.
struct Dataset {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;           // size() * height * width bytes.
  std::vector<int32_t> labels;           // One per image, in [0, label_names.size()).
  std::vector<std::string> label_names;  // Index = label.
  std::vector<std::string> sources;      // One per image: "idx:train:17" or a file path.

  size_t size() const { return labels.size(); }
  const uint8_t* image(size_t i) const {
    return pixels.data() + i * static_cast<size_t>(height) * width;
  }
  Image GetImage(size_t i) const;  // A copy as a 1-channel Image.
  // The first `n` images of each label, or every image when fewer exist.
  Dataset Subset(const std::vector<size_t>& indices) const;
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
absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path);
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
