// Labelled image sets: Fashion-MNIST IDX files or an image folder.
#ifndef EMBEDSEARCH_CORE_DATA_DATASET_H_
#define EMBEDSEARCH_CORE_DATA_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data/preprocess.h"
#include "core/image/image.h"

namespace embedsearch {

// All images share one size and channel count (8-bit, interleaved like an
// Image: gray, or RGB), stored contiguously. Image folders are held at the
// model's input size (FitImage's output), never at the files' size.
struct Dataset {
  int height = 0;
  int width = 0;
  int channels = 1;  // 1 (gray) or 3 (RGB)
  // How the files were fitted to height x width (FitImage); the trainer
  // stores the same in the model so queries are fitted alike.
  ResizePolicy resize = ResizePolicy::kStretch;
  Rgb background = {0, 0, 0};
  // true when `sources` are the paths of the image files (image folders):
  // the bundle export re-reads them to store the user's own pictures.
  bool sources_are_files = false;
  std::vector<uint8_t> pixels;  // size() * image_bytes() bytes.
  std::vector<int32_t> labels;  // One per image, in [0, label_names.size()).
  std::vector<std::string> label_names;  // Index = label.
  std::vector<std::string>
      sources;  // One per image: "idx:train:17" or a file path.

  size_t size() const { return labels.size(); }
  size_t image_bytes() const {
    return static_cast<size_t>(height) * width * channels;
  }
  const uint8_t* image(size_t i) const {
    return pixels.data() + i * image_bytes();
  }
  Image GetImage(size_t i) const;  // A copy (channels as stored).
  // Heap bytes held (pixels, labels, sources, names; strings counted by
  // capacity beyond libstdc++'s 15-byte inline buffer): what loading costs.
  size_t MemoryBytes() const;
  // The input spec the pixels were fitted to (mean/std left at defaults).
  InputSpec FittedSpec() const;
  // The images at `indices`, in that order (repeats allowed), with the same
  // label names, shape and fitting. Every index must be < size() (checked;
  // aborts otherwise).
  Dataset Subset(const std::vector<size_t>& indices) const;
  // The first `n` images of each label (every image of a label with fewer),
  // in dataset order: a small balanced subset for tests and evaluation.
  Dataset FirstPerLabel(size_t n) const;
};

// The preprocessing a model trained on `train` needs: its fitting (resize
// policy, background) and the per-channel mean and std of its pixels
// (MeasureChannelStats). For image folders; Fashion-MNIST models keep the
// published constants (the Preprocessing defaults).
Preprocessing MeasuredPreprocessing(const Dataset& train);

// The picture a gallery stores for image `i` (PNG): for datasets read from
// files (sources_are_files) the file itself, decoded and re-encoded with
// its own channels (alpha kept), shrunk so its longer side is at most
// `max_side` (<= 0: full size); otherwise the held pixels (Fashion-MNIST's
// 28x28 gray). Errors: those of reading and decoding, naming the file.
absl::StatusOr<std::string> StoredPicture(const Dataset& data, size_t i,
                                          int max_side,
                                          const DecodeLimits& limits = {});

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
  int height = 28;  // default: every image is fitted to 28x28
  int width = 28;
  // 1 (gray), 3 (RGB) or 0 (default): 3 if any image has colour (a pixel
  // whose R, G and B differ by more than kColourTolerance), else 1. Gray
  // files in an RGB set are replicated, colour files in a gray set
  // converted (FitImage).
  int channels = 0;
  static constexpr int kColourTolerance = 12;  // JPEG chroma noise of gray
  // default: shorter side to size then centre crop (no distortion).
  ResizePolicy resize = ResizePolicy::kShorterSideCentreCrop;
  Rgb background = {255, 255, 255};  // default: white under transparency
  DecodeLimits limits;
};

// ROOT/<label name>/*.png|jpg|jpeg|pgm; labels in sorted label-name order,
// files in sorted order. Each file is decoded and fitted (FitImage) one at
// a time, so memory is the fitted size (Dataset::MemoryBytes), never the
// files' full-size pixels. Unreadable images are an error naming the file;
// InvalidArgument for bad options.
absl::StatusOr<Dataset> LoadImageFolder(const std::string& root,
                                        const ImageFolderOptions& options = {});

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_DATA_DATASET_H_
