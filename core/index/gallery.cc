#include "core/index/gallery.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/util/file.h"
#include "core/util/status_macros.h"

namespace embedsearch {

struct Gallery::Impl {
  std::string dir;
  int dim = 0;
  std::string spec;
  std::string metric;
  VectorIndexOptions index_options;
  std::string rebuild_reason;
  bool read_only = false;  // Set once in Open.
  std::unique_ptr<CatalogStore> catalog;
  std::unique_ptr<VectorIndex> index;  // Set once in Open; thread-safe.
  // Serializes writers so the catalog and the index see the same order.
  std::mutex write_mu;
  mutable std::mutex labels_mu;
  std::vector<std::string> label_names ABSL_GUARDED_BY(labels_mu);
  absl::flat_hash_map<std::string, int32_t> label_of ABSL_GUARDED_BY(labels_mu);

  // Shared catalogs only (OpenShared).
  ChangeFeed* feed = nullptr;
  ReplicationOptions replication_options;
  // Ids this gallery added itself and indexed at once; their change rows
  // are skipped when the feed brings them. Guarded by write_mu.
  absl::flat_hash_set<int64_t> own_adds;
  mutable std::mutex replication_mu;
  ReplicationStatus replication ABSL_GUARDED_BY(replication_mu);
  std::atomic<bool> stopping{false};
  std::thread follower;  // Joined by ~Impl.

  ~Impl() {
    stopping = true;
    if (follower.joinable()) follower.join();
  }

  std::string IndexPath() const { return absl::StrCat(dir, "/", kIndexFile); }

  absl::Status RefuseIfReadOnly(absl::string_view what) const {
    if (!read_only) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot ", what, ": the gallery directory ", dir,
        " is read-only (not writable by the server); searches still work"));
  }

  absl::Status RefreshLabels() {
    ASSIGN_OR_RETURN(std::vector<std::string> names, catalog->LabelNames());
    std::unique_lock lock(labels_mu);
    label_of.clear();
    for (size_t i = 0; i < names.size(); ++i) {
      if (!names[i].empty()) label_of[names[i]] = static_cast<int32_t>(i);
    }
    label_names = std::move(names);
    return absl::OkStatus();
  }

  // Builds the index from every catalog row.
  absl::StatusOr<std::unique_ptr<VectorIndex>> BuildFromCatalog() const {
    ASSIGN_OR_RETURN(std::unique_ptr<VectorIndex> fresh,
                     VectorIndex::Create(spec, metric, dim, index_options));
    std::vector<float> vectors;
    std::vector<int64_t> ids;
    std::vector<int32_t> labels;
    RETURN_IF_ERROR(catalog->ForEach([&](const CatalogItem& item) {
      vectors.insert(vectors.end(), item.embedding.begin(),
                     item.embedding.end());
      ids.push_back(item.id);
      labels.push_back(item.label);
    }));
    RETURN_IF_ERROR(fresh->Add(vectors.data(), ids.data(), labels.data(),
                               static_cast<int64_t>(ids.size())));
    return fresh;
  }

  void Follow() {
    while (!stopping) {
      feed->WaitForChanges(replication_options.poll_interval);
      if (!stopping) CatchUp();
    }
  }

  // Applies every change after the applied sequence, batch by batch.
  void CatchUp() {
    for (;;) {
      int64_t applied;
      {
        std::unique_lock lock(replication_mu);
        applied = replication.applied_sequence;
      }
      absl::StatusOr<std::vector<CatalogChange>> changes =
          feed->ChangesAfter(applied, replication_options.batch);
      std::unique_lock lock(replication_mu);
      replication.catalog_reachable = changes.ok();
      replication.last_error = std::string(changes.status().message());
      if (!changes.ok() || changes->empty()) return;
      lock.unlock();
      Apply(*changes);
      if (stopping) return;
    }
  }

  // One batch of changes, in order: consecutive adds go to the index in
  // one call, consecutive removes in one call.
  void Apply(const std::vector<CatalogChange>& changes) {
    std::unique_lock lock(write_mu);
    std::vector<float> vectors;
    std::vector<int64_t> add_ids, remove_ids;
    std::vector<int32_t> labels;
    auto flush = [&] {
      absl::Status s = index->Add(vectors.data(), add_ids.data(), labels.data(),
                                  static_cast<int64_t>(add_ids.size()));
      if (s.ok()) s = index->Remove(remove_ids);
      if (!s.ok()) {
        std::fprintf(stderr, "embedsearch: applying catalog changes: %s\n",
                     std::string(s.message()).c_str());
      }
      vectors.clear();
      add_ids.clear();
      labels.clear();
      remove_ids.clear();
    };
    for (const CatalogChange& c : changes) {
      if (c.removed) {
        if (!add_ids.empty()) flush();
        remove_ids.push_back(c.id);
        own_adds.erase(c.id);
        continue;
      }
      // Gone again (a later change removes it) or indexed by our own Add.
      if (c.item.id == 0 || own_adds.erase(c.id) > 0) continue;
      if (!remove_ids.empty()) flush();
      NoteLabel(c.item.label, c.item.label_name);
      vectors.insert(vectors.end(), c.item.embedding.begin(),
                     c.item.embedding.end());
      add_ids.push_back(c.id);
      labels.push_back(c.item.label);
    }
    flush();
    std::unique_lock status_lock(replication_mu);
    replication.applied_sequence = changes.back().sequence;
    replication.lag = absl::Now() - changes.back().committed_at;
  }

  // A label another replica created.
  void NoteLabel(int32_t label, const std::string& name) {
    if (name.empty() || label < 0) return;
    std::unique_lock lock(labels_mu);
    if (label_of.contains(name)) return;
    if (label_names.size() <= static_cast<size_t>(label)) {
      label_names.resize(label + 1);
    }
    label_names[label] = name;
    label_of[name] = label;
  }

  // Why the saved index cannot be used, or "" when it can.
  std::string Mismatch(const absl::StatusOr<std::unique_ptr<VectorIndex>>& loaded,
                       const std::vector<int64_t>& catalog_ids) const {
    if (absl::IsNotFound(loaded.status())) return "index.faiss is missing";
    if (!loaded.ok()) {
      return absl::StrCat("index.faiss is unreadable: ",
                          loaded.status().message());
    }
    const VectorIndex& vi = **loaded;
    if (vi.spec() != spec || vi.metric() != metric || vi.dim() != dim) {
      return absl::StrCat("index.faiss is \"", vi.spec(), "\"/", vi.metric(),
                          "/", vi.dim(), "-d, wanted \"", spec, "\"/", metric,
                          "/", dim, "-d");
    }
    std::vector<int64_t> index_ids = vi.ids();
    if (index_ids != catalog_ids) {
      // A training fallback is retried here too: the rebuild trains the
      // requested spec on the whole (grown) catalog.
      return absl::StrCat("index.faiss is stale (", index_ids.size(),
                          " vectors, the catalog has ", catalog_ids.size(),
                          " items or other ids)");
    }
    return "";
  }
};

Gallery::Gallery() : impl_(std::make_unique<Impl>()) {}
Gallery::~Gallery() = default;

absl::StatusOr<std::unique_ptr<Gallery>> Gallery::Open(
    const std::string& dir, int dim, const std::string& index_spec,
    const std::string& metric, const VectorIndexOptions& index_options) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "create directory", dir);
  }
  std::unique_ptr<Gallery> gallery(new Gallery());
  Impl& m = *gallery->impl_;
  m.dir = dir;
  m.dim = dim;
  m.spec = index_spec;
  m.metric = metric;
  m.index_options = index_options;
  // A directory we cannot write (read-only mount, permissions) is served
  // read-only rather than refused: searches work, mutations are refused.
  m.read_only = ::access(dir.c_str(), W_OK) != 0;
  const std::string catalog_path = absl::StrCat(dir, "/", kCatalogFile);
  if (m.read_only) {
    ASSIGN_OR_RETURN(m.catalog, Catalog::OpenReadOnly(catalog_path, dim));
    std::fprintf(stderr,
                 "embedsearch: %s: directory is not writable: serving it "
                 "read-only (AddImages and RemoveImages are refused)\n",
                 dir.c_str());
  } else {
    ASSIGN_OR_RETURN(m.catalog, Catalog::Open(catalog_path, dim));
  }
  RETURN_IF_ERROR(m.RefreshLabels());
  ASSIGN_OR_RETURN(std::vector<int64_t> catalog_ids, m.catalog->Ids());
  absl::StatusOr<std::unique_ptr<VectorIndex>> loaded =
      VectorIndex::Load(m.IndexPath(), index_options);
  m.rebuild_reason = m.Mismatch(loaded, catalog_ids);
  if (m.rebuild_reason.empty()) {
    m.index = *std::move(loaded);
    return gallery;
  }
  std::fprintf(stderr, "embedsearch: %s: rebuilding the index: %s\n",
               dir.c_str(), m.rebuild_reason.c_str());
  ASSIGN_OR_RETURN(m.index, m.BuildFromCatalog());
  if (m.read_only) return gallery;  // The rebuilt index lives in memory only.
  absl::Status saved = gallery->SaveIndex();
  if (!saved.ok()) {
    std::fprintf(stderr, "embedsearch: %s: could not save the index: %s\n",
                 dir.c_str(), std::string(saved.message()).c_str());
  }
  return gallery;
}

absl::StatusOr<std::unique_ptr<Gallery>> Gallery::OpenShared(
    std::unique_ptr<CatalogStore> catalog, const std::string& index_spec,
    const std::string& metric, const VectorIndexOptions& index_options,
    const ReplicationOptions& replication) {
  if (catalog == nullptr || catalog->change_feed() == nullptr) {
    return absl::InvalidArgumentError(
        "OpenShared needs a catalog with a change feed (PostgreSQL)");
  }
  std::unique_ptr<Gallery> gallery(new Gallery());
  Impl& m = *gallery->impl_;
  m.dim = catalog->dim();
  m.spec = index_spec;
  m.metric = metric;
  m.index_options = index_options;
  m.feed = catalog->change_feed();
  m.catalog = std::move(catalog);
  m.replication_options = replication;
  m.replication.shared = true;
  RETURN_IF_ERROR(m.RefreshLabels());
  ASSIGN_OR_RETURN(
      m.index, VectorIndex::Create(index_spec, metric, m.dim, index_options));
  std::vector<float> vectors;
  std::vector<int64_t> ids;
  std::vector<int32_t> labels;
  ASSIGN_OR_RETURN(m.replication.applied_sequence,
                   m.feed->Snapshot([&](const CatalogItem& item) {
                     vectors.insert(vectors.end(), item.embedding.begin(),
                                    item.embedding.end());
                     ids.push_back(item.id);
                     labels.push_back(item.label);
                   }));
  RETURN_IF_ERROR(m.index->Add(vectors.data(), ids.data(), labels.data(),
                               static_cast<int64_t>(ids.size())));
  m.follower = std::thread([&m] { m.Follow(); });
  return gallery;
}

absl::StatusOr<std::vector<int64_t>> Gallery::Add(
    std::vector<CatalogItem> items) {
  Impl& m = *impl_;
  RETURN_IF_ERROR(m.RefuseIfReadOnly("add images"));
  const int64_t n = static_cast<int64_t>(items.size());
  std::vector<float> vectors;
  vectors.reserve(static_cast<size_t>(n) * m.dim);
  for (const CatalogItem& item : items) {
    vectors.insert(vectors.end(), item.embedding.begin(), item.embedding.end());
  }
  std::vector<std::string> names(n);
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    names[i] = items[i].label_name;
    labels[i] = items[i].label;
  }
  std::unique_lock lock(m.write_mu);
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, m.catalog->Add(std::move(items)));
  // The catalog resolved label names (maybe creating labels): mirror it.
  RETURN_IF_ERROR(m.RefreshLabels());
  {
    std::unique_lock labels_lock(m.labels_mu);
    for (int64_t i = 0; i < n; ++i) {
      if (!names[i].empty()) labels[i] = m.label_of.at(names[i]);
    }
  }
  if (m.feed != nullptr) m.own_adds.insert(ids.begin(), ids.end());
  absl::Status indexed = m.index->Add(vectors.data(), ids.data(),
                                      labels.data(), n);
  if (!indexed.ok()) {
    return absl::InternalError(absl::StrCat(
        "items were stored in the catalog but not indexed (the next open "
        "rebuilds the index): ",
        indexed.message()));
  }
  return ids;
}

absl::StatusOr<int64_t> Gallery::Remove(const std::vector<int64_t>& ids) {
  Impl& m = *impl_;
  RETURN_IF_ERROR(m.RefuseIfReadOnly("remove images"));
  std::unique_lock lock(m.write_mu);
  ASSIGN_OR_RETURN(int64_t removed, m.catalog->Remove(ids));
  absl::Status unindexed = m.index->Remove(ids);
  if (!unindexed.ok()) {
    return absl::InternalError(absl::StrCat(
        "items were removed from the catalog but not from the index (the "
        "next open rebuilds the index): ",
        unindexed.message()));
  }
  return removed;
}

absl::StatusOr<std::vector<std::vector<GalleryHit>>> Gallery::Search(
    const float* queries, int64_t n, const GallerySearchOptions& options) const {
  const Impl& m = *impl_;
  SearchParams params;
  params.k = options.k;
  params.nprobe = options.nprobe;
  params.ef_search = options.ef_search;
  if (!options.label_filter.empty()) {
    std::unique_lock lock(m.labels_mu);
    for (const std::string& name : options.label_filter) {
      auto it = m.label_of.find(name);
      if (it == m.label_of.end()) {
        std::vector<std::string> known;
        for (const std::string& s : m.label_names) {
          if (!s.empty()) known.push_back(s);
        }
        return absl::InvalidArgumentError(
            absl::StrCat("unknown label \"", name, "\" in the label filter; "
                         "the gallery's labels are: ",
                         absl::StrJoin(known, ", ")));
      }
      params.allowed_labels.push_back(it->second);
    }
  }
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(std::vector<std::vector<Neighbor>> neighbors,
                   m.index->Search(queries, n, params));
  const absl::Time searched = absl::Now();
  std::vector<int64_t> ids;
  for (const auto& row : neighbors) {
    for (const Neighbor& nb : row) ids.push_back(nb.id);
  }
  ASSIGN_OR_RETURN(std::vector<CatalogItem> items,
                   m.catalog->GetMany(ids, options.include_images));
  if (options.times != nullptr) {
    options.times->index += searched - start;
    options.times->catalog += absl::Now() - searched;
  }
  std::vector<std::vector<GalleryHit>> hits(n);
  size_t j = 0;
  for (int64_t q = 0; q < n; ++q) {
    for (const Neighbor& nb : neighbors[q]) {
      CatalogItem& item = items[j++];
      if (item.id == 0) continue;  // Removed since the index lookup.
      GalleryHit hit;
      hit.id = nb.id;
      hit.distance = nb.distance;
      hit.label = item.label;
      hit.label_name = std::move(item.label_name);
      hit.source = std::move(item.source);
      hit.image_png = std::move(item.image_png);
      hits[q].push_back(std::move(hit));
    }
  }
  return hits;
}

absl::StatusOr<CatalogItem> Gallery::Get(int64_t id) const {
  return impl_->catalog->Get(id, /*with_image=*/true);
}

int64_t Gallery::size() const { return impl_->index->size(); }
int Gallery::dim() const { return impl_->dim; }
std::vector<std::string> Gallery::label_names() const {
  std::unique_lock lock(impl_->labels_mu);
  return impl_->label_names;
}
const std::string& Gallery::index_spec() const { return impl_->spec; }
const std::string& Gallery::metric() const { return impl_->metric; }
const std::string& Gallery::dir() const { return impl_->dir; }
bool Gallery::read_only() const { return impl_->read_only; }
const std::string& Gallery::rebuild_reason() const {
  return impl_->rebuild_reason;
}

ReplicationStatus Gallery::replication() const {
  std::unique_lock lock(impl_->replication_mu);
  return impl_->replication;
}

std::string Gallery::catalog_description() const {
  return impl_->catalog->description();
}

absl::Status Gallery::SaveIndex() const {
  return impl_->index->Save(impl_->IndexPath());
}

}  // namespace embedsearch
