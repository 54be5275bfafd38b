// The gallery's durable source of truth: a SQLite file.
//
// Schema (one row per image): id INTEGER PRIMARY KEY, label INTEGER,
// label_name TEXT, source TEXT, image_png BLOB, embedding BLOB (dim floats,
// little-endian), model_version TEXT. WAL mode with synchronous=FULL: once
// Add/Remove returns OK the change survives kill -9 and power loss.
// Thread-safe (one connection guarded by a mutex).
#ifndef EMBEDSEARCH_CORE_INDEX_CATALOG_H_
#define EMBEDSEARCH_CORE_INDEX_CATALOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace embedsearch {

struct CatalogItem {
  int64_t id = 0;  // Assigned by the catalog on Add when 0.
  int32_t label = 0;
  std::string label_name;
  std::string source;
  std::string image_png;
  std::vector<float> embedding;
  std::string model_version;
};

class Catalog {
 public:
  // Creates the file and schema if missing. `dim` is checked on every add.
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& path,
                                                       int dim);
  // Read-only: never creates or writes (for validation of a bundle).
  static absl::StatusOr<std::unique_ptr<Catalog>> OpenReadOnly(
      const std::string& path);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // One transaction; assigns ids to items whose id is 0 and returns all ids
  // in order. A label_name seen for the first time gets the next label.
  absl::StatusOr<std::vector<int64_t>> Add(std::vector<CatalogItem> items);
  // Returns how many of `ids` existed.
  absl::StatusOr<int64_t> Remove(const std::vector<int64_t>& ids);
  // NotFound for an unknown id.
  absl::StatusOr<CatalogItem> Get(int64_t id, bool with_image = true) const;
  absl::StatusOr<int64_t> Count() const;
  // Label names indexed by label.
  absl::StatusOr<std::vector<std::string>> LabelNames() const;
  // Every (id, embedding) pair, for building the index; ordered by id.
  absl::Status ForEach(
      const std::function<void(const CatalogItem&)>& fn,
      bool with_image = false) const;
  // PRAGMA integrity_check.
  absl::Status CheckIntegrity() const;

 private:
  Catalog();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_CATALOG_H_
