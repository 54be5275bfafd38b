// The searchable gallery: a Catalog (durable) plus a VectorIndex (derived).
//
// Writes go to the catalog first (committed, fsynced), then to the index;
// a crash between the two is repaired on open because the index is rebuilt
// from the catalog whenever it does not match it. Thread-safe.
#ifndef EMBEDSEARCH_CORE_INDEX_GALLERY_H_
#define EMBEDSEARCH_CORE_INDEX_GALLERY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/index/catalog.h"
#include "core/index/vector_index.h"

namespace embedsearch {

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
  int nprobe = 0;
  int ef_search = 0;
  std::vector<std::string> label_filter;  // Unknown names: InvalidArgument.
  bool include_images = false;
};

class Gallery {
 public:
  // Opens catalog.db and index.faiss in `dir`. If index.faiss is missing,
  // unreadable or its size differs from the catalog, it is rebuilt from the
  // catalog with `index_spec`/`metric`.
  static absl::StatusOr<std::unique_ptr<Gallery>> Open(
      const std::string& dir, int dim, const std::string& index_spec,
      const std::string& metric);
  ~Gallery();

  absl::StatusOr<std::vector<int64_t>> Add(std::vector<CatalogItem> items);
  absl::StatusOr<int64_t> Remove(const std::vector<int64_t>& ids);
  // queries: n * dim floats.
  absl::StatusOr<std::vector<std::vector<GalleryHit>>> Search(
      const float* queries, int64_t n, const GallerySearchOptions& options) const;
  absl::StatusOr<CatalogItem> Get(int64_t id) const;
  int64_t size() const;
  int dim() const;
  std::vector<std::string> label_names() const;
  const std::string& index_spec() const;
  const std::string& metric() const;
  // Persists index.faiss (atomically) so the next open needs no rebuild.
  absl::Status SaveIndex() const;

 private:
  Gallery();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_GALLERY_H_
