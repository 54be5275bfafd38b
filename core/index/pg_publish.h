// Publishing a bundle's gallery into an empty PostgreSQL catalog, so that
// server replicas started with --catalog serve and write it together.
#ifndef EMBEDSEARCH_CORE_INDEX_PG_PUBLISH_H_
#define EMBEDSEARCH_CORE_INDEX_PG_PUBLISH_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace embedsearch {

struct PublishResult {
  int64_t items = 0;
  std::string model_version;
  std::string catalog;  // Description without password.
};

// Validates the bundle at `bundle_dir` (Bundle::Load), then copies its
// catalog.db (labels with their numbers, items with their ids, images and
// embeddings) into a new generation of the PostgreSQL catalog `dsn` (the
// schema of the bundle's model version, see pg_catalog.h) and registers
// it. The copy is batched (1000 items per transaction); replicas serve the
// generation only once it is registered, i.e. complete. Other generations
// are untouched (replicas keep serving them). FailedPrecondition when that
// generation already holds items; Unavailable when PostgreSQL cannot be
// reached.
absl::StatusOr<PublishResult> PublishBundle(const std::string& bundle_dir,
                                            const std::string& dsn);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_PG_PUBLISH_H_
