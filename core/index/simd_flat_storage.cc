#include "core/index/simd_flat_storage.h"

#include <typeinfo>
#include <utility>

#include <Eigen/Core>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace embedsearch {
namespace {

using ConstVec = Eigen::Map<const Eigen::VectorXf>;

// Hand-unrolled AVX2/FMA kernels for the common case (d a multiple of 8):
// called ~1000 times per HNSW query, Eigen's dynamic-size reductions cost
// more in set-up than in arithmetic at d = 64.
#if defined(__AVX2__) && defined(__FMA__)
float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}

float L2Squared(const float* a, const float* b, int d) {
  if (d % 8 != 0) return (ConstVec(a, d) - ConstVec(b, d)).squaredNorm();
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= d; i += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
  }
  if (i < d) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
  }
  return HorizontalSum(_mm256_add_ps(acc0, acc1));
}

float Dot(const float* a, const float* b, int d) {
  if (d % 8 != 0) return ConstVec(a, d).dot(ConstVec(b, d));
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  if (i < d) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  return HorizontalSum(_mm256_add_ps(acc0, acc1));
}
#else
float L2Squared(const float* a, const float* b, int d) {
  return (ConstVec(a, d) - ConstVec(b, d)).squaredNorm();
}
float Dot(const float* a, const float* b, int d) {
  return ConstVec(a, d).dot(ConstVec(b, d));
}
#endif

class SimdDistanceComputer : public faiss::FlatCodesDistanceComputer {
 public:
  SimdDistanceComputer(const faiss::IndexFlat& storage, bool inner_product)
      : faiss::FlatCodesDistanceComputer(storage.codes.data(), storage.code_size),
        d_(static_cast<int>(storage.d)),
        inner_product_(inner_product) {}

  void set_query(const float* x) override { query_ = x; }

  float distance_to_code(const uint8_t* code) override {
    return Distance(query_, reinterpret_cast<const float*>(code));
  }

  float symmetric_dis(idx_t i, idx_t j) override {
    return Distance(Vector(i), Vector(j));
  }

 private:
  const float* Vector(idx_t i) const {
    return reinterpret_cast<const float*>(codes + i * code_size);
  }
  float Distance(const float* a, const float* b) const {
    return inner_product_ ? Dot(a, b, d_) : L2Squared(a, b, d_);
  }

  const int d_;
  const bool inner_product_;
  const float* query_ = nullptr;
};

}  // namespace

faiss::FlatCodesDistanceComputer* SimdFlatStorage::get_FlatCodesDistanceComputer()
    const {
  return new SimdDistanceComputer(*this, metric_type == faiss::METRIC_INNER_PRODUCT);
}

bool UseSimdStorage(faiss::IndexHNSW* hnsw) {
  if (hnsw == nullptr || hnsw->storage == nullptr) return false;
  const std::type_info& type = typeid(*hnsw->storage);
  if (type != typeid(faiss::IndexFlat) && type != typeid(faiss::IndexFlatL2) &&
      type != typeid(faiss::IndexFlatIP)) {
    return false;  // Already ours, or a compressed storage (SQ, PQ).
  }
  auto* old_storage = static_cast<faiss::IndexFlat*>(hnsw->storage);
  if (old_storage->metric_type != faiss::METRIC_L2 &&
      old_storage->metric_type != faiss::METRIC_INNER_PRODUCT) {
    return false;
  }
  auto* storage = new SimdFlatStorage(old_storage->d, old_storage->metric_type);
  storage->codes = std::move(old_storage->codes);
  storage->ntotal = old_storage->ntotal;
  storage->is_trained = old_storage->is_trained;
  if (hnsw->own_fields) delete old_storage;
  hnsw->storage = storage;
  hnsw->own_fields = true;
  return true;
}

}  // namespace embedsearch
