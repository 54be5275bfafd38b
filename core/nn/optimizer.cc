#include "core/nn/optimizer.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/nn/parallel.h"

namespace embedsearch {
namespace {

constexpr char kMagic[] = "ESOPT1";  // 6 bytes + kind byte
constexpr uint8_t kSgd = 1, kAdam = 2;
constexpr size_t kParallelElements = 1 << 16;

void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<char*>(&v), 8); }

class Reader {
 public:
  explicit Reader(absl::string_view b) : b_(b) {}
  bool U64(uint64_t* v) { return Raw(v, 8); }
  bool Raw(void* dst, size_t n) {
    if (b_.size() - pos_ < n) return false;
    std::memcpy(dst, b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Str(std::string* s, size_t n) {
    if (b_.size() - pos_ < n) return false;
    s->assign(b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == b_.size(); }

 private:
  absl::string_view b_;
  size_t pos_ = 0;
};

class Sgd : public Optimizer {
 public:
  Sgd(std::vector<Parameter*> p, const SgdOptions& o)
      : Optimizer(std::move(p), kSgd, 1), o_(o) {}

  void Step(float lr) override {
    for (size_t i = 0; i < params_.size(); ++i) {
      Parameter& p = *params_[i];
      if (!p.trainable) continue;
      float* v = p.value.data();
      const float* g = p.grad.data();
      float* buf = buffers_[0][i].data();
      const size_t n = p.value.size();
      const float wd = o_.weight_decay, mu = o_.momentum;
      const bool first = steps_ == 0, nesterov = o_.nesterov;
      // Parallel only for big tensors: a fork costs more than a bias update.
      const int t = n >= kParallelElements ? nn::ResolveThreads(threads_) : 1;
#pragma omp parallel for num_threads(t) if (t > 1) schedule(static)
      for (int64_t j = 0; j < static_cast<int64_t>(n); ++j) {
        float d = g[j] + wd * v[j];
        if (mu != 0.0f) {
          buf[j] = first ? d : mu * buf[j] + d;
          d = nesterov ? d + mu * buf[j] : buf[j];
        }
        v[j] -= lr * d;
      }
    }
    ++steps_;
  }

 private:
  SgdOptions o_;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Parameter*> p, const AdamOptions& o)
      : Optimizer(std::move(p), kAdam, 2), o_(o) {}

  void Step(float lr) override {
    const int64_t t = steps_ + 1;
    const double bc1 = 1.0 - std::pow(double(o_.beta1), double(t));
    const double bc2 = 1.0 - std::pow(double(o_.beta2), double(t));
    const float step_size = static_cast<float>(lr / bc1);
    const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    const float b1 = o_.beta1, b2 = o_.beta2, eps = o_.eps;
    const float wd = o_.weight_decay;
    const bool decoupled = o_.decoupled_weight_decay;
    for (size_t i = 0; i < params_.size(); ++i) {
      Parameter& p = *params_[i];
      if (!p.trainable) continue;
      float* v = p.value.data();
      const float* g = p.grad.data();
      float* m1 = buffers_[0][i].data();
      float* m2 = buffers_[1][i].data();
      const size_t n = p.value.size();
      const int t = n >= kParallelElements ? nn::ResolveThreads(threads_) : 1;
#pragma omp parallel for num_threads(t) if (t > 1) schedule(static)
      for (int64_t j = 0; j < static_cast<int64_t>(n); ++j) {
        float d = g[j];
        if (decoupled) {
          v[j] *= 1.0f - lr * wd;
        } else {
          d += wd * v[j];
        }
        m1[j] = b1 * m1[j] + (1.0f - b1) * d;
        m2[j] = b2 * m2[j] + (1.0f - b2) * d * d;
        v[j] -= step_size * m1[j] / (std::sqrt(m2[j]) * inv_sqrt_bc2 + eps);
      }
    }
    ++steps_;
  }

 private:
  AdamOptions o_;
};

}  // namespace

Optimizer::Optimizer(std::vector<Parameter*> params, uint8_t kind, int buffers)
    : params_(std::move(params)), kind_(kind) {
  buffers_.resize(buffers);
  for (auto& b : buffers_) {
    for (Parameter* p : params_) b.emplace_back(p->value.size(), 0.0f);
  }
}

void Optimizer::ZeroGrad() {
  for (Parameter* p : params_) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
}

std::string Optimizer::SaveState() const {
  std::string out(kMagic, 6);
  out.push_back(static_cast<char>(kind_));
  PutU64(&out, static_cast<uint64_t>(steps_));
  PutU64(&out, params_.size());
  PutU64(&out, buffers_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    PutU64(&out, params_[i]->name.size());
    out += params_[i]->name;
    PutU64(&out, params_[i]->value.size());
    for (const auto& b : buffers_) {
      out.append(reinterpret_cast<const char*>(b[i].data()), b[i].size() * sizeof(float));
    }
  }
  return out;
}

absl::Status Optimizer::LoadState(absl::string_view bytes) {
  Reader r(bytes);
  std::string magic;
  uint8_t kind = 0;
  uint64_t steps, count, nbuf;
  if (!r.Str(&magic, 6) || magic != absl::string_view(kMagic, 6) || !r.Raw(&kind, 1)) {
    return absl::DataLossError("optimizer state: bad header (not an optimizer checkpoint)");
  }
  if (kind != kind_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer state is for ", kind == kSgd ? "SGD" : kind == kAdam ? "Adam" : "unknown",
        ", this optimizer is ", kind_ == kSgd ? "SGD" : "Adam"));
  }
  if (!r.U64(&steps) || !r.U64(&count) || !r.U64(&nbuf)) {
    return absl::DataLossError("optimizer state: truncated header");
  }
  if (count != params_.size() || nbuf != buffers_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer state has ", count, " parameters, this optimizer has ", params_.size()));
  }
  auto loaded = buffers_;
  for (size_t i = 0; i < params_.size(); ++i) {
    uint64_t len, size;
    std::string name;
    if (!r.U64(&len) || len > (1u << 20) || !r.Str(&name, len) || !r.U64(&size)) {
      return absl::DataLossError("optimizer state: truncated");
    }
    if (name != params_[i]->name || size != params_[i]->value.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "optimizer state parameter ", i, " is ", name, " (", size, " values), expected ",
          params_[i]->name, " (", params_[i]->value.size(), " values)"));
    }
    for (auto& b : loaded) {
      if (!r.Raw(b[i].data(), size * sizeof(float))) {
        return absl::DataLossError(absl::StrCat("optimizer state: truncated in ", name));
      }
    }
  }
  if (!r.done()) return absl::DataLossError("optimizer state: trailing bytes");
  buffers_ = std::move(loaded);
  steps_ = static_cast<int64_t>(steps);
  return absl::OkStatus();
}

std::unique_ptr<Optimizer> MakeSgd(std::vector<Parameter*> params,
                                   const SgdOptions& options) {
  return std::make_unique<Sgd>(std::move(params), options);
}

std::unique_ptr<Optimizer> MakeAdam(std::vector<Parameter*> params,
                                    const AdamOptions& options) {
  return std::make_unique<Adam>(std::move(params), options);
}

std::unique_ptr<Optimizer> MakeAdamW(std::vector<Parameter*> params,
                                     AdamOptions options) {
  options.decoupled_weight_decay = true;
  return std::make_unique<Adam>(std::move(params), options);
}

}  // namespace embedsearch
