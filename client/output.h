// Plain-text tables for the CLI's output; its JSON is core/util/json.h.
#ifndef EMBEDSEARCH_CLIENT_OUTPUT_H_
#define EMBEDSEARCH_CLIENT_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/util/json.h"

namespace embedsearch {

// Columns padded to their widest cell; `right_aligned[i]` for numbers.
// The header is underlined with dashes.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& right_aligned);

// A number for --json output, kept to 9 significant digits (a float's
// precision); NaN and infinities print as null (JSON has no spelling).
double JsonNumber(double v);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CLIENT_OUTPUT_H_
