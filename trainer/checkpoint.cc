#include "trainer/checkpoint.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/file.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

constexpr char kMagic[] = "ESCKPT01";
constexpr size_t kMagicSize = 8;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  bool U32(uint32_t* v) {
    if (data_.size() - pos_ < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i)
      *v |= static_cast<uint32_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += 4;
    return true;
  }
  bool U64(uint64_t* v) {
    if (data_.size() - pos_ < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i)
      *v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += 8;
    return true;
  }
  bool Bytes(uint64_t n, std::string* out) {
    if (data_.size() - pos_ < n) return false;
    out->assign(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  absl::string_view data_;
  size_t pos_ = 0;
};

}  // namespace

uint64_t Fnv1a64(absl::string_view data, uint64_t seed) {
  uint64_t h = seed;
  for (char c : data) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

void Checkpoint::Set(const std::string& name, std::string payload) {
  sections_[name] = std::move(payload);
}

absl::StatusOr<std::string> Checkpoint::Get(const std::string& name) const {
  auto it = sections_.find(name);
  if (it == sections_.end()) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint has no section \"", name, "\""));
  }
  return it->second;
}

bool Checkpoint::Has(const std::string& name) const {
  return sections_.count(name) > 0;
}

std::string Checkpoint::Serialize() const {
  std::string out(kMagic, kMagicSize);
  PutU32(&out, static_cast<uint32_t>(sections_.size()));
  for (const auto& [name, payload] : sections_) {
    PutU32(&out, static_cast<uint32_t>(name.size()));
    out += name;
    PutU64(&out, payload.size());
    out += payload;
  }
  PutU64(&out, Fnv1a64(out));
  return out;
}

absl::StatusOr<Checkpoint> Checkpoint::Parse(absl::string_view bytes) {
  if (bytes.size() < kMagicSize + 4 + 8 ||
      std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    return absl::DataLossError("not a trainer checkpoint (bad magic or too short)");
  }
  const absl::string_view body = bytes.substr(0, bytes.size() - 8);
  Reader tail(bytes.substr(bytes.size() - 8));
  uint64_t stored = 0;
  tail.U64(&stored);
  if (stored != Fnv1a64(body)) {
    return absl::DataLossError("checkpoint checksum mismatch (corrupt or truncated)");
  }
  Reader r(body.substr(kMagicSize));
  uint32_t count = 0;
  if (!r.U32(&count)) return absl::DataLossError("checkpoint truncated");
  Checkpoint ckpt;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t name_len = 0;
    uint64_t len = 0;
    std::string name, payload;
    if (!r.U32(&name_len) || !r.Bytes(name_len, &name) || !r.U64(&len) ||
        !r.Bytes(len, &payload)) {
      return absl::DataLossError(
          absl::StrCat("checkpoint truncated in section ", i));
    }
    ckpt.sections_[name] = std::move(payload);
  }
  if (r.pos() != body.size() - kMagicSize) {
    return absl::DataLossError("checkpoint has trailing bytes");
  }
  return ckpt;
}

absl::Status Checkpoint::Save(const std::string& path) const {
  return WriteFileAtomically(path, Serialize());
}

absl::StatusOr<Checkpoint> Checkpoint::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  absl::StatusOr<Checkpoint> ckpt = Parse(bytes);
  if (!ckpt.ok()) {
    return absl::Status(ckpt.status().code(),
                        absl::StrCat(path, ": ", ckpt.status().message()));
  }
  return ckpt;
}

}  // namespace embedsearch
