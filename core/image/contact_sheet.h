// A grid of images with captions, for looking at search results.
#ifndef EMBEDSEARCH_CORE_IMAGE_CONTACT_SHEET_H_
#define EMBEDSEARCH_CORE_IMAGE_CONTACT_SHEET_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/image/image.h"

namespace embedsearch {

struct SheetCell {
  Image image;             // Any size; scaled to the cell.
  std::string caption;     // Printable ASCII; clipped to the cell width.
  bool highlight = false;  // Draw a coloured frame (e.g. the query).
};

struct ContactSheetOptions {
  int cell_size = 112;    // default: 112 px square image area per cell
  int caption_lines = 2;  // default: 2 text lines under each image
  int padding = 4;        // default: 4 px between cells
};

// Rows of cells (rows may differ in length). The result is RGB. The layout
// is deterministic: width = max_row_len * (cell_size + padding) + padding,
// height = rows * (cell_size + caption_height + padding) + padding, where
// caption_height = caption_lines * 10 + 2 (8x8 bitmap font, 2 px leading).
absl::StatusOr<Image> ComposeContactSheet(
    const std::vector<std::vector<SheetCell>>& rows,
    const ContactSheetOptions& options = {});

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_IMAGE_CONTACT_SHEET_H_
