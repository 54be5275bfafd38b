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

}  // namespace

absl::StatusOr<Dataset> LoadImageFolder(const std::string& root,
                                        const ImageFolderOptions& options) {
  if (options.height <= 0 || options.width <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoadImageFolder: bad target size ", options.width, "x",
                     options.height));
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
  const size_t n = static_cast<size_t>(options.height) * options.width;
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
      Image gray = Resize(ToGrayscale(*decoded), options.width, options.height);
      data.pixels.insert(data.pixels.end(), gray.pixels.begin(),
                         gray.pixels.begin() + n);
      data.labels.push_back(label);
      data.sources.push_back(path);
    }
  }
  if (data.labels.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LoadImageFolder: no .png/.jpg/.jpeg/.pgm files under ", root));
  }
  return data;
}

}  // namespace embedsearch
