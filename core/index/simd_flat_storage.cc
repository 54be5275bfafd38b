#include "core/index/simd_flat_storage.h"

#include <typeinfo>
#include <utility>

#include <Eigen/Core>

namespace embedsearch {
namespace {

using ConstVec = Eigen::Map<const Eigen::VectorXf>;

class SimdDistanceComputer : public faiss::FlatCodesDistanceComputer {
 public:
  SimdDistanceComputer(const faiss::IndexFlat& storage, bool inner_product)
      : faiss::FlatCodesDistanceComputer(storage.codes.data(), storage.code_size),
        xb_(storage.get_xb()),
        d_(static_cast<int>(storage.d)),
        inner_product_(inner_product) {}

  void set_query(const float* x) override { query_ = x; }

  float distance_to_code(const uint8_t* code) override {
    return Distance(query_, reinterpret_cast<const float*>(code));
  }

  float symmetric_dis(idx_t i, idx_t j) override {
    return Distance(xb_ + i * d_, xb_ + j * d_);
  }

 private:
  float Distance(const float* a, const float* b) const {
    ConstVec x(a, d_), y(b, d_);
    return inner_product_ ? x.dot(y) : (x - y).squaredNorm();
  }

  const float* xb_;
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
