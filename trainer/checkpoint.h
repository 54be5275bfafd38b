// Training checkpoints: named binary sections in one file, written
// atomically (WriteFileAtomically), so a crash or Ctrl-C while saving leaves
// the previous checkpoint intact.
//
// File layout: "ESCKPT01" magic, u32 section count, then per section
// u32 name length, name, u64 payload length, payload; finally a u64 FNV-1a
// hash of everything before it. Integers are little-endian.
#ifndef EMBEDSEARCH_TRAINER_CHECKPOINT_H_
#define EMBEDSEARCH_TRAINER_CHECKPOINT_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedsearch {

class Checkpoint {
 public:
  void Set(const std::string& name, std::string payload);
  // NotFound naming the section when absent.
  absl::StatusOr<std::string> Get(const std::string& name) const;
  bool Has(const std::string& name) const;

  std::string Serialize() const;
  // DataLoss for a bad magic, truncation or checksum mismatch.
  static absl::StatusOr<Checkpoint> Parse(absl::string_view bytes);

  absl::Status Save(const std::string& path) const;
  static absl::StatusOr<Checkpoint> Load(const std::string& path);

 private:
  std::map<std::string, std::string> sections_;
};

// 64-bit FNV-1a; also used to fingerprint trainer options.
uint64_t Fnv1a64(absl::string_view data, uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_CHECKPOINT_H_
