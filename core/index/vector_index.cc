#include "core/index/vector_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <pthread.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/index/simd_flat_storage.h"
#include "core/util/file.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

using faiss_idx = faiss::Index::idx_t;

constexpr char kMagic[8] = {'E', 'S', 'V', 'I', 'D', 'X', '0', '1'};
constexpr uint32_t kFileVersion = 1;

uint32_t Crc32(const void* data, size_t n) {
  return static_cast<uint32_t>(
      crc32_z(crc32_z(0L, Z_NULL, 0), static_cast<const Bytef*>(data), n));
}

// Little-endian append/parse helpers for our container (x86 hosts only).
template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void PutString(std::string* out, const std::string& s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

class Cursor {
 public:
  Cursor(const std::string& data, size_t end) : data_(data), end_(end) {}
  template <typename T>
  bool Get(T* v) {
    if (end_ - pos_ < sizeof(T)) return false;
    std::memcpy(v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetBytes(size_t n, const char** p) {
    if (end_ - pos_ < n) return false;
    *p = data_.data() + pos_;
    pos_ += n;
    return true;
  }
  bool GetString(std::string* s) {
    uint32_t n;
    const char* p;
    if (!Get(&n) || !GetBytes(n, &p)) return false;
    s->assign(p, n);
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  const std::string& data_;
  size_t end_;
  size_t pos_ = 0;
};

absl::StatusOr<faiss::MetricType> ParseMetric(const std::string& metric) {
  if (metric == "l2") return faiss::METRIC_L2;
  if (metric == "ip") return faiss::METRIC_INNER_PRODUCT;
  return absl::InvalidArgumentError(
      absl::StrCat("metric must be \"l2\" or \"ip\", got \"", metric, "\""));
}

// Accepts live slots whose label is allowed (mask empty: any label).
class SlotSelector : public faiss::IDSelector {
 public:
  SlotSelector(const std::vector<int64_t>* slot_id,
               const std::vector<int32_t>* slot_label,
               const std::vector<char>* label_mask)
      : slot_id_(slot_id), slot_label_(slot_label), mask_(label_mask) {}
  bool is_member(idx_t slot) const override {
    if (slot < 0 || static_cast<size_t>(slot) >= slot_id_->size()) return false;
    if ((*slot_id_)[slot] < 0) return false;
    if (mask_->empty()) return true;
    int32_t label = (*slot_label_)[slot];
    return label >= 0 && static_cast<size_t>(label) < mask_->size() &&
           (*mask_)[label];
  }

 private:
  const std::vector<int64_t>* slot_id_;
  const std::vector<int32_t>* slot_label_;
  const std::vector<char>* mask_;
};

// Beam search over a FAISS HNSW graph with our own ef and selector.
// FAISS 1.7.3 ignores SearchParametersHNSW::efSearch (its stopping rule
// reads the shared hnsw.efSearch) and its filtered search returns short
// lists that no ef fixes, so filtered or non-default-ef searches come here.
// Every visited node steers the search; only selected ones are results.
// `dc` returns distances to minimize (IP already negated by the caller).
void HnswSearchOne(const faiss::HNSW& hnsw,
                   const std::function<float(faiss_idx)>& dc, int k, int ef,
                   const faiss::IDSelector* sel, float* D, faiss_idx* I) {
  for (int j = 0; j < k; ++j) {
    D[j] = 0;
    I[j] = -1;
  }
  // k < 1 never reaches here (callers check it); saying so also tells gcc
  // that `results` below is never popped empty (its -Warray-bounds).
  if (hnsw.entry_point < 0 || k < 1) return;
  faiss_idx cur = hnsw.entry_point;
  float d_cur = dc(cur);
  for (int level = hnsw.max_level; level > 0; --level) {
    bool moved = true;
    while (moved) {
      moved = false;
      size_t begin, end;
      hnsw.neighbor_range(cur, level, &begin, &end);
      for (size_t j = begin; j < end; ++j) {
        faiss_idx v = hnsw.neighbors[j];
        if (v < 0) break;
        float d = dc(v);
        if (d < d_cur) {
          d_cur = d;
          cur = v;
          moved = true;
        }
      }
    }
  }
  using Item = std::pair<float, faiss_idx>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> candidates;
  std::priority_queue<Item> beam;     // Worst on top, at most ef.
  std::priority_queue<Item> results;  // Worst on top, at most k, selected.
  absl::flat_hash_set<faiss_idx> visited;
  ef = std::max(ef, k);
  auto offer = [&](faiss_idx v, float d) {
    if (sel == nullptr || sel->is_member(v)) {
      if (static_cast<int>(results.size()) < k) {
        results.emplace(d, v);
      } else if (d < results.top().first) {
        results.pop();
        results.emplace(d, v);
      }
    }
  };
  visited.insert(cur);
  candidates.emplace(d_cur, cur);
  beam.emplace(d_cur, cur);
  offer(cur, d_cur);
  while (!candidates.empty()) {
    auto [d, v] = candidates.top();
    if (static_cast<int>(beam.size()) >= ef && d > beam.top().first) break;
    candidates.pop();
    size_t begin, end;
    hnsw.neighbor_range(v, 0, &begin, &end);
    for (size_t j = begin; j < end; ++j) {
      faiss_idx u = hnsw.neighbors[j];
      if (u < 0) break;
      if (!visited.insert(u).second) continue;
      float du = dc(u);
      if (static_cast<int>(beam.size()) < ef || du < beam.top().first) {
        candidates.emplace(du, u);
        beam.emplace(du, u);
        if (static_cast<int>(beam.size()) > ef) beam.pop();
      }
      offer(u, du);
    }
  }
  for (int j = static_cast<int>(results.size()) - 1; j >= 0; --j) {
    D[j] = results.top().first;
    I[j] = results.top().second;
    results.pop();
  }
}

// The index lock. absl::Mutex hands a released lock to waiting readers, so a
// writer looping Add/Remove cannot starve searches (glibc's rwlock lets the
// releasing writer take it straight back). Debian's Abseil is not built
// with ThreadSanitizer, though, and its futex-based Mutex is invisible to
// TSan, so TSan builds lock a pthread rwlock (intercepted by TSan).
// That pthread rwlock must prefer writers: glibc's default prefers readers,
// and searchers that always overlap then keep a writer out for good (seen:
// the concurrency test's three searchers starved its writer for minutes on
// a 2-core VM under TSan).
#if defined(__SANITIZE_THREAD__)
class IndexMutex {
 public:
  IndexMutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~IndexMutex() { pthread_rwlock_destroy(&lock_); }
  IndexMutex(const IndexMutex&) = delete;
  IndexMutex& operator=(const IndexMutex&) = delete;
  void lock() { pthread_rwlock_wrlock(&lock_); }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { pthread_rwlock_rdlock(&lock_); }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};
using ReadLock = std::shared_lock<IndexMutex>;
using WriteLock = std::unique_lock<IndexMutex>;
#else
using IndexMutex = absl::Mutex;
class ReadLock {
 public:
  explicit ReadLock(absl::Mutex& mu) : lock_(&mu) {}

 private:
  absl::ReaderMutexLock lock_;
};
class WriteLock {
 public:
  explicit WriteLock(absl::Mutex& mu) : lock_(&mu) {}

 private:
  absl::MutexLock lock_;
};
#endif
}  // namespace

struct VectorIndex::Impl {
  std::string spec;
  std::string metric;
  int dim = 0;
  faiss::MetricType metric_type = faiss::METRIC_L2;
  VectorIndexOptions options;

  mutable IndexMutex mu;
  std::unique_ptr<faiss::Index> index ABSL_GUARDED_BY(mu);
  // Views into `index` (not owned): the IVF or HNSW layer when there is one.
  faiss::IndexIVF* ivf ABSL_GUARDED_BY(mu) = nullptr;
  faiss::IndexHNSW* hnsw ABSL_GUARDED_BY(mu) = nullptr;
  // The transform in front of `hnsw`, if any (e.g. "PCA32,HNSW32").
  faiss::IndexPreTransform* hnsw_transform ABSL_GUARDED_BY(mu) = nullptr;
  std::string fallback_reason ABSL_GUARDED_BY(mu);
  // slot -> catalog id (-1: removed) and label. Non-IVF indexes number
  // their vectors 0..ntotal-1 in add order, so slot == FAISS id and
  // slot_id.size() == ntotal; IVF gets slots through add_with_ids and
  // removed slots are gone from FAISS.
  std::vector<int64_t> slot_id ABSL_GUARDED_BY(mu);
  std::vector<int32_t> slot_label ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<int64_t, int64_t> slot_of ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<int32_t, int64_t> label_live ABSL_GUARDED_BY(mu);
  int64_t live ABSL_GUARDED_BY(mu) = 0;
  int64_t tombstones ABSL_GUARDED_BY(mu) = 0;  // Removed but still in FAISS.
  // FAISS 1.7.3 throws on SearchParameters for some types (IndexPQ, LSH,
  // fast-scan); learnt on first use, then we post-filter instead.
  mutable std::atomic<bool> params_supported{true};

  void AttachViews() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    faiss::Index* inner = index.get();
    faiss::IndexPreTransform* outer = nullptr;
    int transforms = 0;
    while (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(inner)) {
      outer = pt;
      ++transforms;
      inner = pt->index;
    }
    ivf = dynamic_cast<faiss::IndexIVF*>(inner);
    hnsw = dynamic_cast<faiss::IndexHNSW*>(inner);
    UseSimdStorage(hnsw);
    hnsw_transform = outer;
    if (transforms > 1) hnsw = nullptr;  // Rare; FAISS's own search then.
    // Polysemous training (on by default for IVF,PQ from the factory) is
    // minutes of simulated annealing for a search mode we never use.
    if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(inner)) {
      ivfpq->do_polysemous_training = false;
    }
    if (auto* pq = dynamic_cast<faiss::IndexPQ*>(inner)) {
      pq->do_polysemous_training = false;
    }
  }

  void ClearSlots() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    slot_id.clear();
    slot_label.clear();
    slot_of.clear();
    label_live.clear();
    live = 0;
    tombstones = 0;
  }

  void FallBackToFlat(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    fallback_reason = why;
    index = std::make_unique<faiss::IndexFlat>(dim, metric_type);
    AttachViews();
    std::fprintf(stderr, "embedsearch: index \"%s\" falls back to Flat: %s\n",
                 spec.c_str(), why.c_str());
  }

  absl::Status CompactLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // One FAISS search of n queries with k results into D/I.
  // `allowed` is how many live vectors pass `sel` (steers HNSW).
  void RunSearch(const float* q, int64_t n, int k, int effort,
                 const faiss::IDSelector* sel, int64_t allowed, float* D,
                 faiss_idx* I) const ABSL_SHARED_LOCKS_REQUIRED(mu);
};

VectorIndex::VectorIndex() : impl_(std::make_unique<Impl>()) {}
VectorIndex::~VectorIndex() = default;

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Create(
    const std::string& spec, const std::string& metric, int dim,
    const VectorIndexOptions& options) {
  if (dim <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("index dim must be positive, got ", dim));
  }
  ASSIGN_OR_RETURN(faiss::MetricType mt, ParseMetric(metric));
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::index_factory(dim, spec.c_str(), mt));
  } catch (const faiss::FaissException& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "index spec \"", spec, "\" is not a FAISS index_factory string for ",
        dim, "-d vectors: ", e.what()));
  }
  std::unique_ptr<VectorIndex> vi(new VectorIndex());
  Impl& m = *vi->impl_;
  m.spec = spec;
  m.metric = metric;
  m.dim = dim;
  m.metric_type = mt;
  m.options = options;
  WriteLock lock(m.mu);
  m.index = std::move(index);
  m.AttachViews();
  if (m.ivf) {
    m.ivf->nprobe = std::max<size_t>(
        1, std::min<size_t>(options.default_nprobe, m.ivf->nlist));
  }
  if (m.hnsw) m.hnsw->hnsw.efSearch = std::max(1, options.default_ef_search);
  return vi;
}

absl::Status VectorIndex::Add(const float* vectors, const int64_t* ids,
                              const int32_t* labels, int64_t n) {
  if (n < 0) return absl::InvalidArgumentError("negative vector count");
  if (n == 0) return absl::OkStatus();
  Impl& m = *impl_;
  for (int64_t i = 0; i < n * m.dim; ++i) {
    if (!std::isfinite(vectors[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vector ", i / m.dim, " has a non-finite value"));
    }
  }
  WriteLock lock(m.mu);
  {
    absl::flat_hash_set<int64_t> batch;
    for (int64_t i = 0; i < n; ++i) {
      if (ids[i] < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("negative id ", ids[i]));
      }
      if (m.slot_of.contains(ids[i]) || !batch.insert(ids[i]).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("id ", ids[i], " is already in the index"));
      }
    }
  }
  try {
    if (!m.index->is_trained) {
      try {
        m.index->train(n, vectors);
      } catch (const faiss::FaissException& e) {
        m.FallBackToFlat(absl::StrCat("cannot train \"", m.spec, "\" on ", n,
                                      " vectors: ", e.what()));
      }
    }
    const int64_t first_slot = static_cast<int64_t>(m.slot_id.size());
    if (m.ivf) {
      std::vector<faiss_idx> slots(n);
      for (int64_t i = 0; i < n; ++i) slots[i] = first_slot + i;
      m.index->add_with_ids(n, vectors, slots.data());
    } else {
      if (m.index->ntotal != first_slot) {
        return absl::InternalError("index and slot table disagree");
      }
      m.index->add(n, vectors);
    }
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat("FAISS add failed: ", e.what()));
  }
  for (int64_t i = 0; i < n; ++i) {
    m.slot_of[ids[i]] = static_cast<int64_t>(m.slot_id.size());
    m.slot_id.push_back(ids[i]);
    m.slot_label.push_back(labels ? labels[i] : 0);
    ++m.label_live[labels ? labels[i] : 0];
  }
  m.live += n;
  return absl::OkStatus();
}

absl::Status VectorIndex::Remove(const std::vector<int64_t>& ids) {
  Impl& m = *impl_;
  WriteLock lock(m.mu);
  std::vector<faiss_idx> slots;
  for (int64_t id : ids) {
    auto it = m.slot_of.find(id);
    if (it == m.slot_of.end()) continue;
    slots.push_back(it->second);
    m.slot_of.erase(it);
  }
  if (slots.empty()) return absl::OkStatus();
  if (m.ivf) {
    try {
      faiss::IDSelectorBatch sel(slots.size(), slots.data());
      m.index->remove_ids(sel);
    } catch (const faiss::FaissException& e) {
      return absl::InternalError(
          absl::StrCat("FAISS remove_ids failed: ", e.what()));
    }
  } else {
    m.tombstones += static_cast<int64_t>(slots.size());
  }
  for (faiss_idx slot : slots) {
    m.slot_id[slot] = -1;
    auto lit = m.label_live.find(m.slot_label[slot]);
    if (lit != m.label_live.end() && --lit->second == 0) m.label_live.erase(lit);
  }
  m.live -= static_cast<int64_t>(slots.size());
  if (m.tombstones > 0 &&
      m.tombstones > m.options.max_tombstone_fraction *
                         static_cast<double>(m.slot_id.size())) {
    absl::Status compacted = m.CompactLocked();
    if (!compacted.ok()) {
      // The removal itself is done (tombstones filter the ids out).
      std::fprintf(stderr, "embedsearch: index compaction skipped: %s\n",
                   std::string(compacted.message()).c_str());
    }
  }
  return absl::OkStatus();
}

absl::Status VectorIndex::Impl::CompactLocked() {
  if (ivf || tombstones == 0) return absl::OkStatus();
  std::vector<int64_t> keep_ids;
  std::vector<int32_t> keep_labels;
  std::vector<float> buf(static_cast<size_t>(live) * dim);
  try {
    int64_t j = 0;
    for (size_t slot = 0; slot < slot_id.size(); ++slot) {
      if (slot_id[slot] < 0) continue;
      index->reconstruct(static_cast<faiss_idx>(slot), buf.data() + j * dim);
      keep_ids.push_back(slot_id[slot]);
      keep_labels.push_back(slot_label[slot]);
      ++j;
    }
  } catch (const faiss::FaissException& e) {
    return absl::UnimplementedError(absl::StrCat(
        "\"", spec, "\" cannot reconstruct vectors: ", e.what()));
  }
  try {
    index->reset();  // Keeps training (IVF centroids, PQ codebooks).
    index->add(static_cast<faiss_idx>(keep_ids.size()), buf.data());
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat("FAISS rebuild failed: ", e.what()));
  }
  ClearSlots();
  for (size_t i = 0; i < keep_ids.size(); ++i) {
    slot_of[keep_ids[i]] = static_cast<int64_t>(i);
    slot_id.push_back(keep_ids[i]);
    slot_label.push_back(keep_labels[i]);
    ++label_live[keep_labels[i]];
  }
  live = static_cast<int64_t>(keep_ids.size());
  return absl::OkStatus();
}

absl::Status VectorIndex::Compact() {
  WriteLock lock(impl_->mu);
  return impl_->CompactLocked();
}

void VectorIndex::Impl::RunSearch(const float* q, int64_t n, int k, int effort,
                                  const faiss::IDSelector* sel, int64_t allowed,
                                  float* D, faiss_idx* I) const {
  if (!params_supported.load(std::memory_order_relaxed)) {
    index->search(n, q, k, D, I);
    return;
  }
  if (ivf) {
    faiss::SearchParametersIVF p;
    p.nprobe = effort > 0 ? effort : ivf->nprobe;
    p.sel = const_cast<faiss::IDSelector*>(sel);
    index->search(n, q, k, D, I, &p);
  } else if (hnsw) {
    if (sel == nullptr && (effort <= 0 || effort == hnsw->hnsw.efSearch)) {
      index->search(n, q, k, D, I);  // FAISS's path (OpenMP over queries).
      return;
    }
    const float* xq = q;
    std::unique_ptr<const float[]> transformed;
    if (hnsw_transform) {
      xq = hnsw_transform->apply_chain(n, q);
      if (xq != q) transformed.reset(xq);
    }
    std::unique_ptr<faiss::DistanceComputer> dc(
        hnsw->storage->get_distance_computer());
    const bool negate = metric_type == faiss::METRIC_INNER_PRODUCT;
    const faiss_idx total = hnsw->ntotal;
    int ef = effort > 0 ? effort : hnsw->hnsw.efSearch;
    bool exact = false;
    if (sel != nullptr && allowed > 0) {
      // A filter passing a fraction f of the graph needs about ef/f visited
      // nodes to meet ef passing ones. When that walk (each step scores a
      // level-0 neighbour list) costs more than scoring the `allowed`
      // vectors directly, scan them instead: exact and cheaper.
      double f = static_cast<double>(allowed) / std::max<faiss_idx>(1, total);
      ef = static_cast<int>(std::min<double>(total, std::ceil(ef / f)));
      exact = static_cast<double>(allowed) <=
              static_cast<double>(ef) * hnsw->hnsw.nb_neighbors(0);
    }
    const int d = hnsw->d;
    for (int64_t i = 0; i < n; ++i) {
      dc->set_query(xq + i * d);
      faiss::DistanceComputer& dref = *dc;
      auto dist = [&](faiss_idx v) { return negate ? -dref(v) : dref(v); };
      if (exact) {
        using Item = std::pair<float, faiss_idx>;
        std::priority_queue<Item> best;  // Worst on top.
        for (faiss_idx v = 0; v < total; ++v) {
          if (!sel->is_member(v)) continue;
          float dv = dist(v);
          if (static_cast<int>(best.size()) < k) {
            best.emplace(dv, v);
          } else if (dv < best.top().first) {
            best.pop();
            best.emplace(dv, v);
          }
        }
        for (int j = 0; j < k; ++j) {
          D[i * k + j] = 0;
          I[i * k + j] = -1;
        }
        for (int j = static_cast<int>(best.size()) - 1; j >= 0; --j) {
          D[i * k + j] = best.top().first;
          I[i * k + j] = best.top().second;
          best.pop();
        }
      } else {
        HnswSearchOne(hnsw->hnsw, dist, k, ef, sel, D + i * k, I + i * k);
      }
      if (negate) {
        for (int j = 0; j < k; ++j) D[i * k + j] = -D[i * k + j];
      }
    }
  } else if (sel) {
    faiss::SearchParameters p;
    p.sel = const_cast<faiss::IDSelector*>(sel);
    index->search(n, q, k, D, I, &p);
  } else {
    index->search(n, q, k, D, I);
  }
}

absl::StatusOr<std::vector<std::vector<Neighbor>>> VectorIndex::Search(
    const float* queries, int64_t n, const SearchParams& params) const {
  const Impl& m = *impl_;
  if (params.k <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be positive, got ", params.k));
  }
  if (n < 0) return absl::InvalidArgumentError("negative query count");
  if (params.nprobe < 0 || params.ef_search < 0) {
    return absl::InvalidArgumentError("nprobe and ef_search must be >= 0");
  }
  for (int64_t i = 0; i < n * m.dim; ++i) {
    if (!std::isfinite(queries[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query ", i / m.dim, " has a non-finite value"));
    }
  }
  std::vector<std::vector<Neighbor>> result(n);
  if (n == 0) return result;
  ReadLock lock(m.mu);
  if (m.live == 0) return result;

  // Label mask and how many live vectors pass the filter.
  std::vector<char> mask;
  int64_t allowed_live = m.live;
  if (!params.allowed_labels.empty()) {
    allowed_live = 0;
    for (int32_t label : params.allowed_labels) {
      if (label < 0 || label > (1 << 20)) continue;
      if (static_cast<size_t>(label) >= mask.size()) mask.resize(label + 1, 0);
      if (mask[label]) continue;
      mask[label] = 1;
      auto it = m.label_live.find(label);
      if (it != m.label_live.end()) allowed_live += it->second;
    }
    if (allowed_live == 0) return result;
  }
  const bool filtered = !mask.empty() || m.tombstones > 0;
  SlotSelector selector(&m.slot_id, &m.slot_label, &mask);
  const int64_t expected = std::min<int64_t>(params.k, allowed_live);
  const int64_t total_slots = static_cast<int64_t>(m.slot_id.size());

  // Appends the accepted hits of one result row.
  auto collect = [&](const float* D, const faiss_idx* I, int k,
                     std::vector<Neighbor>* out) {
    out->clear();
    for (int j = 0; j < k && static_cast<int64_t>(out->size()) < params.k;
         ++j) {
      if (I[j] < 0 || !selector.is_member(I[j])) continue;
      float d = m.metric_type == faiss::METRIC_INNER_PRODUCT ? -D[j] : D[j];
      out->push_back(Neighbor{m.slot_id[I[j]], d});
    }
  };

  int effort = m.ivf ? params.nprobe : m.hnsw ? params.ef_search : 0;
  const int max_effort =
      m.ivf ? static_cast<int>(m.ivf->nlist)
            : m.hnsw ? static_cast<int>(std::min<int64_t>(total_slots, 1 << 30))
                     : 0;
  if (effort == 0) {
    effort = m.ivf ? static_cast<int>(m.ivf->nprobe)
                   : m.hnsw ? m.hnsw->hnsw.efSearch : 0;
  }
  try {
    std::vector<int64_t> pending(n);
    for (int64_t i = 0; i < n; ++i) pending[i] = i;
    std::vector<float> qbuf;
    std::vector<float> D;
    std::vector<faiss_idx> I;
    // Rounds: the first runs every query; later ones rerun the short ones
    // with more effort (selector path) or a larger k (post-filter path).
    int k_round = params.k;
    bool post_filter = !m.params_supported.load(std::memory_order_relaxed);
    if (post_filter && filtered) {
      k_round = static_cast<int>(std::min<int64_t>(
          total_slots, std::max<int64_t>(2 * params.k,
                                         params.k + m.tombstones)));
    }
    for (int round = 0; !pending.empty(); ++round) {
      const int64_t np = static_cast<int64_t>(pending.size());
      const float* q = queries;
      if (round > 0) {
        qbuf.resize(static_cast<size_t>(np) * m.dim);
        for (int64_t i = 0; i < np; ++i) {
          std::memcpy(qbuf.data() + i * m.dim, queries + pending[i] * m.dim,
                      sizeof(float) * m.dim);
        }
        q = qbuf.data();
      }
      D.assign(static_cast<size_t>(np) * k_round, 0);
      I.assign(static_cast<size_t>(np) * k_round, -1);
      try {
        m.RunSearch(q, np, k_round, effort,
                    filtered && !post_filter ? &selector : nullptr,
                    allowed_live, D.data(), I.data());
      } catch (const faiss::FaissException& e) {
        if (post_filter || !m.params_supported.load()) throw;
        // This type rejects SearchParameters: post-filter from now on.
        m.params_supported.store(false);
        post_filter = true;
        if (filtered) {
          k_round = static_cast<int>(std::min<int64_t>(
              total_slots, std::max<int64_t>(2 * params.k,
                                             params.k + m.tombstones)));
        }
        pending.resize(n);
        for (int64_t i = 0; i < n; ++i) pending[i] = i;
        qbuf.clear();
        round = -1;  // Restart with every query.
        continue;
      }
      std::vector<int64_t> still;
      for (int64_t i = 0; i < np; ++i) {
        std::vector<Neighbor>& out = result[pending[i]];
        collect(D.data() + i * k_round, I.data() + i * k_round, k_round, &out);
        if (static_cast<int64_t>(out.size()) < expected) {
          still.push_back(pending[i]);
        }
      }
      pending.swap(still);
      if (pending.empty()) break;
      if (post_filter) {
        if (!filtered || k_round >= total_slots) break;
        k_round = static_cast<int>(
            std::min<int64_t>(total_slots, static_cast<int64_t>(k_round) * 4));
      } else {
        if (max_effort == 0 || effort >= max_effort) break;
        effort = static_cast<int>(
            std::min<int64_t>(max_effort, static_cast<int64_t>(effort) * 4));
      }
    }
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat("FAISS search failed: ", e.what()));
  }
  return result;
}

int64_t VectorIndex::size() const {
  ReadLock lock(impl_->mu);
  return impl_->live;
}

int64_t VectorIndex::tombstones() const {
  ReadLock lock(impl_->mu);
  return impl_->tombstones;
}

std::vector<int64_t> VectorIndex::ids() const {
  ReadLock lock(impl_->mu);
  std::vector<int64_t> out;
  out.reserve(impl_->live);
  for (int64_t id : impl_->slot_id) {
    if (id >= 0) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

int VectorIndex::dim() const { return impl_->dim; }
const std::string& VectorIndex::spec() const { return impl_->spec; }
const std::string& VectorIndex::metric() const { return impl_->metric; }
std::string VectorIndex::fallback_reason() const {
  ReadLock lock(impl_->mu);
  return impl_->fallback_reason;
}

absl::Status VectorIndex::Save(const std::string& path) const {
  const Impl& m = *impl_;
  std::string out;
  {
    ReadLock lock(m.mu);
    faiss::VectorIOWriter writer;
    try {
      faiss::write_index(m.index.get(), &writer);
    } catch (const faiss::FaissException& e) {
      return absl::InternalError(
          absl::StrCat("cannot serialize the FAISS index: ", e.what()));
    }
    out.reserve(writer.data.size() + m.slot_id.size() * 12 + 256);
    out.append(kMagic, sizeof(kMagic));
    Put<uint32_t>(&out, kFileVersion);
    PutString(&out, m.spec);
    PutString(&out, m.metric);
    PutString(&out, m.fallback_reason);
    Put<int32_t>(&out, m.dim);
    Put<int64_t>(&out, static_cast<int64_t>(m.slot_id.size()));
    out.append(reinterpret_cast<const char*>(m.slot_id.data()),
               m.slot_id.size() * sizeof(int64_t));
    out.append(reinterpret_cast<const char*>(m.slot_label.data()),
               m.slot_label.size() * sizeof(int32_t));
    Put<uint64_t>(&out, writer.data.size());
    out.append(reinterpret_cast<const char*>(writer.data.data()),
               writer.data.size());
  }
  Put<uint32_t>(&out, Crc32(out.data(), out.size()));
  return WriteFileAtomically(path, out);
}

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Load(
    const std::string& path, const VectorIndexOptions& options) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(path, ": ", what));
  };
  if (data.size() < sizeof(kMagic) + 4 ||
      std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) {
    return corrupt("not an embedsearch index file (bad magic)");
  }
  const size_t body = data.size() - 4;
  uint32_t stored_crc;
  std::memcpy(&stored_crc, data.data() + body, 4);
  if (Crc32(data.data(), body) != stored_crc) {
    return corrupt("checksum mismatch (truncated or corrupt)");
  }
  Cursor c(data, body);
  const char* skip;
  c.GetBytes(sizeof(kMagic), &skip);
  uint32_t version;
  std::string spec, metric, fallback;
  int32_t dim;
  int64_t nslots;
  if (!c.Get(&version)) return corrupt("truncated header");
  if (version != kFileVersion) {
    return corrupt(absl::StrCat("file version ", version, ", this build reads ",
                                kFileVersion));
  }
  if (!c.GetString(&spec) || !c.GetString(&metric) ||
      !c.GetString(&fallback) || !c.Get(&dim) || !c.Get(&nslots) ||
      nslots < 0 || dim <= 0) {
    return corrupt("truncated or invalid header");
  }
  ASSIGN_OR_RETURN(faiss::MetricType mt, ParseMetric(metric));
  const char* ids_p;
  const char* labels_p;
  const char* blob_p;
  uint64_t blob_size;
  if (static_cast<uint64_t>(nslots) > (body / 12) ||
      !c.GetBytes(nslots * sizeof(int64_t), &ids_p) ||
      !c.GetBytes(nslots * sizeof(int32_t), &labels_p) || !c.Get(&blob_size) ||
      !c.GetBytes(blob_size, &blob_p) || c.pos() != body) {
    return corrupt("truncated id table or FAISS data");
  }
  std::unique_ptr<faiss::Index> index;
  try {
    faiss::VectorIOReader reader;
    reader.data.assign(reinterpret_cast<const uint8_t*>(blob_p),
                       reinterpret_cast<const uint8_t*>(blob_p) + blob_size);
    index.reset(faiss::read_index(&reader));
  } catch (const faiss::FaissException& e) {
    return corrupt(absl::StrCat("FAISS cannot read the index: ", e.what()));
  }
  if (index->d != dim || index->metric_type != mt) {
    return corrupt("FAISS index dim or metric differs from the header");
  }
  std::unique_ptr<VectorIndex> vi(new VectorIndex());
  Impl& m = *vi->impl_;
  m.spec = spec;
  m.metric = metric;
  m.dim = dim;
  m.metric_type = mt;
  m.options = options;
  WriteLock lock(m.mu);
  m.index = std::move(index);
  m.fallback_reason = fallback;
  m.AttachViews();
  m.slot_id.resize(nslots);
  m.slot_label.resize(nslots);
  std::memcpy(m.slot_id.data(), ids_p, nslots * sizeof(int64_t));
  std::memcpy(m.slot_label.data(), labels_p, nslots * sizeof(int32_t));
  for (int64_t s = 0; s < nslots; ++s) {
    if (m.slot_id[s] < 0) {
      if (!m.ivf) ++m.tombstones;
      continue;
    }
    if (!m.slot_of.emplace(m.slot_id[s], s).second) {
      return corrupt(absl::StrCat("id ", m.slot_id[s], " appears twice"));
    }
    ++m.label_live[m.slot_label[s]];
    ++m.live;
  }
  const int64_t expected_ntotal = m.ivf ? m.live : nslots;
  if (m.index->ntotal != expected_ntotal) {
    return corrupt(absl::StrCat("FAISS holds ", m.index->ntotal,
                                " vectors, the id table ", expected_ntotal));
  }
  return vi;
}

}  // namespace embedsearch
