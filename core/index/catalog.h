// The gallery's durable source of truth: a SQLite file.
//
// Schema (PRAGMA user_version = kCatalogSchemaVersion):
//   items(id INTEGER PRIMARY KEY AUTOINCREMENT, label INTEGER, source TEXT,
//         image_png BLOB, embedding BLOB (dim floats, little-endian),
//         model_version TEXT)
//   labels(label INTEGER PRIMARY KEY, name TEXT UNIQUE)
//   meta(key TEXT PRIMARY KEY, value TEXT)   -- "dim"
// Ids are never reused (AUTOINCREMENT), so a removed id stays unknown.
// WAL mode with synchronous=FULL, one transaction per Add/Remove: once
// Add/Remove returns OK the change survives kill -9 and power loss; a call
// that fails or is interrupted changes nothing.
// Thread-safe (one connection guarded by a mutex). Several processes may
// open the same file (WAL readers never block; writers wait up to the busy
// timeout).
#ifndef EMBEDSEARCH_CORE_INDEX_CATALOG_H_
#define EMBEDSEARCH_CORE_INDEX_CATALOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/index/catalog_store.h"

namespace embedsearch {

inline constexpr int kCatalogSchemaVersion = 1;

// The SQLite implementation of CatalogStore (catalog_store.h has the
// contract of the methods it shares).
class Catalog : public CatalogStore {
 public:
  // Creates the file and schema if missing. `dim` (> 0) is stored on
  // creation and must match the stored one on reopen (InvalidArgument
  // otherwise); every Add checks embeddings against it. DataLoss when the
  // file is not a SQLite database or not a catalog; FailedPrecondition when
  // its schema version is newer than this build.
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& path,
                                                       int dim);
  // Read-only: never creates or writes (validation of a bundle, serving
  // from a read-only directory). The dim is read from the file and, when
  // `expected_dim` > 0, must match it (InvalidArgument, as for Open). Every
  // mutation returns FailedPrecondition.
  static absl::StatusOr<std::unique_ptr<Catalog>> OpenReadOnly(
      const std::string& path, int expected_dim = 0);
  ~Catalog() override;
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // One transaction; assigns ids to items whose id is 0 and returns all ids
  // in order (an explicit id that exists already: AlreadyExists, nothing
  // added). Labels: a non-empty label_name names the label (a name seen for
  // the first time gets the next free label number; `label` is ignored); an
  // empty label_name takes the name of the existing `label`
  // (InvalidArgument if that label has no name). Embeddings must have dim
  // finite floats (InvalidArgument otherwise).
  absl::StatusOr<std::vector<int64_t>> Add(
      std::vector<CatalogItem> items) override;
  // Registers names[i] as label i (one transaction). Labels that exist
  // already must carry the same name (InvalidArgument otherwise). Used by
  // bundle writers so that catalog labels equal dataset labels.
  absl::Status DefineLabels(const std::vector<std::string>& names) override;
  // One transaction. Returns how many of `ids` existed.
  absl::StatusOr<int64_t> Remove(const std::vector<int64_t>& ids) override;
  // NotFound for an unknown id.
  absl::StatusOr<CatalogItem> Get(int64_t id,
                                  bool with_image = true) const override;
  // Items for many ids under one lock, in order; unknown ids give an item
  // with id 0 (so a concurrently removed hit can be skipped). No embeddings.
  absl::StatusOr<std::vector<CatalogItem>> GetMany(
      const std::vector<int64_t>& ids, bool with_image) const override;
  absl::StatusOr<int64_t> Count() const override;
  // All ids, ascending.
  absl::StatusOr<std::vector<int64_t>> Ids() const override;
  // Label names indexed by label (a gap in label numbers gives "").
  absl::StatusOr<std::vector<std::string>> LabelNames() const override;
  // Every item, ordered by id, with its embedding (and image when asked).
  // `fn` must not call back into this catalog.
  absl::Status ForEach(const std::function<void(const CatalogItem&)>& fn,
                       bool with_image = false) const override;
  // PRAGMA integrity_check plus the schema (tables, version, dim):
  // DataLoss with SQLite's first complaint when it fails.
  absl::Status CheckIntegrity() const override;
  int dim() const override;
  const std::string& path() const;
  std::string description() const override { return path(); }

 private:
  Catalog();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_CATALOG_H_
