// The bundle: one directory the trainer writes and the server loads.
//
//   manifest.pb   BundleManifest (binary protobuf) + manifest.txt (text form)
//   model.pb      ModelProto (encoder weights and config)
//   catalog.db    SQLite catalog
//   index.faiss   FAISS index (derived; rebuilt when missing or stale)
//
// WriteBundle builds everything in "<dir>.tmp-<random>" and renames it over
// `dir` only when complete, so a crash leaves the previous bundle intact.
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
};

// `embeddings` holds gallery.size() * encoder.dim() floats, computed by
// `encoder` on `gallery`'s images.
absl::Status WriteBundle(const std::string& dir, const Encoder& encoder,
                         const Dataset& gallery, const float* embeddings,
                         const BundleWriteOptions& options = {});

class Bundle {
 public:
  // Validates the manifest (format version, dims, checksums of model and
  // catalog), loads the encoder and opens the gallery. Errors say which file
  // is wrong and how.
  static absl::StatusOr<std::unique_ptr<Bundle>> Load(const std::string& dir);

  const embedsearch::v1::BundleManifest& manifest() const { return manifest_; }
  const Encoder& encoder() const { return *encoder_; }
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
