// A FAISS index whose ids are the catalog's ids.
//
// Any index_factory spec ("Flat", "HNSW32", "IVF256,Flat", "IVF256,PQ16",
// ...), metric "l2" (squared L2 distances) or "ip" (distance = -inner
// product, so smaller is nearer for both). Search parameters are per call
// (SearchParametersIVF / SearchParametersHNSW), never written into the
// shared index.
//
// Ids: FAISS sees dense "slots"; this class maps slot -> catalog id and
// label. Label filters and tombstones become one IDSelector over slots.
// Indexes whose search ignores selectors in FAISS 1.7.3 (IndexPQ, LSH,
// fast-scan) are searched with a growing k and filtered afterwards, so a
// filtered search is correct for every type. When a selective filter leaves
// an IVF/HNSW search short of k hits although enough matching vectors exist,
// the query is retried with 4x nprobe/efSearch (up to exhaustive).
//
// Removal works for every type: IVF removes from its inverted lists at once;
// the others (HNSW has no remove_ids) keep tombstones filtered out through
// the selector, and when tombstones pass `max_tombstone_fraction` of the
// slots the index is compacted (live vectors reconstructed, index reset and
// refilled; training is kept). For lossy storage (PQ, SQ) reconstruction
// re-encodes the decoded vectors, which reproduces the same codes.
//
// Training: IVF/PQ specs are trained on the vectors of the first Add. If
// FAISS cannot train on them (fewer points than IVF lists or PQ centroids),
// the index falls back to an exact "Flat" index and says why in
// fallback_reason(); the requested spec is kept and used at the next
// rebuild (Gallery rebuilds on open when the catalog changed). FAISS
// prints its own warning when there are fewer than 39 training points per
// centroid. So a gallery that starts empty and grows online with an IVF
// spec runs exact Flat search until its next open after growing.
//
// Thread-safe: searches take a shared lock, Add/Remove/Compact an exclusive
// one, so a search sees the old or the new state, never a mix. A Remove
// that triggers compaction of an HNSW index blocks searches while the graph
// is rebuilt (about as long as building it: see bench/results/index.md).
#ifndef EMBEDSEARCH_CORE_INDEX_VECTOR_INDEX_H_
#define EMBEDSEARCH_CORE_INDEX_VECTOR_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace embedsearch {

struct SearchParams {
  int k = 10;
  int nprobe = 0;     // 0: index default (IVF only; VectorIndexOptions)
  int ef_search = 0;  // 0: index default (HNSW only; VectorIndexOptions)
  // When non-empty, only ids whose label is in this set are returned.
  std::vector<int32_t> allowed_labels;
};

struct Neighbor {
  int64_t id = -1;
  float distance = 0;
};

struct VectorIndexOptions {
  int default_nprobe = 16;      // default: 16 of IVF256 (see bench/results/index.md)
  int default_ef_search = 64;   // default: 64 (FAISS's 16 loses recall at k=10)
  double max_tombstone_fraction = 0.1;  // default: compact at 10% removed
};

class VectorIndex {
 public:
  // Builds an empty index. InvalidArgument for a spec index_factory
  // rejects, a metric other than "l2"/"ip" or dim <= 0.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Create(
      const std::string& spec, const std::string& metric, int dim,
      const VectorIndexOptions& options = {});
  // Our container (magic, CRC32, id map, labels, FAISS blob). NotFound if
  // missing, DataLoss if truncated or corrupt.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Load(
      const std::string& path, const VectorIndexOptions& options = {});
  // Atomic (temp file + fsync + rename).
  absl::Status Save(const std::string& path) const;
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // `vectors` is n * dim floats; labels are kept for label-filtered search.
  // InvalidArgument for an id already present (nothing added).
  absl::Status Add(const float* vectors, const int64_t* ids,
                   const int32_t* labels, int64_t n);
  // Unknown ids are ignored.
  absl::Status Remove(const std::vector<int64_t>& ids);
  // Queries: n * dim floats; result[i] holds up to k neighbours, nearest first.
  absl::StatusOr<std::vector<std::vector<Neighbor>>> Search(
      const float* queries, int64_t n, const SearchParams& params) const;
  // Drops tombstones now (no-op for IVF and when there are none).
  absl::Status Compact();

  int64_t size() const;  // Live (non-removed) vectors.
  int64_t tombstones() const;
  // Live ids, ascending (to compare with the catalog).
  std::vector<int64_t> ids() const;
  int dim() const;
  const std::string& spec() const;    // As requested.
  const std::string& metric() const;
  // Non-empty when the index runs as "Flat" instead of spec() (see above).
  std::string fallback_reason() const;

 private:
  VectorIndex();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_VECTOR_INDEX_H_
