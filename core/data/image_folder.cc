// ROOT/<label name>/<image files>: the layout users bring their own pictures
// in.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/data/dataset.h"
#include "core/util/file.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

namespace fs = std::filesystem;

bool IsImageFile(const fs::path& path) {
  const std::string ext = absl::AsciiStrToLower(path.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".pgm";
}

bool IsHidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

bool HasColour(const Image& rgb) {
  for (size_t i = 0; i + 2 < rgb.pixels.size(); i += 3) {
    const int r = rgb.pixels[i], g = rgb.pixels[i + 1], b = rgb.pixels[i + 2];
    const int spread = std::max({r, g, b}) - std::min({r, g, b});
    if (spread > ImageFolderOptions::kColourTolerance) return true;
  }
  return false;
}

// Fitted pixels as they are loaded. With channels = 0 both an RGB and a
// gray copy are kept (the gray one a third of the size) until the first
// colour image settles the question, so no file is decoded twice.
class FittedPixels {
 public:
  explicit FittedPixels(const ImageFolderOptions& options)
      : channels_(options.channels) {
    spec_.height = options.height;
    spec_.width = options.width;
    spec_.preprocessing.resize = options.resize;
    spec_.preprocessing.background = options.background;
  }

  absl::Status Add(const Image& decoded) {
    if (channels_ != 1) {
      ASSIGN_OR_RETURN(Image rgb, Fit(decoded, 3));
      rgb_.insert(rgb_.end(), rgb.pixels.begin(), rgb.pixels.end());
      if (channels_ == 0 && HasColour(rgb)) {
        channels_ = 3;
        std::vector<uint8_t>().swap(gray_);
      }
    }
    if (channels_ != 3) {
      ASSIGN_OR_RETURN(Image gray, Fit(decoded, 1));
      gray_.insert(gray_.end(), gray.pixels.begin(), gray.pixels.end());
    }
    return absl::OkStatus();
  }

  // Moves the pixels into `data` and sets its shape.
  void MoveTo(Dataset* data) {
    data->channels = channels_ == 3 ? 3 : 1;
    data->pixels = channels_ == 3 ? std::move(rgb_) : std::move(gray_);
    data->pixels.shrink_to_fit();
    rgb_.clear();
    gray_.clear();
  }

 private:
  absl::StatusOr<Image> Fit(const Image& decoded, int channels) {
    spec_.channels = channels;
    return FitImage(decoded, spec_);
  }

  int channels_;  // 0 while undecided
  InputSpec spec_;
  std::vector<uint8_t> rgb_, gray_;
};

}  // namespace

absl::StatusOr<Dataset> LoadImageFolder(const std::string& root,
                                        const ImageFolderOptions& options) {
  if (options.height <= 0 || options.width <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoadImageFolder: bad target size ", options.width, "x",
                     options.height));
  }
  if (options.channels != 0 && options.channels != 1 && options.channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat("LoadImageFolder: channels ",
                                                   options.channels,
                                                   " (want 0 = auto, 1 or 3)"));
  }
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(
        absl::StrCat("LoadImageFolder: ", root, " is not a directory"));
  }
  std::vector<fs::path> label_dirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_directory(ec) && !IsHidden(it->path())) {
      label_dirs.push_back(it->path());
    }
  }
  if (ec) return ErrnoStatus(ec.value(), "list", root);
  std::sort(label_dirs.begin(), label_dirs.end());
  if (label_dirs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LoadImageFolder: ", root, " has no label subdirectories (want ", root,
        "/<label>/*.png|jpg|jpeg|pgm)"));
  }

  Dataset data;
  data.height = options.height;
  data.width = options.width;
  data.resize = options.resize;
  data.background = options.background;
  data.sources_are_files = true;
  FittedPixels fitted(options);
  for (const fs::path& dir : label_dirs) {
    const int32_t label = static_cast<int32_t>(data.label_names.size());
    data.label_names.push_back(dir.filename().string());
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->is_regular_file(ec) && !IsHidden(it->path()) &&
          IsImageFile(it->path())) {
        files.push_back(it->path());
      }
    }
    if (ec) return ErrnoStatus(ec.value(), "list", dir.string());
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      const std::string path = file.string();
      auto bytes = ReadFile(path, size_t{256} << 20);
      if (!bytes.ok()) return bytes.status();
      auto decoded = DecodeImage(*bytes, options.limits);
      if (!decoded.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": ", decoded.status().message()));
      }
      if (absl::Status s = fitted.Add(*decoded); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": ", s.message()));
      }
      data.labels.push_back(label);
      data.sources.push_back(path);
    }
  }
  fitted.MoveTo(&data);
  if (data.labels.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LoadImageFolder: no .png/.jpg/.jpeg/.pgm files under ", root));
  }
  return data;
}

absl::StatusOr<std::string> StoredPicture(const Dataset& data, size_t i,
                                          int max_side,
                                          const DecodeLimits& limits) {
  if (!data.sources_are_files || i >= data.sources.size()) {
    return EncodePng(data.GetImage(i));
  }
  const std::string& path = data.sources[i];
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, size_t{256} << 20));
  absl::StatusOr<Image> decoded = DecodeImage(bytes, limits);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", decoded.status().message()));
  }
  return EncodePng(BoundImage(*decoded, max_side));
}

}  // namespace embedsearch
