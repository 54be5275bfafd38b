#include "client/result_sheet.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace embedsearch {

std::string HitCaption(const embedsearch::v1::Hit& hit) {
  return absl::StrFormat("%s\nd=%.4f", hit.label_name(), hit.distance());
}

absl::StatusOr<Image> ComposeResultSheet(const std::vector<ResultRow>& rows,
                                         const ContactSheetOptions& options) {
  std::vector<std::vector<SheetCell>> cells;
  for (const ResultRow& row : rows) {
    std::vector<SheetCell> line;
    SheetCell query;
    query.image = row.query;
    query.caption = absl::StrCat("query\n", row.query_caption);
    query.highlight = true;
    line.push_back(std::move(query));
    for (const embedsearch::v1::Hit& hit : row.response.hits()) {
      SheetCell cell;
      if (hit.image_png().empty()) {
        cell.image.width = cell.image.height = 1;
        cell.image.channels = 1;
        cell.image.pixels = {128};
      } else {
        absl::StatusOr<Image> image = DecodeImage(hit.image_png());
        if (!image.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("image of hit ", hit.id(),
                           " does not decode: ", image.status().message()));
        }
        cell.image = *std::move(image);
      }
      cell.caption = HitCaption(hit);
      line.push_back(std::move(cell));
    }
    cells.push_back(std::move(line));
  }
  return ComposeContactSheet(cells, options);
}

}  // namespace embedsearch
