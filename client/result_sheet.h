// Contact sheet of search results: one row per query, the query first
// (highlighted), then its hits captioned with label name and distance.
#ifndef EMBEDSEARCH_CLIENT_RESULT_SHEET_H_
#define EMBEDSEARCH_CLIENT_RESULT_SHEET_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/image/contact_sheet.h"
#include "core/image/image.h"
#include "embedsearch/v1/search.pb.h"

namespace embedsearch {

struct ResultRow {
  Image query;                        // decoded query image
  std::string query_caption;          // e.g. the file name
  embedsearch::v1::SearchResponse response;  // hits with image_png
};

// Hits without image_png (include_images was off) get a blank cell. Errors:
// a hit whose PNG does not decode (InvalidArgument, naming the id).
absl::StatusOr<Image> ComposeResultSheet(
    const std::vector<ResultRow>& rows,
    const ContactSheetOptions& options = {});

// The caption of a hit cell: "<label name>\nd=<distance>".
std::string HitCaption(const embedsearch::v1::Hit& hit);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CLIENT_RESULT_SHEET_H_
