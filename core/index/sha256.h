// SHA-256 (FIPS 180-4) for bundle checksums; small and dependency-free.
#ifndef EMBEDSEARCH_CORE_INDEX_SHA256_H_
#define EMBEDSEARCH_CORE_INDEX_SHA256_H_

#include <string>

#include "absl/strings/string_view.h"

namespace embedsearch {

// Lower-case hex digest of `data` (64 characters).
std::string Sha256Hex(absl::string_view data);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_SHA256_H_
