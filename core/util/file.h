// Small file helpers with durability semantics spelled out.
#ifndef EMBEDSEARCH_CORE_UTIL_FILE_H_
#define EMBEDSEARCH_CORE_UTIL_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedsearch {

// Whole file into memory. NotFound if missing; `max_bytes` guards against
// reading something absurd (default: 2 GiB).
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     size_t max_bytes = size_t{2} << 30);

// Writes `path.tmp-XXXX`, fsyncs it, renames it over `path` and fsyncs the
// directory: after OK the new content survives a crash, and a crash before
// OK leaves the old file (or none) in place, never a torn one.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents);

// fsync of a directory (makes renames and creations inside it durable).
absl::Status SyncDirectory(const std::string& dir);

// Status from errno with the path and operation in the message.
absl::Status ErrnoStatus(int err, absl::string_view op, absl::string_view path);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_UTIL_FILE_H_
