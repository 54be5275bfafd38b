// A FAISS index whose ids are the catalog's ids.
//
// Any index_factory spec ("Flat", "HNSW32", "IVF256,Flat", "IVF256,PQ16",
// ...), metric "l2" (squared L2 distances) or "ip" (distance = -inner
// product, so smaller is nearer for both). Search parameters are per call.
// Removal works for every type: HNSW keeps tombstones filtered through an
// IDSelector until Rebuild. Thread-safe: searches take a shared lock,
// Add/Remove/Rebuild an exclusive one, so a search sees the old or the new
// state, never a mix.
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
  int nprobe = 0;     // 0: index default (IVF only)
  int ef_search = 0;  // 0: index default (HNSW only)
  // When non-empty, only ids whose label is in this set are returned.
  std::vector<int32_t> allowed_labels;
};

struct Neighbor {
  int64_t id = -1;
  float distance = 0;
};

class VectorIndex {
 public:
  // Builds an empty index; IVF/PQ specs are trained on `train` (n * dim)
  // when given, otherwise on the first Add.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Create(
      const std::string& spec, const std::string& metric, int dim);
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Load(const std::string& path);
  absl::Status Save(const std::string& path) const;
  ~VectorIndex();

  // `vectors` is n * dim floats; labels are kept for label-filtered search.
  absl::Status Add(const float* vectors, const int64_t* ids,
                   const int32_t* labels, int64_t n);
  absl::Status Remove(const std::vector<int64_t>& ids);
  // Queries: n * dim floats; result[i] holds up to k neighbours, nearest first.
  absl::StatusOr<std::vector<std::vector<Neighbor>>> Search(
      const float* queries, int64_t n, const SearchParams& params) const;

  int64_t size() const;  // Live (non-removed) vectors.
  int dim() const;
  const std::string& spec() const;
  const std::string& metric() const;

 private:
  VectorIndex();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_VECTOR_INDEX_H_
