// Vector storage for FAISS graph indexes with SIMD distances.
//
// Why: Debian 12's libfaiss is built for baseline x86-64, so the flat
// storage behind IndexHNSWFlat scores vectors with fvec_L2sqr_ref, a scalar
// loop; profiling a 60k HNSW32 search showed it at ~20% of a query's CPU.
// This subclass of IndexFlat keeps FAISS's data layout (and its on-disk
// format: write_index sees an IndexFlat) and only replaces the distance
// computer with one our build vectorizes (AVX2/FMA; Eigen when the build
// targets no AVX2).
#ifndef EMBEDSEARCH_CORE_INDEX_SIMD_FLAT_STORAGE_H_
#define EMBEDSEARCH_CORE_INDEX_SIMD_FLAT_STORAGE_H_

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>

namespace embedsearch {

class SimdFlatStorage : public faiss::IndexFlat {
 public:
  SimdFlatStorage(idx_t d, faiss::MetricType metric) : faiss::IndexFlat(d, metric) {}
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override;
};

// Replaces `hnsw`'s storage, if it is a plain L2 or inner-product
// IndexFlat, with a SimdFlatStorage holding the same vectors (moved, not
// copied). Returns whether it did. Distances stay equal up to float
// rounding order.
bool UseSimdStorage(faiss::IndexHNSW* hnsw);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_SIMD_FLAT_STORAGE_H_
