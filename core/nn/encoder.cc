// Encoder construction, inference (Encode) and training (Forward/Backward).
// Model I/O lives in model_io.cc.
#include "core/nn/encoder.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/nn/dropout.h"
#include "core/nn/encoder_impl.h"
#include "core/nn/l2norm.h"
#include "core/nn/linear.h"
#include "core/nn/parallel.h"
#include "core/nn/relu.h"
#include "core/nn/tensor.h"

namespace embedsearch {

using nn::ChunkSlots;
using nn::ParallelChunks;
using nn::ThreadScratch;

namespace {

// Scratch slots (see nn::ThreadScratch); conv2d.cc's batch helpers use 0-1,
// which the encoder never calls, so the slots below may overlap them.
enum Slot { kCol = 0, kConvOut = 1, kPing = 2, kPong = 3, kDcol = 4,
            kFeatures = 5, kHidden = 6, kGrad = 7 };

// Images per fully connected GEMM in Encode: large enough for an efficient
// GEMM, small enough that the feature block stays in L2/L3.
constexpr int kEncodeChunk = 32;

}  // namespace

absl::Status ValidateEncoderConfig(const EncoderConfig& c) {
  auto bad = [](auto... parts) {
    return absl::InvalidArgumentError(absl::StrCat("encoder config: ", parts...));
  };
  if (c.input_height < 1 || c.input_height > 4096 || c.input_width < 1 ||
      c.input_width > 4096) {
    return bad("input size ", c.input_height, "x", c.input_width,
               " must be within 1..4096");
  }
  if (c.input_channels < 1 || c.input_channels > 64) {
    return bad("input_channels ", c.input_channels, " must be within 1..64");
  }
  if (c.conv_channels.size() > 16) return bad("at most 16 conv layers");
  int h = c.input_height, w = c.input_width;
  int64_t ch = c.input_channels;
  for (size_t i = 0; i < c.conv_channels.size(); ++i) {
    if (c.conv_channels[i] < 1 || c.conv_channels[i] > 4096) {
      return bad("conv_channels[", i, "] = ", c.conv_channels[i],
                 " must be within 1..4096");
    }
    if (h < 2 || w < 2) {
      return bad("input ", c.input_height, "x", c.input_width, " is too small for ",
                 c.conv_channels.size(), " conv+pool layers");
    }
    h /= 2;
    w /= 2;
    ch = c.conv_channels[i];
  }
  if (c.hidden < 1 || c.hidden > 65536) return bad("hidden ", c.hidden, " must be within 1..65536");
  if (c.embedding_dim < 1 || c.embedding_dim > 65536) {
    return bad("embedding_dim ", c.embedding_dim, " must be within 1..65536");
  }
  if (ch * h * w * c.hidden > (int64_t{1} << 28)) {
    return bad("fc1 would have ", ch * h * w * c.hidden, " weights (limit 2^28)");
  }
  if (!(c.dropout >= 0.0f && c.dropout < 1.0f)) {
    return bad("dropout ", c.dropout, " must be in [0, 1)");
  }
  if (absl::Status s = ValidatePreprocessing(c.preprocessing, c.input_channels);
      !s.ok()) {
    return bad(s.message());
  }
  return absl::OkStatus();
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
  params.clear();
  stages.clear();
  int ch = c.input_channels, h = c.input_height, w = c.input_width;
  input_size = nn::FlattenedSize(ch, h, w);
  for (size_t i = 0; i < c.conv_channels.size(); ++i) {
    ConvStage s;
    s.conv = {ch, h, w, c.conv_channels[i], /*kernel=*/3, /*stride=*/1, /*padding=*/1};
    s.pool = {c.conv_channels[i], h, w, /*kernel=*/2, /*stride=*/2};
    const std::string conv = absl::StrCat("conv", i);
    s.weight = AddParameter(conv + ".weight", {c.conv_channels[i], ch, 3, 3});
    if (c.batch_norm) {
      const std::string bn = absl::StrCat("bn", i);
      s.gamma = AddParameter(bn + ".weight", {c.conv_channels[i]});
      std::fill(s.gamma->value.begin(), s.gamma->value.end(), 1.0f);
      s.beta = AddParameter(bn + ".bias", {c.conv_channels[i]});
      s.running_mean = AddParameter(bn + ".running_mean", {c.conv_channels[i]}, false);
      s.running_var = AddParameter(bn + ".running_var", {c.conv_channels[i]}, false);
      std::fill(s.running_var->value.begin(), s.running_var->value.end(), 1.0f);
    } else {
      s.bias = AddParameter(conv + ".bias", {c.conv_channels[i]});
    }
    ch = c.conv_channels[i];
    h = s.pool.out_height();
    w = s.pool.out_width();
    stages.push_back(std::move(s));
  }
  flat = nn::FlattenedSize(ch, h, w);
  fc1_weight = AddParameter("fc1.weight", {c.hidden, static_cast<int>(flat)});
  fc1_bias = AddParameter("fc1.bias", {c.hidden});
  fc2_weight = AddParameter("fc2.weight", {c.embedding_dim, c.hidden});
  fc2_bias = AddParameter("fc2.bias", {c.embedding_dim});
}

const float* Encoder::Impl::Fc2Input() const {
  return fc2_input.empty() ? hidden.data() : fc2_input.data();
}

Encoder::Encoder() : impl_(std::make_unique<Impl>()) {}
Encoder::~Encoder() = default;

absl::StatusOr<std::unique_ptr<Encoder>> Encoder::Create(
    const EncoderConfig& config, uint64_t seed) {
  if (absl::Status s = ValidateEncoderConfig(config); !s.ok()) return s;
  std::unique_ptr<Encoder> e(new Encoder());
  Impl& m = *e->impl_;
  m.Build(config);
  nn::Rng rng(seed);
  // He (Kaiming normal, fan_in) for layers followed by ReLU keeps the
  // activation variance constant through depth; Xavier (Glorot uniform) for
  // the last, linear layer. Biases start at zero.
  for (ConvStage& s : m.stages) {
    const float std = std::sqrt(2.0f / s.conv.col_rows());
    for (float& v : s.weight->value) v = std * rng.Normal();
  }
  {
    const float std = std::sqrt(2.0f / static_cast<float>(m.flat));
    for (float& v : m.fc1_weight->value) v = std * rng.Normal();
  }
  {
    const float a = std::sqrt(6.0f / (config.hidden + config.embedding_dim));
    for (float& v : m.fc2_weight->value) v = rng.Uniform(-a, a);
  }
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
// Inference.

void Encoder::Encode(const float* input, int n, float* output, int threads) const {
  const Impl& m = *impl_;
  if (n <= 0) return;
  const EncoderConfig& c = m.config;
  const size_t num_stages = m.stages.size();

  // Per-stage (weight, bias) for the fused conv -> pool -> bias+ReLU path.
  // Batch norm in eval mode is a per-channel affine map, folded into the
  // conv: w' = w * g/sqrt(v+eps), b' = beta - mean * g/sqrt(v+eps).
  std::vector<float> folded;
  const float* stage_weight[16];
  const float* stage_bias[16];
  if (c.batch_norm) {
    size_t total = 0;
    for (const ConvStage& s : m.stages) total += s.conv.weight_size() + s.conv.out_channels;
    folded.resize(total);
    float* p = folded.data();
    for (size_t k = 0; k < num_stages; ++k) {
      const ConvStage& s = m.stages[k];
      const int rows = s.conv.col_rows();
      float* w = p;
      float* b = p + s.conv.weight_size();
      for (int oc = 0; oc < s.conv.out_channels; ++oc) {
        const float scale = s.gamma->value[oc] /
                            std::sqrt(s.running_var->value[oc] + m.bn_options.eps);
        for (int j = 0; j < rows; ++j) {
          w[oc * rows + j] = s.weight->value[oc * rows + j] * scale;
        }
        b[oc] = s.beta->value[oc] - s.running_mean->value[oc] * scale;
      }
      stage_weight[k] = w;
      stage_bias[k] = b;
      p += s.conv.weight_size() + s.conv.out_channels;
    }
  } else {
    for (size_t k = 0; k < num_stages; ++k) {
      stage_weight[k] = m.stages[k].weight->value.data();
      stage_bias[k] = m.stages[k].bias->value.data();
    }
  }

  size_t col_size = 1, conv_size = 1, act_size = 1;
  for (const ConvStage& s : m.stages) {
    col_size = std::max<size_t>(col_size, size_t(s.conv.col_rows()) * s.conv.col_cols());
    conv_size = std::max<size_t>(conv_size, s.conv.out_size());
    act_size = std::max<size_t>(act_size, s.pool.out_size());
  }
  const int hidden = c.hidden, dim = c.embedding_dim;
  const int64_t flat = m.flat;

  ParallelChunks(n, threads, [&](int64_t begin, int64_t end, int) {
    float* col = ThreadScratch(kCol, col_size);
    float* conv = ThreadScratch(kConvOut, conv_size);
    float* ping = ThreadScratch(kPing, act_size);
    float* pong = ThreadScratch(kPong, act_size);
    float* feat = ThreadScratch(kFeatures, size_t(kEncodeChunk) * flat);
    float* hid = ThreadScratch(kHidden, size_t(kEncodeChunk) * hidden);
    for (int64_t s0 = begin; s0 < end; s0 += kEncodeChunk) {
      const int rows = static_cast<int>(std::min<int64_t>(kEncodeChunk, end - s0));
      const float* fc_in = input + s0 * m.input_size;
      if (num_stages > 0) {
        for (int r = 0; r < rows; ++r) {
          const float* x = input + (s0 + r) * m.input_size;
          for (size_t k = 0; k < num_stages; ++k) {
            const ConvStage& s = m.stages[k];
            float* dst = (k + 1 == num_stages) ? feat + r * flat
                                               : (k % 2 == 0 ? ping : pong);
            nn::Conv2dForwardImage(s.conv, stage_weight[k], nullptr, x, col, conv);
            nn::MaxPool2dForwardImage(s.pool, conv, dst, nullptr);
            nn::BiasReluForward(dst, stage_bias[k], 1, s.pool.channels,
                                s.pool.out_height() * s.pool.out_width(), dst);
            x = dst;
          }
        }
        fc_in = feat;
      }
      float* y = output + s0 * dim;
      nn::LinearForward(fc_in, rows, static_cast<int>(flat), hidden,
                        m.fc1_weight->value.data(), m.fc1_bias->value.data(),
                        hid, 1, /*relu=*/true);
      nn::LinearForward(hid, rows, hidden, dim, m.fc2_weight->value.data(),
                        m.fc2_bias->value.data(), y, 1);
      if (c.l2_normalize) nn::L2NormalizeForward(y, rows, dim, y, nullptr);
    }
  });
}

// ---------------------------------------------------------------------------
// Training.

void Encoder::Forward(const float* input, int n, float* output, bool training) {
  Impl& m = *impl_;
  const EncoderConfig& c = m.config;
  const int threads = m.threads;
  m.n = n;
  m.training = training;
  m.have_forward = n > 0;
  if (n <= 0) return;
  m.input.assign(input, input + n * m.input_size);

  const float* x = m.input.data();
  for (ConvStage& s : m.stages) {
    const int64_t in_size = s.conv.in_size(), out_size = s.pool.out_size();
    const int spatial_out = s.pool.out_height() * s.pool.out_width();
    const size_t col_size = size_t(s.conv.col_rows()) * s.conv.col_cols();
    s.out.resize(n * out_size);
    s.argmax.resize(n * out_size);
    if (!c.batch_norm) {
      ParallelChunks(n, threads, [&](int64_t begin, int64_t end, int) {
        float* col = ThreadScratch(kCol, col_size);
        float* conv = ThreadScratch(kConvOut, s.conv.out_size());
        for (int64_t i = begin; i < end; ++i) {
          float* dst = s.out.data() + i * out_size;
          nn::Conv2dForwardImage(s.conv, s.weight->value.data(), nullptr,
                                 x + i * in_size, col, conv);
          nn::MaxPool2dForwardImage(s.pool, conv, dst, s.argmax.data() + i * out_size);
          nn::BiasReluForward(dst, s.bias->value.data(), 1, s.pool.channels,
                              spatial_out, dst);
        }
      });
    } else {
      const int64_t conv_size = s.conv.out_size();
      const int spatial = s.conv.col_cols();
      s.pre.resize(n * conv_size);
      s.act.resize(n * conv_size);
      nn::Conv2dForward(s.conv, s.weight->value.data(), nullptr, x, n,
                        s.pre.data(), threads);
      s.save_mean.resize(s.conv.out_channels);
      s.save_invstd.resize(s.conv.out_channels);
      if (training) {
        nn::BatchNormForwardTrain(s.pre.data(), n, s.conv.out_channels, spatial,
                                  s.gamma->value.data(), s.beta->value.data(),
                                  m.bn_options, s.running_mean->value.data(),
                                  s.running_var->value.data(), s.act.data(),
                                  s.save_mean.data(), s.save_invstd.data(), threads);
      } else {
        nn::BatchNormForwardEval(s.pre.data(), n, s.conv.out_channels, spatial,
                                 s.gamma->value.data(), s.beta->value.data(),
                                 s.running_mean->value.data(),
                                 s.running_var->value.data(), m.bn_options,
                                 s.act.data());
      }
      ParallelChunks(n, threads, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
          float* act = s.act.data() + i * conv_size;
          nn::ReluForward(act, conv_size, act);
          nn::MaxPool2dForwardImage(s.pool, act, s.out.data() + i * out_size,
                                    s.argmax.data() + i * out_size);
        }
      });
    }
    x = s.out.data();
  }

  const int hidden = c.hidden, dim = c.embedding_dim;
  m.hidden.resize(size_t(n) * hidden);
  nn::LinearForward(x, n, static_cast<int>(m.flat), hidden,
                    m.fc1_weight->value.data(), m.fc1_bias->value.data(),
                    m.hidden.data(), threads, /*relu=*/true);
  if (training && c.dropout > 0.0f) {
    m.fc2_input.resize(m.hidden.size());
    m.dropout_mask.resize(m.hidden.size());
    nn::DropoutForward(m.hidden.data(), m.hidden.size(), c.dropout,
                       &m.dropout_rng, m.fc2_input.data(), m.dropout_mask.data());
  } else {
    m.fc2_input.clear();
  }
  m.pre_norm.resize(size_t(n) * dim);
  nn::LinearForward(m.Fc2Input(), n, hidden, dim, m.fc2_weight->value.data(),
                    m.fc2_bias->value.data(), m.pre_norm.data(), threads);
  m.embedding.resize(m.pre_norm.size());
  if (c.l2_normalize) {
    m.norms.resize(n);
    nn::L2NormalizeForward(m.pre_norm.data(), n, dim, m.embedding.data(),
                           m.norms.data());
  } else {
    m.embedding = m.pre_norm;
  }
  if (output != nullptr) {
    std::memcpy(output, m.embedding.data(), sizeof(float) * m.embedding.size());
  }
}

void Encoder::Backward(const float* grad_output) {
  Impl& m = *impl_;
  assert(m.have_forward && "Backward needs a preceding Forward");
  if (!m.have_forward) return;
  const EncoderConfig& c = m.config;
  const int n = m.n, threads = m.threads;
  const int hidden = c.hidden, dim = c.embedding_dim;

  m.d_embedding.resize(size_t(n) * dim);
  if (c.l2_normalize) {
    nn::L2NormalizeBackward(m.embedding.data(), m.norms.data(), grad_output, n,
                            dim, m.d_embedding.data());
  } else {
    std::memcpy(m.d_embedding.data(), grad_output, sizeof(float) * n * dim);
  }
  m.d_hidden.resize(size_t(n) * hidden);
  nn::LinearBackward(m.Fc2Input(), m.d_embedding.data(), n, hidden, dim,
                     m.fc2_weight->value.data(), m.fc2_weight->grad.data(),
                     m.fc2_bias->grad.data(), m.d_hidden.data(), threads);
  if (!m.fc2_input.empty()) {
    nn::DropoutBackward(m.d_hidden.data(), m.dropout_mask.data(),
                        m.d_hidden.size(), m.d_hidden.data());
  }
  nn::ReluBackward(m.hidden.data(), m.d_hidden.data(), m.d_hidden.size(),
                   m.d_hidden.data());

  const size_t num_stages = m.stages.size();
  const float* flat_in = num_stages > 0 ? m.stages.back().out.data() : m.input.data();
  float* d_flat = nullptr;
  if (num_stages > 0) {
    m.stages.back().dout.resize(size_t(n) * m.flat);
    d_flat = m.stages.back().dout.data();
  }
  nn::LinearBackward(flat_in, m.d_hidden.data(), n, static_cast<int>(m.flat),
                     hidden, m.fc1_weight->value.data(),
                     m.fc1_weight->grad.data(), m.fc1_bias->grad.data(), d_flat,
                     threads);

  for (size_t k = num_stages; k-- > 0;) {
    ConvStage& s = m.stages[k];
    const float* x = k > 0 ? m.stages[k - 1].out.data() : m.input.data();
    float* dx = nullptr;
    if (k > 0) {
      m.stages[k - 1].dout.resize(size_t(n) * s.conv.in_size());
      dx = m.stages[k - 1].dout.data();
    }
    const int64_t in_size = s.conv.in_size(), out_size = s.pool.out_size();
    const int64_t conv_size = s.conv.out_size();
    const int spatial_out = s.pool.out_height() * s.pool.out_width();
    const size_t col_size = size_t(s.conv.col_rows()) * s.conv.col_cols();
    const int64_t wsize = s.conv.weight_size();
    const int cout = s.conv.out_channels;
    const int slots = ChunkSlots(n, threads);

    if (c.batch_norm) {
      // Pool and ReLU backward into act-shaped gradients, then BN backward
      // over the whole batch, then the conv backward per image.
      s.dact.resize(size_t(n) * conv_size);
      s.dpre.resize(s.dact.size());
      std::vector<float>& dact = s.dact;
      std::vector<float>& dpre = s.dpre;
      ParallelChunks(n, threads, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
          float* d = dact.data() + i * conv_size;
          nn::MaxPool2dBackwardImage(s.pool, s.dout.data() + i * out_size,
                                     s.argmax.data() + i * out_size, d);
          nn::ReluBackward(s.act.data() + i * conv_size, d, conv_size, d);
        }
      });
      if (m.training) {
        nn::BatchNormBackwardTrain(s.pre.data(), dact.data(), n, cout,
                                   s.conv.col_cols(), s.gamma->value.data(),
                                   s.save_mean.data(), s.save_invstd.data(),
                                   dpre.data(), s.gamma->grad.data(),
                                   s.beta->grad.data(), threads);
      } else {
        nn::BatchNormBackwardEval(s.pre.data(), dact.data(), n, cout,
                                  s.conv.col_cols(), s.gamma->value.data(),
                                  s.running_mean->value.data(),
                                  s.running_var->value.data(), m.bn_options,
                                  dpre.data(), s.gamma->grad.data(),
                                  s.beta->grad.data());
      }
      nn::Conv2dBackward(s.conv, s.weight->value.data(), x, dpre.data(), n,
                         s.weight->grad.data(), nullptr, dx, threads);
      continue;
    }

    // Without BN: out = relu(pool(conv(x)) + b). The gradient reaching the
    // conv output is sparse: one position per pooling window (the argmax),
    // and zero where the ReLU was off -- at most a quarter of the dense
    // [C_out, H*W] matrix. So instead of two dense GEMMs (dW = D col^T,
    // dcol = W^T D) each non-zero (o, j, g) does two contiguous axpys of
    // length K = C_in*9 on patch rows (im2row layout):
    //   dW[o, :] += g * patch[j, :],   dpatch[j, :] += g * W[o, :].
    // That is 4-8x fewer FLOPs than the dense backward. Weight and bias
    // gradients are summed per thread, then in thread order.
    const int kk = s.conv.col_rows();
    const float* weight = s.weight->value.data();
    std::vector<float> partial(size_t(slots) * (wsize + cout), 0.0f);
    ParallelChunks(n, threads, [&](int64_t begin, int64_t end, int slot) {
      float* patches = ThreadScratch(kCol, col_size);
      float* dpatches = ThreadScratch(kDcol, col_size);
      float* dpool = ThreadScratch(kGrad, out_size);
      float* dw = partial.data() + slot * (wsize + cout);
      float* db = dw + wsize;
      for (int64_t i = begin; i < end; ++i) {
        nn::BiasReluBackward(s.out.data() + i * out_size, s.dout.data() + i * out_size,
                             1, cout, spatial_out, dpool, db);
        nn::Im2Row(s.conv, x + i * in_size, patches);
        if (dx != nullptr) std::memset(dpatches, 0, sizeof(float) * col_size);
        const int32_t* arg = s.argmax.data() + i * out_size;
        for (int o = 0; o < cout; ++o) {
          float* __restrict dwo = dw + int64_t(o) * kk;
          const float* __restrict wo = weight + int64_t(o) * kk;
          for (int p = 0; p < spatial_out; ++p) {
            const float g = dpool[o * spatial_out + p];
            if (g == 0.0f) continue;
            const int64_t j = arg[o * spatial_out + p];
            const float* __restrict patch = patches + j * kk;
            for (int q = 0; q < kk; ++q) dwo[q] += g * patch[q];
            if (dx != nullptr) {
              float* __restrict dpatch = dpatches + j * kk;
              for (int q = 0; q < kk; ++q) dpatch[q] += g * wo[q];
            }
          }
        }
        if (dx != nullptr) {
          float* dxi = dx + i * in_size;
          std::memset(dxi, 0, sizeof(float) * in_size);
          nn::Row2ImAdd(s.conv, dpatches, dxi);
        }
      }
    });
    float* gw = s.weight->grad.data();
    float* gb = s.bias->grad.data();
    for (int t = 0; t < slots; ++t) {
      const float* dw = partial.data() + t * (wsize + cout);
      for (int64_t j = 0; j < wsize; ++j) gw[j] += dw[j];
      for (int j = 0; j < cout; ++j) gb[j] += dw[wsize + j];
    }
  }
}

}  // namespace embedsearch
