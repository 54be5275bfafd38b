// The runnable layers (see layers.h). ConvUnit carries the speed tricks of
// the pre-layer encoder: batch norm folded into the conv at inference,
// pooling before the bias + ReLU (4x smaller), and the sparse argmax
// backward of conv + ReLU + max-pool without batch norm.
#include "core/nn/layers.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "core/nn/conv2d.h"
#include "core/nn/dropout.h"
#include "core/nn/l2norm.h"
#include "core/nn/linear.h"
#include "core/nn/parallel.h"
#include "core/nn/pool.h"
#include "core/nn/relu.h"

namespace embedsearch {
namespace nn {
namespace {

void Copy(const float* from, int64_t count, float* to) {
  if (from != to) std::memcpy(to, from, sizeof(float) * count);
}

void HeNormal(Parameter* p, int fan_in, Rng* rng) {
  const float std = std::sqrt(2.0f / static_cast<float>(fan_in));
  for (float& v : p->value) v = std * rng->Normal();
}

void XavierUniform(Parameter* p, int fan_in, int fan_out, Rng* rng) {
  const float a = std::sqrt(6.0f / (fan_in + fan_out));
  for (float& v : p->value) v = rng->Uniform(-a, a);
}

// y = y + b[c] per channel, then ReLU if asked (in place, one image).
void BiasAndRelu(float* y, const float* bias, bool relu, int channels,
                 int spatial) {
  if (bias != nullptr && relu) {
    BiasReluForward(y, bias, 1, channels, spatial, y);
  } else if (bias != nullptr) {
    for (int c = 0; c < channels; ++c) {
      float* row = y + int64_t{c} * spatial;
      for (int j = 0; j < spatial; ++j) row[j] += bias[c];
    }
  } else if (relu) {
    ReluForward(y, int64_t{channels} * spatial, y);
  }
}

struct BatchNormParams {
  Parameter* gamma = nullptr;
  Parameter* beta = nullptr;
  Parameter* running_mean = nullptr;
  Parameter* running_var = nullptr;

  void Add(const std::string& name, int channels, const AddParameterFn& add) {
    gamma = add(name + ".weight", {channels}, true);
    std::fill(gamma->value.begin(), gamma->value.end(), 1.0f);
    beta = add(name + ".bias", {channels}, true);
    running_mean = add(name + ".running_mean", {channels}, false);
    running_var = add(name + ".running_var", {channels}, false);
    std::fill(running_var->value.begin(), running_var->value.end(), 1.0f);
  }
};

// ---------------------------------------------------------------------------
// conv [-> batch norm] [-> ReLU] [-> max-pool], run as one unit.

struct ConvUnitParts {
  LayerSpec conv;
  std::string bn_name;  // empty: no batch norm
  bool relu = false;
  bool pool = false;
  int pool_kernel = 2, pool_stride = 2;
};

class ConvUnit : public Layer {
 public:
  ConvUnit(const ConvUnitParts& p, TensorShape in, TensorShape out,
           const AddParameterFn& add)
      : Layer(in, out),
        has_bn_(!p.bn_name.empty()),
        relu_(p.relu),
        pool_on_(p.pool) {
    conv_ = {in.channels,   in.height,     in.width,      p.conv.channels,
             p.conv.kernel, p.conv.stride, p.conv.padding};
    pool_ = {p.conv.channels, conv_.out_height(), conv_.out_width(),
             p.pool_kernel, p.pool_stride};
    weight_ =
        add(p.conv.name + ".weight",
            {p.conv.channels, in.channels, p.conv.kernel, p.conv.kernel}, true);
    if (p.conv.bias)
      bias_ = add(p.conv.name + ".bias", {p.conv.channels}, true);
    if (has_bn_) bn_.Add(p.bn_name, p.conv.channels, add);
  }

  bool HasWeights() const override { return true; }
  void Init(Rng* rng, bool last) override {
    if (last) {
      XavierUniform(weight_, conv_.col_rows(),
                    conv_.out_channels * conv_.kernel * conv_.kernel, rng);
    } else {
      HeNormal(weight_, conv_.col_rows(), rng);
    }
  }

  size_t InferenceStateSize() const override {
    return has_bn_ ? conv_.weight_size() + conv_.out_channels : 0;
  }

  // Batch norm in eval mode is a per-channel affine map, folded into the
  // conv: w' = w * g/sqrt(v+eps), b' = beta + (bias - mean) * g/sqrt(v+eps).
  void PrepareInference(float* state) const override {
    if (!has_bn_) return;
    const int rows = conv_.col_rows();
    float* w = state;
    float* b = state + conv_.weight_size();
    const BatchNormOptions options;
    for (int oc = 0; oc < conv_.out_channels; ++oc) {
      const float scale = bn_.gamma->value[oc] /
                          std::sqrt(bn_.running_var->value[oc] + options.eps);
      for (int j = 0; j < rows; ++j) {
        w[oc * rows + j] = weight_->value[oc * rows + j] * scale;
      }
      if (bias_ == nullptr) {
        b[oc] = bn_.beta->value[oc] - bn_.running_mean->value[oc] * scale;
      } else {
        b[oc] = bn_.beta->value[oc] +
                (bias_->value[oc] - bn_.running_mean->value[oc]) * scale;
      }
    }
  }

  // Pooling before the bias and ReLU: max-pool commutes with adding a
  // per-channel constant and with ReLU, and its output is 4x smaller.
  void Infer(const float* in, int rows, float* out,
             const float* state) const override {
    const float* w = has_bn_ ? state : weight_->value.data();
    const float* b = has_bn_
                         ? state + conv_.weight_size()
                         : (bias_ != nullptr ? bias_->value.data() : nullptr);
    float* col =
        ThreadScratch(kSlotCol, size_t(conv_.col_rows()) * conv_.col_cols());
    for (int r = 0; r < rows; ++r) {
      const float* x = in + r * this->in().size();
      float* y = out + r * this->out().size();
      if (pool_on_) {
        float* conv = ThreadScratch(kSlotConvOut, conv_.out_size());
        Conv2dForwardImage(conv_, w, nullptr, x, col, conv);
        MaxPool2dForwardImage(pool_, conv, y, nullptr);
        BiasAndRelu(y, b, relu_, pool_.channels,
                    pool_.out_height() * pool_.out_width());
      } else {
        Conv2dForwardImage(conv_, w, nullptr, x, col, y);
        BiasAndRelu(y, b, relu_, conv_.out_channels, conv_.col_cols());
      }
    }
  }

  void Forward(const float* in, int n, float* out,
               const RunContext& ctx) override {
    training_ = ctx.training;
    if (pool_on_) argmax_.resize(size_t(n) * pool_.out_size());
    if (SparsePath()) {
      ForwardSparse(in, n, out, ctx);
    } else {
      ForwardDense(in, n, out, ctx);
    }
  }

  void Backward(const float* in, const float* out, float* dout, int n,
                float* din, const RunContext& ctx) override {
    if (SparsePath()) {
      BackwardSparse(in, out, dout, n, din, ctx);
    } else {
      BackwardDense(in, dout, n, din, ctx);
    }
  }

 private:
  // conv + bias + ReLU + max-pool without batch norm.
  bool SparsePath() const {
    return !has_bn_ && relu_ && pool_on_ && bias_ != nullptr;
  }

  void ForwardSparse(const float* x, int n, float* out, const RunContext& ctx) {
    const int64_t in_size = conv_.in_size(), out_size = pool_.out_size();
    const int spatial_out = pool_.out_height() * pool_.out_width();
    const size_t col_size = size_t(conv_.col_rows()) * conv_.col_cols();
    ParallelChunks(n, ctx.threads, [&](int64_t begin, int64_t end, int) {
      float* col = ThreadScratch(kSlotCol, col_size);
      float* conv = ThreadScratch(kSlotConvOut, conv_.out_size());
      for (int64_t i = begin; i < end; ++i) {
        float* dst = out + i * out_size;
        Conv2dForwardImage(conv_, weight_->value.data(), nullptr,
                           x + i * in_size, col, conv);
        MaxPool2dForwardImage(pool_, conv, dst, argmax_.data() + i * out_size);
        BiasReluForward(dst, bias_->value.data(), 1, pool_.channels,
                        spatial_out, dst);
      }
    });
  }

  // conv (+bias) -> [batch norm] -> [ReLU] -> [max-pool] over the batch.
  void ForwardDense(const float* x, int n, float* out, const RunContext& ctx) {
    const int64_t conv_size = conv_.out_size(), out_size = this->out().size();
    const int spatial = conv_.col_cols(), cout = conv_.out_channels;
    pre_.resize(size_t(n) * conv_size);
    Conv2dForward(conv_, weight_->value.data(),
                  bias_ != nullptr ? bias_->value.data() : nullptr, x, n,
                  pre_.data(), ctx.threads);
    float* a = pre_.data();
    if (has_bn_) {
      act_.resize(pre_.size());
      save_mean_.resize(cout);
      save_invstd_.resize(cout);
      if (ctx.training) {
        BatchNormForwardTrain(
            pre_.data(), n, cout, spatial, bn_.gamma->value.data(),
            bn_.beta->value.data(), ctx.bn, bn_.running_mean->value.data(),
            bn_.running_var->value.data(), act_.data(), save_mean_.data(),
            save_invstd_.data(), ctx.threads);
      } else {
        BatchNormForwardEval(
            pre_.data(), n, cout, spatial, bn_.gamma->value.data(),
            bn_.beta->value.data(), bn_.running_mean->value.data(),
            bn_.running_var->value.data(), ctx.bn, act_.data());
      }
      a = act_.data();
    }
    ParallelChunks(n, ctx.threads, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        float* ai = a + i * conv_size;
        if (relu_) ReluForward(ai, conv_size, ai);
        if (pool_on_) {
          MaxPool2dForwardImage(pool_, ai, out + i * out_size,
                                argmax_.data() + i * out_size);
        } else {
          Copy(ai, conv_size, out + i * out_size);
        }
      }
    });
  }

  // The gradient reaching the conv output is sparse: one position per
  // pooling window (the argmax), and zero where the ReLU was off -- at most
  // a quarter of the dense [C_out, H*W] matrix. So instead of two dense
  // GEMMs (dW = D col^T, dcol = W^T D) each non-zero (o, j, g) does two
  // contiguous axpys of length K = C_in*k*k on patch rows (im2row layout):
  //   dW[o, :] += g * patch[j, :],   dpatch[j, :] += g * W[o, :].
  // That is 4-8x fewer FLOPs than the dense backward. Weight and bias
  // gradients are summed per thread, then in thread order.
  void BackwardSparse(const float* x, const float* out, const float* dout,
                      int n, float* dx, const RunContext& ctx) {
    const int64_t in_size = conv_.in_size(), out_size = pool_.out_size();
    const int spatial_out = pool_.out_height() * pool_.out_width();
    const size_t col_size = size_t(conv_.col_rows()) * conv_.col_cols();
    const int64_t wsize = conv_.weight_size();
    const int cout = conv_.out_channels;
    const int slots = ChunkSlots(n, ctx.threads);
    const int kk = conv_.col_rows();
    const float* weight = weight_->value.data();
    std::vector<float> partial(size_t(slots) * (wsize + cout), 0.0f);
    ParallelChunks(n, ctx.threads, [&](int64_t begin, int64_t end, int slot) {
      float* patches = ThreadScratch(kSlotCol, col_size);
      float* dpatches = ThreadScratch(kSlotDcol, col_size);
      float* dpool = ThreadScratch(kSlotGrad, out_size);
      float* dw = partial.data() + slot * (wsize + cout);
      float* db = dw + wsize;
      for (int64_t i = begin; i < end; ++i) {
        BiasReluBackward(out + i * out_size, dout + i * out_size, 1, cout,
                         spatial_out, dpool, db);
        Im2Row(conv_, x + i * in_size, patches);
        if (dx != nullptr) std::memset(dpatches, 0, sizeof(float) * col_size);
        const int32_t* arg = argmax_.data() + i * out_size;
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
          Row2ImAdd(conv_, dpatches, dxi);
        }
      }
    });
    float* gw = weight_->grad.data();
    float* gb = bias_->grad.data();
    for (int t = 0; t < slots; ++t) {
      const float* dw = partial.data() + t * (wsize + cout);
      for (int64_t j = 0; j < wsize; ++j) gw[j] += dw[j];
      for (int j = 0; j < cout; ++j) gb[j] += dw[wsize + j];
    }
  }

  // Pool and ReLU backward into conv-output-shaped gradients, then batch
  // norm over the whole batch, then the conv per image. dout is only read.
  void BackwardDense(const float* x, const float* dout, int n, float* dx,
                     const RunContext& ctx) {
    const int64_t conv_size = conv_.out_size(), out_size = this->out().size();
    const int cout = conv_.out_channels;
    const float* a = has_bn_ ? act_.data() : pre_.data();
    // Kept between steps: a step does not allocate and zero 2 x 16 MB
    // (conv0 at batch 160). Every element is overwritten before it is read.
    dact_.resize(size_t(n) * conv_size);
    ParallelChunks(n, ctx.threads, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        float* d = dact_.data() + i * conv_size;
        if (pool_on_) {
          MaxPool2dBackwardImage(pool_, dout + i * out_size,
                                 argmax_.data() + i * out_size, d);
        } else {
          Copy(dout + i * out_size, conv_size, d);
        }
        if (relu_) ReluBackward(a + i * conv_size, d, conv_size, d);
      }
    });
    const float* g = dact_.data();
    if (has_bn_) {
      dpre_.resize(dact_.size());
      if (training_) {
        BatchNormBackwardTrain(pre_.data(), dact_.data(), n, cout,
                               conv_.col_cols(), bn_.gamma->value.data(),
                               save_mean_.data(), save_invstd_.data(),
                               dpre_.data(), bn_.gamma->grad.data(),
                               bn_.beta->grad.data(), ctx.threads);
      } else {
        BatchNormBackwardEval(
            pre_.data(), dact_.data(), n, cout, conv_.col_cols(),
            bn_.gamma->value.data(), bn_.running_mean->value.data(),
            bn_.running_var->value.data(), ctx.bn, dpre_.data(),
            bn_.gamma->grad.data(), bn_.beta->grad.data());
      }
      g = dpre_.data();
    }
    Conv2dBackward(conv_, weight_->value.data(), x, g, n, weight_->grad.data(),
                   bias_ != nullptr ? bias_->grad.data() : nullptr, dx,
                   ctx.threads);
  }

  Conv2dShape conv_;
  PoolShape pool_;
  bool has_bn_, relu_, pool_on_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  BatchNormParams bn_;
  bool training_ = false;
  // Training cache, sized for the last Forward's batch.
  std::vector<float> pre_, act_, save_mean_, save_invstd_, dact_, dpre_;
  std::vector<int32_t> argmax_;
};

// ---------------------------------------------------------------------------
// Stand-alone layers.

class BatchNormLayer : public Layer {
 public:
  BatchNormLayer(const LayerSpec& spec, TensorShape in,
                 const AddParameterFn& add)
      : Layer(in, in) {
    bn_.Add(spec.name, in.channels, add);
  }
  void Infer(const float* in, int rows, float* out,
             const float*) const override {
    BatchNormForwardEval(
        in, rows, this->in().channels, Spatial(), bn_.gamma->value.data(),
        bn_.beta->value.data(), bn_.running_mean->value.data(),
        bn_.running_var->value.data(), BatchNormOptions(), out);
  }
  void Forward(const float* in, int n, float* out,
               const RunContext& ctx) override {
    training_ = ctx.training;
    const int c = this->in().channels;
    if (!ctx.training) {
      BatchNormForwardEval(in, n, c, Spatial(), bn_.gamma->value.data(),
                           bn_.beta->value.data(),
                           bn_.running_mean->value.data(),
                           bn_.running_var->value.data(), ctx.bn, out);
      return;
    }
    save_mean_.resize(c);
    save_invstd_.resize(c);
    BatchNormForwardTrain(
        in, n, c, Spatial(), bn_.gamma->value.data(), bn_.beta->value.data(),
        ctx.bn, bn_.running_mean->value.data(), bn_.running_var->value.data(),
        out, save_mean_.data(), save_invstd_.data(), ctx.threads);
  }
  void Backward(const float* in, const float*, float* dout, int n, float* din,
                const RunContext& ctx) override {
    if (din == nullptr) {
      scratch_.resize(size_t(n) * this->in().size());
      din = scratch_.data();
    }
    const int c = this->in().channels;
    if (training_) {
      BatchNormBackwardTrain(in, dout, n, c, Spatial(), bn_.gamma->value.data(),
                             save_mean_.data(), save_invstd_.data(), din,
                             bn_.gamma->grad.data(), bn_.beta->grad.data(),
                             ctx.threads);
    } else {
      BatchNormBackwardEval(in, dout, n, c, Spatial(), bn_.gamma->value.data(),
                            bn_.running_mean->value.data(),
                            bn_.running_var->value.data(), ctx.bn, din,
                            bn_.gamma->grad.data(), bn_.beta->grad.data());
    }
  }

 private:
  int Spatial() const { return in().height * in().width; }
  BatchNormParams bn_;
  bool training_ = false;
  std::vector<float> save_mean_, save_invstd_, scratch_;
};

class ReluLayer : public Layer {
 public:
  explicit ReluLayer(TensorShape in) : Layer(in, in) {}
  void Infer(const float* in, int rows, float* out,
             const float*) const override {
    ReluForward(in, rows * this->in().size(), out);
  }
  void Forward(const float* in, int n, float* out, const RunContext&) override {
    ReluForward(in, n * this->in().size(), out);
  }
  void Backward(const float*, const float* out, float* dout, int n, float* din,
                const RunContext&) override {
    if (din != nullptr) ReluBackward(out, dout, n * in().size(), din);
  }
};

class MaxPoolLayer : public Layer {
 public:
  MaxPoolLayer(const LayerSpec& spec, TensorShape in, TensorShape out)
      : Layer(in, out),
        pool_{in.channels, in.height, in.width, spec.kernel, spec.stride} {}
  void Infer(const float* in, int rows, float* out,
             const float*) const override {
    for (int r = 0; r < rows; ++r) {
      MaxPool2dForwardImage(pool_, in + r * pool_.in_size(),
                            out + r * pool_.out_size(), nullptr);
    }
  }
  void Forward(const float* in, int n, float* out,
               const RunContext& ctx) override {
    argmax_.resize(size_t(n) * pool_.out_size());
    ParallelChunks(n, ctx.threads, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        MaxPool2dForwardImage(pool_, in + i * pool_.in_size(),
                              out + i * pool_.out_size(),
                              argmax_.data() + i * pool_.out_size());
      }
    });
  }
  void Backward(const float*, const float*, float* dout, int n, float* din,
                const RunContext& ctx) override {
    if (din == nullptr) return;
    ParallelChunks(n, ctx.threads, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        MaxPool2dBackwardImage(pool_, dout + i * pool_.out_size(),
                               argmax_.data() + i * pool_.out_size(),
                               din + i * pool_.in_size());
      }
    });
  }

 private:
  PoolShape pool_;
  std::vector<int32_t> argmax_;
};

// Average over k x k windows (floor mode, no padding).
class AvgPoolLayer : public Layer {
 public:
  AvgPoolLayer(const LayerSpec& spec, TensorShape in, TensorShape out)
      : Layer(in, out), k_(spec.kernel), s_(spec.stride) {}
  void Infer(const float* in, int rows, float* out,
             const float*) const override {
    for (int r = 0; r < rows; ++r)
      Image(in + r * this->in().size(), out + r * this->out().size());
  }
  void Forward(const float* in, int n, float* out,
               const RunContext& ctx) override {
    ParallelChunks(n, ctx.threads, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        Image(in + i * this->in().size(), out + i * this->out().size());
      }
    });
  }
  void Backward(const float*, const float*, float* dout, int n, float* din,
                const RunContext& ctx) override {
    if (din == nullptr) return;
    const TensorShape& a = in();
    const TensorShape& b = out();
    const float scale = 1.0f / static_cast<float>(k_ * k_);
    ParallelChunks(n, ctx.threads, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        float* dx = din + i * a.size();
        std::fill(dx, dx + a.size(), 0.0f);
        const float* dy = dout + i * b.size();
        for (int c = 0; c < a.channels; ++c) {
          for (int oy = 0; oy < b.height; ++oy) {
            for (int ox = 0; ox < b.width; ++ox) {
              const float g = dy[(c * b.height + oy) * b.width + ox] * scale;
              for (int ky = 0; ky < k_; ++ky) {
                float* row =
                    dx + (c * a.height + oy * s_ + ky) * a.width + ox * s_;
                for (int kx = 0; kx < k_; ++kx) row[kx] += g;
              }
            }
          }
        }
      }
    });
  }

 private:
  void Image(const float* x, float* y) const {
    const TensorShape& a = in();
    const TensorShape& b = out();
    const float scale = 1.0f / static_cast<float>(k_ * k_);
    for (int c = 0; c < a.channels; ++c) {
      for (int oy = 0; oy < b.height; ++oy) {
        for (int ox = 0; ox < b.width; ++ox) {
          float sum = 0.0f;
          for (int ky = 0; ky < k_; ++ky) {
            const float* row =
                x + (c * a.height + oy * s_ + ky) * a.width + ox * s_;
            for (int kx = 0; kx < k_; ++kx) sum += row[kx];
          }
          y[(c * b.height + oy) * b.width + ox] = sum * scale;
        }
      }
    }
  }
  int k_, s_;
};

class GlobalAvgPoolLayer : public Layer {
 public:
  GlobalAvgPoolLayer(TensorShape in, TensorShape out) : Layer(in, out) {}
  void Infer(const float* in, int rows, float* out,
             const float*) const override {
    GlobalAvgPoolForward(in, rows, this->in().channels, Spatial(), out);
  }
  void Forward(const float* in, int n, float* out, const RunContext&) override {
    GlobalAvgPoolForward(in, n, this->in().channels, Spatial(), out);
  }
  void Backward(const float*, const float*, float* dout, int n, float* din,
                const RunContext&) override {
    if (din != nullptr)
      GlobalAvgPoolBackward(dout, n, in().channels, Spatial(), din);
  }

 private:
  int Spatial() const { return in().height * in().width; }
};

// linear [-> ReLU], fused (LinearForward's relu saves a pass).
class LinearLayer : public Layer {
 public:
  LinearLayer(const LayerSpec& spec, bool relu, TensorShape in, TensorShape out,
              const AddParameterFn& add)
      : Layer(in, out),
        relu_(relu),
        in_features_(static_cast<int>(in.size())),
        out_features_(spec.channels) {
    weight_ = add(spec.name + ".weight", {out_features_, in_features_}, true);
    if (spec.bias) bias_ = add(spec.name + ".bias", {out_features_}, true);
  }
  bool IsLinear() const override { return true; }
  bool HasWeights() const override { return true; }
  void Init(Rng* rng, bool last) override {
    if (last) {
      XavierUniform(weight_, in_features_, out_features_, rng);
    } else {
      HeNormal(weight_, in_features_, rng);
    }
  }
  void Infer(const float* in, int rows, float* out,
             const float*) const override {
    LinearForward(in, rows, in_features_, out_features_, weight_->value.data(),
                  Bias(), out, 1, relu_);
  }
  void Forward(const float* in, int n, float* out,
               const RunContext& ctx) override {
    LinearForward(in, n, in_features_, out_features_, weight_->value.data(),
                  Bias(), out, ctx.threads, relu_);
  }
  void Backward(const float* in, const float* out, float* dout, int n,
                float* din, const RunContext& ctx) override {
    if (relu_) ReluBackward(out, dout, int64_t{n} * out_features_, dout);
    LinearBackward(in, dout, n, in_features_, out_features_,
                   weight_->value.data(), weight_->grad.data(),
                   bias_ != nullptr ? bias_->grad.data() : nullptr, din,
                   ctx.threads);
  }

 private:
  const float* Bias() const {
    return bias_ != nullptr ? bias_->value.data() : nullptr;
  }
  bool relu_;
  int in_features_, out_features_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
};

class DropoutLayer : public Layer {
 public:
  DropoutLayer(const LayerSpec& spec, TensorShape in)
      : Layer(in, in), rate_(spec.rate) {}
  bool IdentityAtInference() const override { return true; }
  void Infer(const float* in, int rows, float* out,
             const float*) const override {
    Copy(in, rows * this->in().size(), out);
  }
  void Forward(const float* in, int n, float* out,
               const RunContext& ctx) override {
    const int64_t count = n * this->in().size();
    masked_ = ctx.training && rate_ > 0.0f;
    if (masked_) {
      mask_.resize(count);
      DropoutForward(in, count, rate_, ctx.dropout_rng, out, mask_.data());
    } else {
      Copy(in, count, out);
    }
  }
  void Backward(const float*, const float*, float* dout, int n, float* din,
                const RunContext&) override {
    if (din == nullptr) return;
    if (masked_) {
      DropoutBackward(dout, mask_.data(), n * in().size(), din);
    } else {
      Copy(dout, n * in().size(), din);
    }
  }

 private:
  float rate_;
  bool masked_ = false;
  std::vector<float> mask_;
};

class L2NormalizeLayer : public Layer {
 public:
  explicit L2NormalizeLayer(TensorShape in) : Layer(in, in) {}
  void Infer(const float* in, int rows, float* out,
             const float*) const override {
    L2NormalizeForward(in, rows, static_cast<int>(this->in().size()), out,
                       nullptr);
  }
  void Forward(const float* in, int n, float* out, const RunContext&) override {
    norms_.resize(n);
    L2NormalizeForward(in, n, static_cast<int>(this->in().size()), out,
                       norms_.data());
  }
  void Backward(const float*, const float* out, float* dout, int n, float* din,
                const RunContext&) override {
    if (din == nullptr) return;
    L2NormalizeBackward(out, norms_.data(), dout, n,
                        static_cast<int>(in().size()), din);
  }

 private:
  std::vector<float> norms_;
};

// ---------------------------------------------------------------------------
// Residual block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

class ResidualBlock : public Layer {
 public:
  ResidualBlock(const LayerSpec& spec, TensorShape in, TensorShape out,
                const AddParameterFn& add)
      : Layer(in, out) {
    const TensorShape mid{spec.channels, out.height, out.width};
    ConvUnitParts a;
    a.conv =
        ConvSpec(spec.name + ".conv1", spec.channels, 3, spec.stride, 1, false);
    a.bn_name = spec.name + ".bn1";
    a.relu = true;
    a_ = std::make_unique<ConvUnit>(a, in, mid, add);
    ConvUnitParts b;
    b.conv = ConvSpec(spec.name + ".conv2", spec.channels, 3, 1, 1, false);
    b.bn_name = spec.name + ".bn2";
    b_ = std::make_unique<ConvUnit>(b, mid, out, add);
    if (spec.projection) {
      ConvUnitParts s;
      s.conv = ConvSpec(spec.name + ".proj", spec.channels, 1, spec.stride, 0,
                        false);
      s.bn_name = spec.name + ".proj_bn";
      shortcut_ = std::make_unique<ConvUnit>(s, in, out, add);
    }
  }

  bool HasWeights() const override { return true; }
  void Init(Rng* rng, bool last) override {
    a_->Init(rng, false);
    b_->Init(rng, last);
    if (shortcut_ != nullptr) shortcut_->Init(rng, last);
  }
  size_t InferenceStateSize() const override {
    return a_->InferenceStateSize() + b_->InferenceStateSize() +
           ShortcutStateSize();
  }
  void PrepareInference(float* state) const override {
    a_->PrepareInference(state);
    b_->PrepareInference(state + a_->InferenceStateSize());
    if (shortcut_ != nullptr) {
      shortcut_->PrepareInference(state + a_->InferenceStateSize() +
                                  b_->InferenceStateSize());
    }
  }

  void Infer(const float* in, int rows, float* out,
             const float* state) const override {
    const float* state_b = state + a_->InferenceStateSize();
    const float* state_s = state_b + b_->InferenceStateSize();
    const int64_t in_size = this->in().size(), out_size = this->out().size();
    float* mid = ThreadScratch(kSlotResidualA, a_->out().size());
    for (int r = 0; r < rows; ++r) {
      const float* x = in + r * in_size;
      float* y = out + r * out_size;
      a_->Infer(x, 1, mid, state);
      b_->Infer(mid, 1, y, state_b);
      const float* skip = x;
      if (shortcut_ != nullptr) {
        float* s = ThreadScratch(kSlotResidualShortcut, out_size);
        shortcut_->Infer(x, 1, s, state_s);
        skip = s;
      }
      for (int64_t j = 0; j < out_size; ++j)
        y[j] = std::max(0.0f, y[j] + skip[j]);
    }
  }

  void Forward(const float* in, int n, float* out,
               const RunContext& ctx) override {
    const int64_t out_size = this->out().size();
    mid_.resize(size_t(n) * a_->out().size());
    a_->Forward(in, n, mid_.data(), ctx);
    b_->Forward(mid_.data(), n, out, ctx);
    const float* skip = in;
    if (shortcut_ != nullptr) {
      skip_.resize(size_t(n) * out_size);
      shortcut_->Forward(in, n, skip_.data(), ctx);
      skip = skip_.data();
    }
    ParallelChunks(n * out_size, ctx.threads,
                   [&](int64_t begin, int64_t end, int) {
                     for (int64_t j = begin; j < end; ++j)
                       out[j] = std::max(0.0f, out[j] + skip[j]);
                   });
  }

  // The dense ConvUnit backward only reads dout and ignores `out`.
  void Backward(const float* in, const float* out, float* dout, int n,
                float* din, const RunContext& ctx) override {
    const int64_t count = n * this->out().size();
    ReluBackward(out, dout, count, dout);
    dmid_.resize(size_t(n) * a_->out().size());
    b_->Backward(mid_.data(), nullptr, dout, n, dmid_.data(), ctx);
    a_->Backward(in, mid_.data(), dmid_.data(), n, din, ctx);
    const int64_t in_count = n * this->in().size();
    if (shortcut_ != nullptr) {
      if (din != nullptr) dskip_.resize(in_count);
      shortcut_->Backward(in, nullptr, dout, n,
                          din != nullptr ? dskip_.data() : nullptr, ctx);
      if (din != nullptr) {
        for (int64_t j = 0; j < in_count; ++j) din[j] += dskip_[j];
      }
    } else if (din != nullptr) {
      for (int64_t j = 0; j < in_count; ++j) din[j] += dout[j];
    }
  }

 private:
  size_t ShortcutStateSize() const {
    return shortcut_ != nullptr ? shortcut_->InferenceStateSize() : 0;
  }
  std::unique_ptr<ConvUnit> a_, b_, shortcut_;
  std::vector<float> mid_, skip_, dmid_, dskip_;
};

bool Is(const std::vector<LayerSpec>& specs, size_t i, LayerKind kind) {
  return i < specs.size() && specs[i].kind == kind;
}

}  // namespace

std::vector<std::unique_ptr<Layer>> BuildLayers(
    const std::vector<LayerSpec>& specs, TensorShape input,
    const AddParameterFn& add) {
  std::vector<std::unique_ptr<Layer>> layers;
  TensorShape shape = input;
  auto next_shape = [&](const LayerSpec& spec) {
    shape = LayerOutputShape(spec, shape).value();
    return shape;
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    const LayerSpec& spec = specs[i];
    const TensorShape in = shape;
    switch (spec.kind) {
      case LayerKind::kConv: {
        ConvUnitParts parts;
        parts.conv = spec;
        next_shape(spec);
        if (Is(specs, i + 1, LayerKind::kBatchNorm))
          parts.bn_name = specs[++i].name;
        if (Is(specs, i + 1, LayerKind::kRelu)) parts.relu = (++i, true);
        if (Is(specs, i + 1, LayerKind::kMaxPool)) {
          const LayerSpec& pool = specs[++i];
          parts.pool = true;
          parts.pool_kernel = pool.kernel;
          parts.pool_stride = pool.stride;
          next_shape(pool);
        }
        layers.push_back(std::make_unique<ConvUnit>(parts, in, shape, add));
        break;
      }
      case LayerKind::kLinear: {
        next_shape(spec);
        const bool relu = Is(specs, i + 1, LayerKind::kRelu);
        if (relu) ++i;
        layers.push_back(
            std::make_unique<LinearLayer>(spec, relu, in, shape, add));
        break;
      }
      case LayerKind::kBatchNorm:
        layers.push_back(std::make_unique<BatchNormLayer>(spec, in, add));
        break;
      case LayerKind::kRelu:
        layers.push_back(std::make_unique<ReluLayer>(in));
        break;
      case LayerKind::kMaxPool:
        layers.push_back(
            std::make_unique<MaxPoolLayer>(spec, in, next_shape(spec)));
        break;
      case LayerKind::kAvgPool:
        layers.push_back(
            std::make_unique<AvgPoolLayer>(spec, in, next_shape(spec)));
        break;
      case LayerKind::kResidual:
        layers.push_back(
            std::make_unique<ResidualBlock>(spec, in, next_shape(spec), add));
        break;
      case LayerKind::kGlobalAvgPool:
        layers.push_back(
            std::make_unique<GlobalAvgPoolLayer>(in, next_shape(spec)));
        break;
      case LayerKind::kDropout:
        layers.push_back(std::make_unique<DropoutLayer>(spec, in));
        break;
      case LayerKind::kL2Normalize:
        layers.push_back(std::make_unique<L2NormalizeLayer>(in));
        break;
    }
  }
  return layers;
}

}  // namespace nn
}  // namespace embedsearch
