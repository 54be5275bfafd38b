// Plain-text tables and a minimal JSON writer for the CLI's output.
#ifndef EMBEDSEARCH_CLIENT_OUTPUT_H_
#define EMBEDSEARCH_CLIENT_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace embedsearch {

// Columns padded to their widest cell; `right_aligned[i]` for numbers.
// The header is underlined with dashes.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& right_aligned);

// A JSON string literal (quotes included), escaping per RFC 8259.
std::string JsonString(absl::string_view s);
// A JSON number; NaN and infinities become null (JSON has no spelling).
std::string JsonNumber(double v);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CLIENT_OUTPUT_H_
