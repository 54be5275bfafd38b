// Encoder construction, inference (Encode) and training (Forward/Backward),
// all walks over the layer list (core/nn/layers.h). Model I/O lives in
// model_io.cc.
#include "core/nn/encoder.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/nn/encoder_impl.h"
#include "core/nn/parallel.h"
#include "core/nn/tensor.h"

namespace embedsearch {

using nn::ParallelChunks;
using nn::ThreadScratch;

namespace {

// Images per chunk of the linear layers in Encode: large enough for an
// efficient GEMM, small enough that the feature block stays in L2/L3.
constexpr int kEncodeChunk = 32;
constexpr size_t kMaxLayers = 256;

template <typename... Parts>
absl::Status Bad(const Parts&... parts) {
  return absl::InvalidArgumentError(absl::StrCat("encoder config: ", parts...));
}

absl::Status ValidateInput(const EncoderConfig& c) {
  if (c.input_height < 1 || c.input_height > 4096 || c.input_width < 1 ||
      c.input_width > 4096) {
    return Bad("input size ", c.input_height, "x", c.input_width,
               " must be within 1..4096");
  }
  if (c.input_channels < 1 || c.input_channels > 64) {
    return Bad("input_channels ", c.input_channels, " must be within 1..64");
  }
  if (absl::Status s = ValidatePreprocessing(c.preprocessing, c.input_channels);
      !s.ok()) {
    return Bad(s.message());
  }
  return absl::OkStatus();
}

absl::Status ValidateLegacyLayout(const EncoderConfig& c) {
  if (c.conv_channels.size() > 16) return Bad("at most 16 conv layers");
  int h = c.input_height, w = c.input_width;
  int64_t ch = c.input_channels;
  for (size_t i = 0; i < c.conv_channels.size(); ++i) {
    if (c.conv_channels[i] < 1 || c.conv_channels[i] > 4096) {
      return Bad("conv_channels[", i, "] = ", c.conv_channels[i],
                 " must be within 1..4096");
    }
    if (h < 2 || w < 2) {
      return Bad("input ", c.input_height, "x", c.input_width,
                 " is too small for ", c.conv_channels.size(),
                 " conv+pool layers");
    }
    h /= 2;
    w /= 2;
    ch = c.conv_channels[i];
  }
  if (c.hidden < 1 || c.hidden > 65536)
    return Bad("hidden ", c.hidden, " must be within 1..65536");
  if (c.embedding_dim < 1 || c.embedding_dim > 65536) {
    return Bad("embedding_dim ", c.embedding_dim, " must be within 1..65536");
  }
  if (ch * h * w * c.hidden > (int64_t{1} << 28)) {
    return Bad("fc1 would have ", ch * h * w * c.hidden,
               " weights (limit 2^28)");
  }
  if (!(c.dropout >= 0.0f && c.dropout < 1.0f)) {
    return Bad("dropout ", c.dropout, " must be in [0, 1)");
  }
  return absl::OkStatus();
}

absl::Status ValidateLayerList(const EncoderConfig& c) {
  if (c.layers.size() > kMaxLayers)
    return Bad("at most ", kMaxLayers, " layers");
  TensorShape shape{c.input_channels, c.input_height, c.input_width};
  std::set<std::string> names;
  for (size_t i = 0; i < c.layers.size(); ++i) {
    const LayerSpec& l = c.layers[i];
    absl::StatusOr<TensorShape> out = LayerOutputShape(l, shape);
    if (!out.ok()) return Bad("layer ", i, " (", out.status().message(), ")");
    if (!l.name.empty() && !names.insert(l.name).second) {
      return Bad("layer ", i, ": name ", l.name, " is used twice");
    }
    shape = *out;
  }
  if (shape.size() > 65536)
    return Bad("embedding size ", shape.size(), " is above 65536");
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateEncoderConfig(const EncoderConfig& c) {
  if (absl::Status s = ValidateInput(c); !s.ok()) return s;
  if (c.flip_average && c.layers.empty() && !c.l2_normalize) {
    return absl::InvalidArgumentError(
        "flip_average needs unit-norm embeddings (l2_normalize): it returns the "
        "normalized sum of the two views");
  }
  return c.layers.empty() ? ValidateLegacyLayout(c) : ValidateLayerList(c);
}

std::vector<LayerSpec> EncoderLayers(const EncoderConfig& c) {
  if (!c.layers.empty()) return c.layers;
  std::vector<LayerSpec> out;
  for (size_t i = 0; i < c.conv_channels.size(); ++i) {
    out.push_back(ConvSpec(absl::StrCat("conv", i), c.conv_channels[i], 3, 1, 1,
                           /*bias=*/!c.batch_norm));
    if (c.batch_norm) out.push_back(BatchNormSpec(absl::StrCat("bn", i)));
    out.push_back(ReluSpec());
    out.push_back(MaxPoolSpec(2, 2));
  }
  out.push_back(LinearSpec("fc1", c.hidden));
  out.push_back(ReluSpec());
  if (c.dropout > 0.0f) out.push_back(DropoutSpec(c.dropout));
  out.push_back(LinearSpec("fc2", c.embedding_dim));
  if (c.l2_normalize) out.push_back(L2NormalizeSpec());
  return out;
}

std::string ArchitectureDifference(const EncoderConfig& stored,
                                   const EncoderConfig& now) {
  auto shape = [](const EncoderConfig& c) {
    return absl::StrCat(c.input_height, "x", c.input_width, "x",
                        c.input_channels);
  };
  if (shape(stored) != shape(now)) {
    return absl::StrCat("input: stored ", shape(stored), ", now ", shape(now));
  }
  const std::vector<LayerSpec> a = EncoderLayers(stored),
                               b = EncoderLayers(now);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size() && i < b.size() && a[i] == b[i]) continue;
    return absl::StrCat("layer ", i, ": stored ",
                        i < a.size() ? DescribeLayer(a[i]) : "(none)", ", now ",
                        i < b.size() ? DescribeLayer(b[i]) : "(none)");
  }
  if (stored.embedding_dim != now.embedding_dim) {
    return absl::StrCat("embedding_dim: stored ", stored.embedding_dim,
                        ", now ", now.embedding_dim);
  }
  const Preprocessing &sp = stored.preprocessing, &np = now.preprocessing;
  if (sp.mean != np.mean || sp.std != np.std) {
    return absl::StrCat("input normalization: stored mean ",
                        absl::StrJoin(sp.mean, "/"), " std ",
                        absl::StrJoin(sp.std, "/"), ", now mean ",
                        absl::StrJoin(np.mean, "/"), " std ",
                        absl::StrJoin(np.std, "/"));
  }
  auto describe = [](const Preprocessing& p) {
    return absl::StrFormat("%s on #%02x%02x%02x", ResizePolicyName(p.resize),
                           p.background.r, p.background.g, p.background.b);
  };
  if (sp.resize != np.resize || sp.background != np.background) {
    return absl::StrCat("input preprocessing: stored ", describe(sp),
                        ", now ", describe(np));
  }
  if (stored.flip_average != now.flip_average) {
    auto on_off = [](bool on) { return on ? "on" : "off"; };
    return absl::StrCat("flip_average: stored ", on_off(stored.flip_average), ", now ",
                        on_off(now.flip_average));
  }
  return "";
}

Parameter* Encoder::Impl::AddParameter(std::string name, std::vector<int> shape,
                                       bool trainable) {
  auto p = std::make_unique<Parameter>();
  p->name = std::move(name);
  p->shape = std::move(shape);
  p->value.assign(nn::NumElements(p->shape), 0.0f);
  p->grad.assign(p->value.size(), 0.0f);
  p->trainable = trainable;
  params.push_back(std::move(p));
  return params.back().get();
}

void Encoder::Impl::Build(const EncoderConfig& c) {
  config = c;
  if (!c.layers.empty()) {  // unused with a layer list; cleared as on load
    config.conv_channels.clear();
    config.batch_norm = false;
    config.hidden = 0;
    config.dropout = 0.0f;
    config.l2_normalize = false;
  }
  params.clear();
  const TensorShape input{c.input_channels, c.input_height, c.input_width};
  input_size = input.size();
  layers = nn::BuildLayers(
      EncoderLayers(c), input,
      [this](std::string name, std::vector<int> shape, bool trainable) {
        return AddParameter(std::move(name), std::move(shape), trainable);
      });
  config.embedding_dim = static_cast<int>(
      layers.empty() ? input_size : layers.back()->out().size());
  chunk_start = layers.size();
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i]->IsLinear()) {
      chunk_start = i;
      break;
    }
  }
}

Encoder::Encoder() : impl_(std::make_unique<Impl>()) {}
Encoder::~Encoder() = default;

absl::StatusOr<std::unique_ptr<Encoder>> Encoder::Create(
    const EncoderConfig& config, uint64_t seed) {
  if (absl::Status s = ValidateEncoderConfig(config); !s.ok()) return s;
  std::unique_ptr<Encoder> e(new Encoder());
  Impl& m = *e->impl_;
  m.Build(config);
  // He (Kaiming normal, fan_in) for layers followed by ReLU keeps the
  // activation variance constant through depth; Xavier (Glorot uniform) for
  // the last weight layer. Biases start at zero. Drawn in layer order.
  nn::Rng rng(seed);
  size_t last = m.layers.size();
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (m.layers[i]->HasWeights()) last = i;
  }
  for (size_t i = 0; i < m.layers.size(); ++i)
    m.layers[i]->Init(&rng, i == last);
  // Dropout masks come from their own stream, derived from the seed.
  m.dropout_rng = nn::Rng(seed ^ 0xD50F0A7D15EA5E5Dull);
  return e;
}

const EncoderConfig& Encoder::config() const { return impl_->config; }
int Encoder::dim() const { return impl_->config.embedding_dim; }
int64_t Encoder::input_size() const { return impl_->input_size; }
void Encoder::set_threads(int threads) { impl_->threads = std::max(0, threads); }
int Encoder::threads() const { return impl_->threads; }

std::vector<Parameter*> Encoder::parameters() {
  std::vector<Parameter*> out;
  for (auto& p : impl_->params) out.push_back(p.get());
  return out;
}

std::vector<const Parameter*> Encoder::parameters() const {
  std::vector<const Parameter*> out;
  for (auto& p : impl_->params) out.push_back(p.get());
  return out;
}

void Encoder::SeedDropout(uint64_t seed) {
  impl_->dropout_rng = nn::Rng(seed ^ 0xD50F0A7D15EA5E5Dull);
}

void Encoder::ZeroGrad() {
  for (auto& p : impl_->params) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
}

// ---------------------------------------------------------------------------
// Inference: layers before the first linear one run image by image (their
// activations stay in cache), the rest on chunks of kEncodeChunk images.

void Encoder::Encode(const float* input, int n, float* output, int threads) const {
  if (!impl_->config.flip_average || n <= 0) {
    EncodeViews(input, n, output, threads);
    return;
  }
  // Both views in one call, so the threads split 2n images: the inputs,
  // then their mirror images.
  const EncoderConfig& c = impl_->config;
  const int64_t size = impl_->input_size, dim = c.embedding_dim;
  const int w = c.input_width, rows = c.input_channels * c.input_height;
  std::vector<float> views(2 * size_t(n) * size);
  std::memcpy(views.data(), input, sizeof(float) * n * size);
  float* mirrored = views.data() + n * size;
  for (int64_t r = 0; r < int64_t{n} * rows; ++r) {
    const float* src = input + r * w;
    std::reverse_copy(src, src + w, mirrored + r * w);
  }
  std::vector<float> both(2 * size_t(n) * dim);
  EncodeViews(views.data(), 2 * n, both.data(), threads);
  for (int64_t i = 0; i < n; ++i) {
    const float* a = both.data() + i * dim;
    const float* b = both.data() + (n + i) * dim;
    double norm2 = 0;
    for (int64_t k = 0; k < dim; ++k) norm2 += double(a[k] + b[k]) * (a[k] + b[k]);
    // The two views of one image are never opposite for a trained model;
    // if they were, the sum is 0 and stays 0 rather than NaN.
    const float inv = norm2 > 0 ? static_cast<float>(1 / std::sqrt(norm2)) : 0.0f;
    for (int64_t k = 0; k < dim; ++k) output[i * dim + k] = (a[k] + b[k]) * inv;
  }
}

void Encoder::EncodeViews(const float* input, int n, float* output, int threads) const {
  const Impl& m = *impl_;
  if (n <= 0) return;
  const size_t count = m.layers.size();
  const int64_t dim = m.config.embedding_dim;
  // Per-call inference state (batch norm folded into convs) in the calling
  // thread's scratch: workers only read it.
  size_t state_size = 0;
  for (const auto& l : m.layers) state_size += l->InferenceStateSize();
  float* state =
      ThreadScratch(nn::kSlotInferState, std::max<size_t>(state_size, 1));
  {
    size_t offset = 0;
    for (const auto& l : m.layers) {
      l->PrepareInference(state + offset);
      offset += l->InferenceStateSize();
    }
  }
  size_t last_active = count, last_image_active = count;  // count: none
  size_t image_max = 1, chunk_max = 1;
  for (size_t i = 0; i < count; ++i) {
    const nn::Layer& l = *m.layers[i];
    if (l.IdentityAtInference()) continue;
    last_active = i;
    if (i < m.chunk_start) {
      last_image_active = i;
      image_max = std::max<size_t>(image_max, l.out().size());
    } else {
      chunk_max =
          std::max<size_t>(chunk_max, std::max(l.in().size(), l.out().size()));
    }
  }
  if (last_active == count) {  // no layer changes the input
    std::memcpy(output, input, sizeof(float) * n * dim);
    return;
  }
  const bool has_chunk_part = m.chunk_start < count;
  const int64_t flat =
      has_chunk_part ? m.layers[m.chunk_start]->in().size() : dim;

  ParallelChunks(n, threads, [&](int64_t begin, int64_t end, int) {
    float* ping = ThreadScratch(nn::kSlotPing, image_max);
    float* pong = ThreadScratch(nn::kSlotPong, image_max);
    float* chunk_a =
        ThreadScratch(nn::kSlotChunkA, size_t(kEncodeChunk) * chunk_max);
    float* chunk_b =
        ThreadScratch(nn::kSlotChunkB, size_t(kEncodeChunk) * chunk_max);
    for (int64_t s0 = begin; s0 < end; s0 += kEncodeChunk) {
      const int rows = static_cast<int>(std::min<int64_t>(kEncodeChunk, end - s0));
      const float* x_chunk = input + s0 * m.input_size;
      if (last_image_active != count) {
        // Image by image; the last of these layers writes into the chunk
        // (or, without linear layers, the output).
        float* target = has_chunk_part ? chunk_a : output + s0 * dim;
        for (int r = 0; r < rows; ++r) {
          const float* x = input + (s0 + r) * m.input_size;
          size_t offset = 0;
          for (size_t i = 0; i < m.chunk_start; ++i) {
            const nn::Layer& l = *m.layers[i];
            const float* layer_state = state + offset;
            offset += l.InferenceStateSize();
            if (l.IdentityAtInference()) continue;
            float* dst = i == last_image_active ? target + r * flat
                                                : (x == ping ? pong : ping);
            l.Infer(x, 1, dst, layer_state);
            x = dst;
          }
        }
        x_chunk = target;
      }
      if (!has_chunk_part) continue;
      size_t offset = 0;
      for (size_t i = 0; i < m.chunk_start; ++i)
        offset += m.layers[i]->InferenceStateSize();
      const float* x = x_chunk;
      for (size_t i = m.chunk_start; i < count; ++i) {
        const nn::Layer& l = *m.layers[i];
        const float* layer_state = state + offset;
        offset += l.InferenceStateSize();
        if (l.IdentityAtInference()) continue;
        float* dst = i == last_active ? output + s0 * dim
                                      : (x == chunk_a ? chunk_b : chunk_a);
        l.Infer(x, rows, dst, layer_state);
        x = dst;
      }
    }
  });
}

// ---------------------------------------------------------------------------
// Training.

void Encoder::Forward(const float* input, int n, float* output, bool training) {
  Impl& m = *impl_;
  m.n = n;
  m.training = training;
  m.have_forward = n > 0;
  if (n <= 0) return;
  const nn::RunContext ctx{m.threads, training, &m.dropout_rng, m.bn_options};
  m.acts.resize(m.layers.size() + 1);
  m.acts[0].assign(input, input + n * m.input_size);
  for (size_t i = 0; i < m.layers.size(); ++i) {
    nn::Layer& l = *m.layers[i];
    m.acts[i + 1].resize(size_t(n) * l.out().size());
    l.Forward(m.acts[i].data(), n, m.acts[i + 1].data(), ctx);
  }
  if (output != nullptr) {
    std::memcpy(output, m.acts.back().data(),
                sizeof(float) * m.acts.back().size());
  }
}

void Encoder::Backward(const float* grad_output) {
  Impl& m = *impl_;
  assert(m.have_forward && "Backward needs a preceding Forward");
  if (!m.have_forward) return;
  const nn::RunContext ctx{m.threads, m.training, &m.dropout_rng, m.bn_options};
  const int n = m.n;
  std::vector<float>* dout = &m.grad_a;
  std::vector<float>* din = &m.grad_b;
  dout->assign(grad_output, grad_output + size_t(n) * m.config.embedding_dim);
  for (size_t i = m.layers.size(); i-- > 0;) {
    nn::Layer& l = *m.layers[i];
    float* dx = nullptr;
    if (i > 0) {
      din->resize(size_t(n) * l.in().size());
      dx = din->data();
    }
    l.Backward(m.acts[i].data(), m.acts[i + 1].data(), dout->data(), n, dx,
               ctx);
    std::swap(dout, din);
  }
}

}  // namespace embedsearch
