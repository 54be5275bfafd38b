// The searchable gallery: a Catalog (durable) plus a VectorIndex (derived).
//
// Files in `dir`: catalog.db (the truth) and index.faiss (a cache of the
// index). Writes go to the catalog first (committed, fsynced), then to the
// index; a crash between the two is repaired on open because the index is
// rebuilt from the catalog whenever it does not match it (missing,
// unreadable, other spec/metric/dim, or other ids). An index that fell back
// to Flat because the catalog was too small to train the spec (see
// vector_index.h) is kept while it matches; the first rebuild after the
// catalog changed trains the requested spec again.
// Thread-safe: searches run concurrently with each other and with
// Add/Remove (writers are serialized among themselves). A hit whose item is
// removed between the index lookup and the catalog read is dropped.
//
// Shared catalogs (OpenShared, PostgreSQL): there is no directory and no
// index file. The index is built from one snapshot of the catalog, then a
// follower thread applies the catalog's change feed (woken by its
// notifications, polling every ReplicationOptions::poll_interval), so
// writes made through other replicas appear here within about one poll
// interval; writes made through this gallery are searchable when Add
// returns. While the catalog is unreachable, searches keep answering from
// memory (without images) and Add/Remove fail with Unavailable.
#ifndef EMBEDSEARCH_CORE_INDEX_GALLERY_H_
#define EMBEDSEARCH_CORE_INDEX_GALLERY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/index/catalog.h"
#include "core/index/vector_index.h"

namespace embedsearch {

inline constexpr char kCatalogFile[] = "catalog.db";
inline constexpr char kIndexFile[] = "index.faiss";

struct GalleryHit {
  int64_t id = 0;
  float distance = 0;
  int32_t label = 0;
  std::string label_name;
  std::string source;
  std::string image_png;  // Only when requested.
};

struct GallerySearchOptions {
  int k = 10;
  int nprobe = 0;     // 0: index default
  int ef_search = 0;  // 0: index default
  std::vector<std::string> label_filter;  // Unknown names: InvalidArgument.
  bool include_images = false;
  // If set, Search adds how long the vector index and the catalog read took
  // (the server's per-stage metrics). Not owned; default: not measured.
  struct Times {
    absl::Duration index;
    absl::Duration catalog;
  };
  Times* times = nullptr;
};

struct ReplicationOptions {
  // Longest wait for a change notification before polling the change log
  // anyway (bounds the lag when a notification is lost).
  absl::Duration poll_interval = absl::Milliseconds(500);  // default: 0.5 s
  int batch = 1000;  // default: changes read per query
};

// Where a shared gallery's follower is (all zero for a private catalog).
struct ReplicationStatus {
  bool shared = false;
  int64_t applied_sequence = 0;  // Last change applied to the index.
  // Commit-to-apply delay of the last applied change.
  absl::Duration lag = absl::ZeroDuration();
  bool catalog_reachable = true;  // The last poll of the catalog worked.
  std::string last_error;         // Why it did not ("" when it did).
};

class Gallery {
 public:
  // Opens (creating `dir` and the catalog if missing) catalog.db and
  // index.faiss in `dir`. A `dir` the process cannot write is opened
  // read-only: Add and Remove return FailedPrecondition, nothing is saved. If index.faiss is missing, unreadable or does not
  // match the catalog, it is rebuilt from the catalog with
  // `index_spec`/`metric` and saved (a failed save is only a warning).
  static absl::StatusOr<std::unique_ptr<Gallery>> Open(
      const std::string& dir, int dim, const std::string& index_spec,
      const std::string& metric, const VectorIndexOptions& index_options = {});
  // Opens a gallery over a shared catalog that has a change feed
  // (catalog->change_feed() != nullptr; InvalidArgument otherwise): builds
  // the index from a snapshot and starts following the feed. The dim is
  // the catalog's.
  static absl::StatusOr<std::unique_ptr<Gallery>> OpenShared(
      std::unique_ptr<CatalogStore> catalog, const std::string& index_spec,
      const std::string& metric, const VectorIndexOptions& index_options = {},
      const ReplicationOptions& replication = {});
  ~Gallery();  // Stops the follower (if any) first.
  Gallery(const Gallery&) = delete;
  Gallery& operator=(const Gallery&) = delete;

  // Ids in order. Durable when OK. If the catalog commit succeeds but the
  // index update fails (only on internal FAISS errors), Internal is
  // returned; the items are stored and the next Open indexes them.
  absl::StatusOr<std::vector<int64_t>> Add(std::vector<CatalogItem> items);
  // How many of `ids` existed. Durable when OK.
  absl::StatusOr<int64_t> Remove(const std::vector<int64_t>& ids);
  // queries: n * dim floats. InvalidArgument for k <= 0, non-finite
  // values or an unknown label name (the message names it).
  absl::StatusOr<std::vector<std::vector<GalleryHit>>> Search(
      const float* queries, int64_t n, const GallerySearchOptions& options) const;
  // NotFound for an unknown id. With image and embedding.
  absl::StatusOr<CatalogItem> Get(int64_t id) const;
  int64_t size() const;
  int dim() const;
  std::vector<std::string> label_names() const;
  const std::string& index_spec() const;
  const std::string& metric() const;
  const std::string& dir() const;
  // True when `dir` was not writable at Open (see Open).
  bool read_only() const;
  // Why the last Open rebuilt the index ("" when index.faiss was used).
  const std::string& rebuild_reason() const;
  ReplicationStatus replication() const;
  // Where the catalog lives (a path, or a PostgreSQL description without
  // password).
  std::string catalog_description() const;
  // Persists index.faiss (atomically) so the next open needs no rebuild.
  absl::Status SaveIndex() const;

 private:
  Gallery();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_GALLERY_H_
