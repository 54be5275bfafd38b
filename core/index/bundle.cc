#include "core/index/bundle.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/image/image.h"
#include "core/index/pg_catalog.h"
#include "core/index/sha256.h"
#include "core/util/file.h"
#include "core/util/status_macros.h"
#include "google/protobuf/text_format.h"

namespace embedsearch {
namespace {

constexpr char kManifestFile[] = "manifest.pb";
constexpr char kManifestText[] = "manifest.txt";
constexpr char kModelFile[] = "model.pb";
constexpr int64_t kInsertBatch = 2000;
constexpr size_t kInsertBatchBytes = size_t{64} << 20;

std::string Join(const std::string& dir, const char* name) {
  return (std::filesystem::path(dir) / name).string();
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

absl::Status FsyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  absl::Cleanup closer = [fd] { ::close(fd); };
  if (::fsync(fd) != 0) return ErrnoStatus(errno, "fsync", path);
  return absl::OkStatus();
}

std::string ParentOf(const std::string& dir) {
  std::filesystem::path p(dir);
  std::filesystem::path parent = p.parent_path();
  return parent.empty() ? "." : parent.string();
}

// Adds `prefix: ` to a status message, keeping the code.
absl::Status Annotate(const absl::Status& s, absl::string_view prefix) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, ": ", s.message()));
}

// Writes catalog.db, index.faiss, model.pb and the manifest into `tmp`.
absl::Status WriteContents(const std::string& tmp, const Encoder& encoder,
                           const Dataset& gallery, const float* embeddings,
                           const BundleWriteOptions& options) {
  const int dim = encoder.dim();
  const int64_t n = static_cast<int64_t>(gallery.size());
  const EncoderConfig& config = encoder.config();
  const std::string model_version = encoder.model_version();

  // model.pb, hashed as it is on disk.
  RETURN_IF_ERROR(encoder.Save(Join(tmp, kModelFile)));
  ASSIGN_OR_RETURN(std::string model_bytes, ReadFile(Join(tmp, kModelFile)));

  // catalog.db: labels keep the dataset's numbers; ids are 1..n.
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Catalog> catalog,
                     Catalog::Open(Join(tmp, kCatalogFile), dim));
    RETURN_IF_ERROR(catalog->DefineLabels(gallery.label_names));
    for (int64_t begin = 0, end = 0; begin < n; begin = end) {
      std::vector<CatalogItem> items;
      size_t picture_bytes = 0;  // bounds memory when pictures are large
      for (end = begin; end < n && end - begin < kInsertBatch &&
                        picture_bytes < kInsertBatchBytes;
           ++end) {
        const int64_t i = end;
        CatalogItem item;
        item.id = i + 1;
        item.label = gallery.labels[i];
        if (item.label < 0 ||
            static_cast<size_t>(item.label) >= gallery.label_names.size()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "gallery image ", i, " has label ", item.label, " but only ",
              gallery.label_names.size(), " label names"));
        }
        item.label_name = gallery.label_names[item.label];
        if (i < static_cast<int64_t>(gallery.sources.size())) {
          item.source = gallery.sources[i];
        }
        ASSIGN_OR_RETURN(item.image_png,
                         StoredPicture(gallery, static_cast<size_t>(i),
                                       options.max_picture_side));
        picture_bytes += item.image_png.size();
        item.embedding.assign(embeddings + i * dim, embeddings + (i + 1) * dim);
        item.model_version = model_version;
        items.push_back(std::move(item));
      }
      RETURN_IF_ERROR(catalog->Add(std::move(items)).status());
    }
  }  // Closing checkpoints the WAL into catalog.db.
  RETURN_IF_ERROR(FsyncFile(Join(tmp, kCatalogFile)));

  // index.faiss straight from the embeddings (same ids and labels).
  {
    ASSIGN_OR_RETURN(std::unique_ptr<VectorIndex> index,
                     VectorIndex::Create(options.index_spec, options.metric, dim));
    std::vector<int64_t> ids(n);
    for (int64_t i = 0; i < n; ++i) ids[i] = i + 1;
    RETURN_IF_ERROR(index->Add(embeddings, ids.data(), gallery.labels.data(), n));
    RETURN_IF_ERROR(index->Save(Join(tmp, kIndexFile)));
  }

  v1::BundleManifest manifest;
  manifest.set_format_version(kBundleFormatVersion);
  manifest.set_model_version(model_version);
  manifest.set_input_height(config.input_height);
  manifest.set_input_width(config.input_width);
  manifest.set_input_channels(config.input_channels);
  manifest.set_dim(dim);
  manifest.set_metric(options.metric);
  manifest.set_index_spec(options.index_spec);
  manifest.set_item_count(n);
  v1::FileChecksum* model_sum = manifest.add_files();
  model_sum->set_name(kModelFile);
  model_sum->set_sha256(Sha256Hex(model_bytes));
  model_sum->set_size(model_bytes.size());
  manifest.set_created_at(
      absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()));
  manifest.set_trainer_command(options.trainer_command);
  if (options.class_split.held_out_classes_size() > 0) {
    *manifest.mutable_class_split() = options.class_split;
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(manifest, &text);
  RETURN_IF_ERROR(WriteFileAtomically(Join(tmp, kManifestText), text));
  RETURN_IF_ERROR(
      WriteFileAtomically(Join(tmp, kManifestFile), manifest.SerializeAsString()));
  return SyncDirectory(tmp);
}

// Puts the complete bundle `tmp` at `dir`; the previous bundle (if any) is
// removed afterwards.
absl::Status SwapIn(const std::string& tmp, const std::string& dir) {
  const std::string parent = ParentOf(dir);
  if (!Exists(dir)) {
    if (::rename(tmp.c_str(), dir.c_str()) != 0) {
      return ErrnoStatus(errno, "rename into place", dir);
    }
    return SyncDirectory(parent);
  }
  // One atomic step: `dir` is always a complete bundle.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(),
                  RENAME_EXCHANGE) == 0) {
    RETURN_IF_ERROR(SyncDirectory(parent));
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);  // Now the old bundle.
    return absl::OkStatus();
  }
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
    return ErrnoStatus(errno, "exchange with", dir);
  }
  // Fallback: two renames; see the window described in bundle.h.
  std::string old = absl::StrCat(dir, ".old-", ::getpid());
  if (::rename(dir.c_str(), old.c_str()) != 0) {
    return ErrnoStatus(errno, "rename aside", dir);
  }
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    int err = errno;
    ::rename(old.c_str(), dir.c_str());  // Put the old one back.
    return ErrnoStatus(err, "rename into place", dir);
  }
  RETURN_IF_ERROR(SyncDirectory(parent));
  std::error_code ec;
  std::filesystem::remove_all(old, ec);
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteBundle(const std::string& dir, const Encoder& encoder,
                         const Dataset& gallery, const float* embeddings,
                         const BundleWriteOptions& options) {
  if (dir.empty()) return absl::InvalidArgumentError("bundle dir is empty");
  if (gallery.size() > 0 && embeddings == nullptr) {
    return absl::InvalidArgumentError("no embeddings for a non-empty gallery");
  }
  if (options.metric != "l2" && options.metric != "ip") {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric must be \"l2\" or \"ip\", got \"", options.metric, "\""));
  }
  std::string clean = dir;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  if (Exists(clean)) {
    std::error_code ec;
    bool empty = std::filesystem::is_empty(clean, ec);
    if (!Exists(Join(clean, kManifestFile)) && !(empty && !ec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          clean, " exists and is not a bundle (no manifest.pb); refusing to "
                 "replace it"));
    }
  }
  std::string tmpl = absl::StrCat(clean, ".tmp-XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return ErrnoStatus(errno, "create temporary directory", tmpl);
  }
  const std::string tmp = buf.data();
  bool done = false;
  absl::Cleanup cleanup = [&] {
    if (!done) {
      std::error_code ec;
      std::filesystem::remove_all(tmp, ec);
    }
  };
  RETURN_IF_ERROR(Annotate(
      WriteContents(tmp, encoder, gallery, embeddings, options),
      absl::StrCat("writing bundle ", clean)));
  RETURN_IF_ERROR(SwapIn(tmp, clean));
  done = true;
  return absl::OkStatus();
}

namespace {

// The gallery of a bundle served from a shared PostgreSQL catalog: the
// generation of the bundle's model version.
absl::StatusOr<std::unique_ptr<Gallery>> OpenSharedGallery(
    const v1::BundleManifest& manifest, const BundleLoadOptions& options) {
  const std::string& version = manifest.model_version();
  ASSIGN_OR_RETURN(std::vector<PgGeneration> generations,
                   ListPgGenerations(options.catalog));
  std::vector<std::string> published;
  for (const PgGeneration& g : generations)
    published.push_back(g.model_version);
  if (std::find(published.begin(), published.end(), version) ==
      published.end()) {
    ASSIGN_OR_RETURN(std::string where, DescribePostgresDsn(options.catalog));
    return absl::FailedPreconditionError(absl::StrCat(
        "the PostgreSQL catalog (", where, ") holds embeddings of model ",
        published.empty()
            ? "version (none)"
            : absl::StrCat("version ", absl::StrJoin(published, ", ")),
        ", this bundle's model version is ", version,
        ": refusing to serve it (publish it with `embedsearch-catalog publish "
        "--bundle DIR`, or serve a bundle of a published version)"));
  }
  const int dim = static_cast<int>(manifest.dim());
  absl::StatusOr<std::unique_ptr<PgCatalog>> catalog =
      PgCatalog::Open(options.catalog, dim, version);
  if (absl::IsNotFound(catalog.status()) ||
      absl::IsInvalidArgument(catalog.status())) {
    return absl::FailedPreconditionError(catalog.status().message());
  }
  RETURN_IF_ERROR(catalog.status());
  if ((*catalog)->model_version() != version) {
    return absl::DataLossError(absl::StrCat(
        "the PostgreSQL catalog (", (*catalog)->description(), "): generation ",
        version, " holds model version \"", (*catalog)->model_version(), "\""));
  }
  return Gallery::OpenShared(*std::move(catalog), manifest.index_spec(),
                             manifest.metric(), {}, options.replication);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Bundle>> Bundle::Load(
    const std::string& dir, const BundleLoadOptions& options) {
  const std::string manifest_path = Join(dir, kManifestFile);
  absl::StatusOr<std::string> manifest_bytes = ReadFile(manifest_path);
  if (absl::IsNotFound(manifest_bytes.status())) {
    std::string hint;
    if (!Exists(dir)) {
      hint = absl::StrCat(" (", dir, " does not exist; if an export was "
                          "interrupted, a complete bundle may be in ", dir,
                          ".old-* or ", dir, ".tmp-*)");
    }
    return absl::NotFoundError(absl::StrCat(
        manifest_path, " is missing: not a bundle directory", hint));
  }
  RETURN_IF_ERROR(manifest_bytes.status());
  std::unique_ptr<Bundle> bundle(new Bundle());
  bundle->dir_ = dir;
  v1::BundleManifest& manifest = bundle->manifest_;
  if (!manifest.ParseFromString(*manifest_bytes)) {
    return absl::DataLossError(
        absl::StrCat(manifest_path, ": corrupt (not a BundleManifest)"));
  }
  if (manifest.format_version() != kBundleFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        manifest_path, ": bundle format version ", manifest.format_version(),
        ", this build reads version ", kBundleFormatVersion));
  }
  if (manifest.metric() != "l2" && manifest.metric() != "ip") {
    return absl::DataLossError(absl::StrCat(
        manifest_path, ": metric \"", manifest.metric(),
        "\" is neither \"l2\" nor \"ip\""));
  }
  if (manifest.dim() == 0 || manifest.dim() > 65536) {
    return absl::DataLossError(
        absl::StrCat(manifest_path, ": invalid dim ", manifest.dim()));
  }
  const int dim = static_cast<int>(manifest.dim());
  {
    absl::StatusOr<std::unique_ptr<VectorIndex>> probe =
        VectorIndex::Create(manifest.index_spec(), manifest.metric(), dim);
    if (!probe.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(manifest_path, ": ", probe.status().message()));
    }
  }

  // model.pb against its checksum, then against the manifest.
  const v1::FileChecksum* model_sum = nullptr;
  for (const v1::FileChecksum& f : manifest.files()) {
    if (f.name() == kModelFile) model_sum = &f;
  }
  if (model_sum == nullptr) {
    return absl::DataLossError(
        absl::StrCat(manifest_path, ": no checksum for model.pb"));
  }
  const std::string model_path = Join(dir, kModelFile);
  absl::StatusOr<std::string> model_bytes = ReadFile(model_path);
  if (absl::IsNotFound(model_bytes.status())) {
    return absl::NotFoundError(absl::StrCat(model_path, " is missing"));
  }
  RETURN_IF_ERROR(model_bytes.status());
  if (model_bytes->size() != model_sum->size()) {
    return absl::DataLossError(absl::StrCat(
        model_path, ": ", model_bytes->size(), " bytes, the manifest says ",
        model_sum->size(), " (truncated or replaced)"));
  }
  std::string sha = Sha256Hex(*model_bytes);
  if (sha != model_sum->sha256()) {
    return absl::DataLossError(absl::StrCat(
        model_path, ": SHA-256 ", sha, " does not match the manifest's ",
        model_sum->sha256(), " (corrupt or replaced)"));
  }
  absl::StatusOr<std::unique_ptr<Encoder>> encoder =
      Encoder::FromBytes(*model_bytes);
  if (!encoder.ok()) return Annotate(encoder.status(), model_path);
  bundle->encoder_ = *std::move(encoder);
  const Encoder& enc = *bundle->encoder_;
  const EncoderConfig& config = enc.config();
  if (enc.dim() != dim) {
    return absl::FailedPreconditionError(absl::StrCat(
        model_path, ": the model makes ", enc.dim(),
        "-d embeddings, the manifest says ", dim));
  }
  if (config.input_height != static_cast<int>(manifest.input_height()) ||
      config.input_width != static_cast<int>(manifest.input_width()) ||
      config.input_channels != static_cast<int>(manifest.input_channels())) {
    return absl::FailedPreconditionError(absl::StrCat(
        model_path, ": the model takes ", config.input_channels, "x",
        config.input_height, "x", config.input_width, " inputs, the manifest says ",
        manifest.input_channels(), "x", manifest.input_height(), "x",
        manifest.input_width()));
  }
  if (enc.model_version() != manifest.model_version()) {
    return absl::FailedPreconditionError(absl::StrCat(
        model_path, ": model version ", enc.model_version(),
        ", the manifest says ", manifest.model_version()));
  }

  if (!options.catalog.empty()) {
    absl::StatusOr<std::unique_ptr<Gallery>> shared =
        OpenSharedGallery(manifest, options);
    if (!shared.ok()) return shared.status();
    bundle->gallery_ = *std::move(shared);
    return bundle;
  }
  // catalog.db: exists, intact, right schema and dim (checked read-only
  // before anything may create or modify it).
  const std::string catalog_path = Join(dir, kCatalogFile);
  if (!Exists(catalog_path)) {
    return absl::NotFoundError(absl::StrCat(catalog_path, " is missing"));
  }
  {
    absl::StatusOr<std::unique_ptr<Catalog>> ro =
        Catalog::OpenReadOnly(catalog_path);
    if (!ro.ok()) {
      return absl::DataLossError(absl::StrCat(
          catalog_path, ": cannot open: ", ro.status().message()));
    }
    absl::Status integrity = (*ro)->CheckIntegrity();
    if (!integrity.ok()) {
      return absl::DataLossError(integrity.message());
    }
    if ((*ro)->dim() != dim) {
      return absl::FailedPreconditionError(absl::StrCat(
          catalog_path, ": holds ", (*ro)->dim(),
          "-d embeddings, the manifest says ", dim));
    }
  }
  absl::StatusOr<std::unique_ptr<Gallery>> gallery = Gallery::Open(
      dir, dim, manifest.index_spec(), manifest.metric());
  if (!gallery.ok()) return Annotate(gallery.status(), dir);
  bundle->gallery_ = *std::move(gallery);
  return bundle;
}

}  // namespace embedsearch
