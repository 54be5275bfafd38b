// Dataset accessors and the Fashion-MNIST loader.
#include "core/data/dataset.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace embedsearch {

Image Dataset::GetImage(size_t i) const {
  Image out;
  out.width = width;
  out.height = height;
  out.channels = channels;
  out.pixels.assign(image(i), image(i) + image_bytes());
  return out;
}

size_t Dataset::MemoryBytes() const {
  size_t bytes =
      pixels.capacity() + labels.capacity() * sizeof(int32_t) +
      (sources.capacity() + label_names.capacity()) * sizeof(std::string);
  for (const std::string& s : sources)
    bytes += s.capacity() > 15 ? s.capacity() + 1 : 0;
  for (const std::string& s : label_names)
    bytes += s.capacity() > 15 ? s.capacity() + 1 : 0;
  return bytes;
}

InputSpec Dataset::FittedSpec() const {
  InputSpec spec;
  spec.height = height;
  spec.width = width;
  spec.channels = channels;
  spec.preprocessing.resize = resize;
  spec.preprocessing.background = background;
  return spec;
}

Dataset Dataset::Subset(const std::vector<size_t>& indices) const {
  Dataset out;
  out.height = height;
  out.width = width;
  out.channels = channels;
  out.resize = resize;
  out.background = background;
  out.sources_are_files = sources_are_files;
  out.label_names = label_names;
  const size_t n = image_bytes();
  out.pixels.reserve(indices.size() * n);
  out.labels.reserve(indices.size());
  out.sources.reserve(indices.size());
  for (size_t i : indices) {
    if (i >= size()) {  // A caller bug, not a data error.
      std::fprintf(stderr,
                   "Dataset::Subset: index %zu out of range (size %zu)\n", i,
                   size());
      std::abort();
    }
    out.pixels.insert(out.pixels.end(), image(i), image(i) + n);
    out.labels.push_back(labels[i]);
    out.sources.push_back(i < sources.size() ? sources[i] : std::string());
  }
  return out;
}

Dataset Dataset::FirstPerLabel(size_t n) const {
  std::vector<size_t> taken(label_names.size(), 0);
  std::vector<size_t> indices;
  for (size_t i = 0; i < size(); ++i) {
    const size_t label = static_cast<size_t>(labels[i]);
    if (label >= taken.size()) taken.resize(label + 1, 0);
    if (taken[label] < n) {
      ++taken[label];
      indices.push_back(i);
    }
  }
  return Subset(indices);
}

Preprocessing MeasuredPreprocessing(const Dataset& train) {
  Preprocessing p;
  p.resize = train.resize;
  p.background = train.background;
  MeasureChannelStats(train.pixels.data(), train.size(),
                      static_cast<size_t>(train.height) * train.width,
                      train.channels, &p);
  return p;
}

const std::vector<std::string>& FashionMnistLabelNames() {
  static const auto* names = new std::vector<std::string>{
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return *names;
}

namespace {

// DIR/NAME.gz, else DIR/NAME; NotFound naming both.
absl::StatusOr<std::string> FindIdx(const std::string& dir,
                                    const std::string& name) {
  std::error_code ec;
  for (const std::string& candidate :
       {dir + "/" + name + ".gz", dir + "/" + name}) {
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("Fashion-MNIST: neither ", dir, "/",
                                          name, ".gz nor ", dir, "/", name,
                                          " exists"));
}

}  // namespace

absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir,
                                         const std::string& split) {
  if (split != "train" && split != "t10k") {
    return absl::InvalidArgumentError(absl::StrCat(
        "Fashion-MNIST: split must be \"train\" or \"t10k\", got \"", split,
        "\""));
  }
  ASSIGN_OR_RETURN(std::string images_path,
                   FindIdx(dir, split + "-images-idx3-ubyte"));
  ASSIGN_OR_RETURN(std::string labels_path,
                   FindIdx(dir, split + "-labels-idx1-ubyte"));
  ASSIGN_OR_RETURN(IdxArray images, ReadIdxFile(images_path));
  ASSIGN_OR_RETURN(IdxArray labels, ReadIdxFile(labels_path));
  if (images.dims.size() != 3) {
    return absl::DataLossError(
        absl::StrCat(images_path, ": expected 3 dims (n, rows, cols), got ",
                     images.dims.size()));
  }
  if (labels.dims.size() != 1) {
    return absl::DataLossError(absl::StrCat(
        labels_path, ": expected 1 dim (n), got ", labels.dims.size()));
  }
  if (images.dims[0] != labels.dims[0]) {
    return absl::InvalidArgumentError(
        absl::StrCat("Fashion-MNIST ", split, ": ", images.dims[0],
                     " images but ", labels.dims[0], " labels"));
  }
  if (images.dims[1] == 0 || images.dims[2] == 0) {
    return absl::DataLossError(absl::StrCat(images_path, ": empty images (",
                                            images.dims[1], "x", images.dims[2],
                                            ")"));
  }
  const auto& names = FashionMnistLabelNames();
  Dataset data;
  data.height = static_cast<int>(images.dims[1]);
  data.width = static_cast<int>(images.dims[2]);
  data.pixels = std::move(images.data);
  data.label_names = names;
  const size_t n = labels.dims[0];
  data.labels.resize(n);
  data.sources.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (labels.data[i] >= names.size()) {
      return absl::DataLossError(absl::StrCat(labels_path, ": label ",
                                              labels.data[i], " of image ", i,
                                              " is not in [0, 10)"));
    }
    data.labels[i] = labels.data[i];
    data.sources[i] = absl::StrCat("idx:", split, ":", i);
  }
  return data;
}

}  // namespace embedsearch
