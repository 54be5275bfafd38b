// Where Reload may load bundles from.
#ifndef EMBEDSEARCH_SERVER_BUNDLE_PATH_H_
#define EMBEDSEARCH_SERVER_BUNDLE_PATH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace embedsearch {

// Resolves `path` (symlinks, "..", ".") to a canonical absolute directory and
// checks that it lies inside one of `roots` (also canonicalised), so a
// caller of Reload cannot point the server at /etc or walk out of the
// bundle directory with "../..". Errors: INVALID_ARGUMENT (empty path),
// NOT_FOUND (path missing), PERMISSION_DENIED (no roots configured, or
// outside every root).
absl::StatusOr<std::string> ResolveBundlePath(
    const std::string& path, const std::vector<std::string>& roots);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_BUNDLE_PATH_H_
