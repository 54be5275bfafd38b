// SHA-256 for bundle checksums, computed by OpenSSL's EVP digest (libcrypto,
// which gRPC already loads). Thread-safe: no shared state.
#ifndef EMBEDSEARCH_CORE_INDEX_SHA256_H_
#define EMBEDSEARCH_CORE_INDEX_SHA256_H_

#include <string>

#include "absl/strings/string_view.h"

namespace embedsearch {

// Lower-case hex digest of `data` (64 characters). Aborts only if libcrypto
// cannot allocate a digest context (out of memory).
std::string Sha256Hex(absl::string_view data);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_SHA256_H_
