#include "server/bundle_path.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace embedsearch {
namespace {

absl::StatusOr<std::string> RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return absl::NotFoundError(
          absl::StrCat("bundle path \"", path, "\" does not exist"));
    }
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot resolve bundle path \"", path, "\": ", strerror(err)));
  }
  return std::string(buf);
}

}  // namespace

absl::StatusOr<std::string> ResolveBundlePath(
    const std::string& path, const std::vector<std::string>& roots) {
  if (path.empty()) {
    return absl::InvalidArgumentError("bundle_path is empty");
  }
  if (roots.empty()) {
    return absl::PermissionDeniedError(
        "Reload is disabled: start the server with --allowed_bundle_roots "
        "naming the directories bundles may be loaded from");
  }
  absl::StatusOr<std::string> resolved = RealPath(path);
  if (!resolved.ok()) return resolved.status();
  std::vector<std::string> canonical_roots;
  for (const std::string& root : roots) {
    absl::StatusOr<std::string> r = RealPath(root);
    if (!r.ok()) continue;  // A missing root allows nothing.
    if (*resolved == *r || *r == "/" ||
        absl::StartsWith(*resolved, absl::StrCat(*r, "/"))) {
      return *resolved;
    }
    canonical_roots.push_back(*r);
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "bundle path \"", path, "\" resolves to \"", *resolved,
      "\", which is outside the allowed bundle roots [",
      absl::StrJoin(canonical_roots, ", "), "]"));
}

}  // namespace embedsearch
