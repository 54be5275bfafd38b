// What the gallery needs from its durable store, whichever engine keeps it.
//
// Two implementations:
//   Catalog    (catalog.h)    a SQLite file in the bundle directory: one
//                             process, the embedded default.
//   PgCatalog  (pg_catalog.h) a PostgreSQL database shared by replicas; it
//                             also offers a ChangeFeed so every replica can
//                             follow the writes of the others.
// The contract below is the one both keep (tests/index/catalog_test.cc runs
// one parameterized suite against both).
//
// Thread safety: every method may be called from several threads at once.
// Error codes: InvalidArgument for bad items (wrong dim, non-finite
// values, unnamed unknown label), AlreadyExists for an explicit id that is
// taken, NotFound from Get for an unknown id, FailedPrecondition for a
// store opened read-only or data of another model version, Unavailable when
// the store's server cannot be reached (PostgreSQL only), DataLoss for a
// corrupt store.
#ifndef EMBEDSEARCH_CORE_INDEX_CATALOG_STORE_H_
#define EMBEDSEARCH_CORE_INDEX_CATALOG_STORE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

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

class ChangeFeed;

class CatalogStore {
 public:
  virtual ~CatalogStore() = default;

  // One transaction; assigns ids to items whose id is 0 and returns all ids
  // in order (an explicit id that exists already: AlreadyExists, nothing
  // added). Labels: a non-empty label_name names the label (a name seen for
  // the first time gets the next free label number; `label` is ignored); an
  // empty label_name takes the name of the existing `label`
  // (InvalidArgument if that label has no name). Embeddings must have dim
  // finite floats (InvalidArgument otherwise). Durable once OK.
  virtual absl::StatusOr<std::vector<int64_t>> Add(
      std::vector<CatalogItem> items) = 0;
  // Registers names[i] as label i (one transaction). Labels that exist
  // already must carry the same name (InvalidArgument otherwise).
  virtual absl::Status DefineLabels(const std::vector<std::string>& names) = 0;
  // One transaction. Returns how many of `ids` existed. Durable once OK.
  virtual absl::StatusOr<int64_t> Remove(const std::vector<int64_t>& ids) = 0;
  // NotFound for an unknown id.
  virtual absl::StatusOr<CatalogItem> Get(int64_t id,
                                          bool with_image = true) const = 0;
  // Items for many ids, in order; unknown ids give an item with id 0 (so a
  // concurrently removed hit can be skipped). No embeddings.
  virtual absl::StatusOr<std::vector<CatalogItem>> GetMany(
      const std::vector<int64_t>& ids, bool with_image) const = 0;
  virtual absl::StatusOr<int64_t> Count() const = 0;
  // All ids, ascending.
  virtual absl::StatusOr<std::vector<int64_t>> Ids() const = 0;
  // Label names indexed by label (a gap in label numbers gives "").
  virtual absl::StatusOr<std::vector<std::string>> LabelNames() const = 0;
  // Every item, ordered by id, with its embedding (and image when asked).
  // `fn` must not call back into this catalog.
  virtual absl::Status ForEach(
      const std::function<void(const CatalogItem&)>& fn,
      bool with_image = false) const = 0;
  // The engine's own consistency check plus the schema (tables, version,
  // dim): DataLoss naming the first complaint when it fails.
  virtual absl::Status CheckIntegrity() const = 0;
  virtual int dim() const = 0;
  // Where the catalog lives, safe to log: a file path, or a PostgreSQL
  // connection description without its password.
  virtual std::string description() const = 0;
  // The change feed other processes' writes arrive on, or nullptr when the
  // store has no other writers (SQLite: one process owns the bundle).
  virtual ChangeFeed* change_feed() { return nullptr; }
};

// One committed add or remove, in commit order.
struct CatalogChange {
  int64_t sequence = 0;  // Strictly increasing in commit order, no gaps.
  bool removed = false;
  // Adds: id, label, label_name, source and embedding (no image). An add
  // whose item was removed again by a later change has item.id == 0.
  // Removes: id only.
  int64_t id = 0;
  CatalogItem item;
  absl::Time committed_at;
};

// The log of committed changes of a shared catalog. Every write commits
// its change row in the same transaction as the data, so a reader that
// applies changes in sequence order after a snapshot sees every write once.
// Thread safety: Snapshot and ChangesAfter may be called from any thread;
// WaitForChanges from one thread at a time (the follower).
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  // Calls `fn` for every item (with embedding, no image) of one consistent
  // snapshot and returns the sequence of the last change it contains.
  virtual absl::StatusOr<int64_t> Snapshot(
      const std::function<void(const CatalogItem&)>& fn) = 0;
  // Up to `limit` changes with sequence > `after`, ascending.
  virtual absl::StatusOr<std::vector<CatalogChange>> ChangesAfter(
      int64_t after, int limit) = 0;
  // The newest committed sequence (0 before the first change).
  virtual absl::StatusOr<int64_t> LatestSequence() = 0;
  // Blocks until a change may have been committed (a notification came) or
  // `timeout` passed. Never fails: a lost connection is retried on the
  // next call, and callers poll ChangesAfter after every wake-up anyway.
  virtual void WaitForChanges(absl::Duration timeout) = 0;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_CATALOG_STORE_H_
