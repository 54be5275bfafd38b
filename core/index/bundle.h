// The bundle: one directory the trainer writes and the server loads.
//
//   manifest.pb   BundleManifest (binary protobuf); manifest.txt is the same
//                 in text format for humans (never read back)
//   model.pb      ModelProto (encoder weights and config); its size and
//                 SHA-256 are in the manifest
//   catalog.db    SQLite catalog (grows with online adds, so it has no
//                 checksum: Load runs PRAGMA integrity_check and checks the
//                 schema and dim instead)
//   index.faiss   VectorIndex file (derived; rebuilt when missing or stale)
//
// WriteBundle builds everything in "<dir>.tmp-XXXXXX" (every file and the
// directory fsynced), then swaps it with `dir` in one atomic
// renameat2(RENAME_EXCHANGE) and deletes the old bundle, so a crash leaves
// either the complete old bundle or the complete new one at `dir` (plus a
// stray .tmp-* directory that can be deleted). On filesystems without
// RENAME_EXCHANGE it renames the old bundle to "<dir>.old-XXXXXX" first;
// a crash between the two renames leaves no `dir` but both complete
// bundles beside it, and Load's NotFound message points at them.
// Do not write over a bundle a server is serving: online adds would go to
// the replaced catalog. Write a new directory and call Reload instead.
#ifndef EMBEDSEARCH_CORE_INDEX_BUNDLE_H_
#define EMBEDSEARCH_CORE_INDEX_BUNDLE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/data/dataset.h"
#include "core/index/gallery.h"
#include "core/nn/encoder.h"
#include "embedsearch/v1/bundle.pb.h"

namespace embedsearch {

inline constexpr int kBundleFormatVersion = 1;

struct BundleWriteOptions {
  std::string index_spec = "HNSW32";  // default: see BENCHMARKS.md (index table)
  std::string metric = "l2";          // default: squared L2 on unit vectors
  std::string trainer_command;        // recorded in the manifest
  // The trainer's held-out classes; default empty: not recorded.
  embedsearch::v1::ClassSplit class_split;
  // Stored pictures (GetImage, include_images, contact sheets) of galleries
  // read from files are the files themselves, re-encoded as PNG with their
  // longer side shrunk to at most this (0: full size).
  int max_picture_side = 256;  // default: 256 px
};

// `embeddings` holds gallery.size() * encoder.dim() floats, computed by
// `encoder` on `gallery`'s images. Gallery labels keep their numbers
// (label i is named gallery.label_names[i]); ids are 1..size() in dataset
// order; images are stored as PNG (StoredPicture in core/data/dataset.h:
// the user's own file, bounded by options.max_picture_side, for image
// folders; the held pixels otherwise). FailedPrecondition if `dir` exists and
// is neither empty nor a bundle (it is never deleted then).
absl::Status WriteBundle(const std::string& dir, const Encoder& encoder,
                         const Dataset& gallery, const float* embeddings,
                         const BundleWriteOptions& options = {});

struct BundleLoadOptions {
  // Empty (default): the gallery is the bundle's own catalog.db. A
  // PostgreSQL connection string: the gallery is that shared catalog (see
  // pg_catalog.h; the bundle's catalog.db and index.faiss are not used),
  // which must hold the bundle's model version.
  std::string catalog;
  ReplicationOptions replication;  // Shared catalogs only.
};

class Bundle {
 public:
  // Validates the manifest (format version, metric, index spec, dims and
  // input shape against the model, model.pb's size and SHA-256), loads the
  // encoder, checks the catalog (integrity, schema, dim) and opens the
  // gallery, rebuilding index.faiss when missing or stale. Errors name the
  // file and what is wrong: NotFound (missing file), DataLoss (corrupt
  // file or checksum mismatch), FailedPrecondition (files that disagree,
  // e.g. model dim vs manifest, or an unsupported format version).
  // With options.catalog set, the catalog checks are: reachable
  // (Unavailable), schema and dim (FailedPrecondition), a published
  // gallery of this bundle's model version (FailedPrecondition naming both
  // versions otherwise).
  static absl::StatusOr<std::unique_ptr<Bundle>> Load(
      const std::string& dir, const BundleLoadOptions& options = {});

  const embedsearch::v1::BundleManifest& manifest() const { return manifest_; }
  const Encoder& encoder() const { return *encoder_; }
  // The encoder's version, checked against model.pb at Load. Use this, not
  // encoder().model_version(), on hot paths: that one hashes every weight.
  const std::string& model_version() const { return manifest_.model_version(); }
  Gallery& gallery() { return *gallery_; }
  const Gallery& gallery() const { return *gallery_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  embedsearch::v1::BundleManifest manifest_;
  std::unique_ptr<Encoder> encoder_;
  std::unique_ptr<Gallery> gallery_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_BUNDLE_H_
