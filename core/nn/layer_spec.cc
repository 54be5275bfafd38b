#include "core/nn/layer_spec.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace embedsearch {
namespace {

// Bounds shared with the legacy config checks (encoder.cc).
constexpr int kMaxChannels = 4096;
constexpr int kMaxFeatures = 65536;
constexpr int64_t kMaxWeights = int64_t{1} << 28;

template <typename... Parts>
absl::Status Bad(const LayerSpec& l, const Parts&... parts) {
  return absl::InvalidArgumentError(absl::StrCat(LayerKindName(l.kind),
                                                 l.name.empty() ? "" : " ",
                                                 l.name, ": ", parts...));
}

absl::Status CheckRange(const LayerSpec& l, const char* field, int v, int lo,
                        int hi) {
  if (v < lo || v > hi)
    return Bad(l, field, " ", v, " must be within ", lo, "..", hi);
  return absl::OkStatus();
}

absl::StatusOr<TensorShape> Window(const LayerSpec& l, const TensorShape& in,
                                   int kernel, int stride, int padding) {
  const int h = in.height + 2 * padding, w = in.width + 2 * padding;
  if (h < kernel || w < kernel) {
    return Bad(l, kernel, "x", kernel, " window on ", in.height, "x", in.width,
               " input",
               padding > 0 ? absl::StrCat(" (padding ", padding, ")") : "",
               " would give an output below 1x1");
  }
  return TensorShape{in.channels, (h - kernel) / stride + 1,
                     (w - kernel) / stride + 1};
}

}  // namespace

const char* LayerKindName(LayerKind kind) {
  switch (kind) {
    case LayerKind::kConv:
      return "conv";
    case LayerKind::kBatchNorm:
      return "batch_norm";
    case LayerKind::kRelu:
      return "relu";
    case LayerKind::kMaxPool:
      return "max_pool";
    case LayerKind::kAvgPool:
      return "avg_pool";
    case LayerKind::kResidual:
      return "residual";
    case LayerKind::kGlobalAvgPool:
      return "global_avg_pool";
    case LayerKind::kLinear:
      return "linear";
    case LayerKind::kDropout:
      return "dropout";
    case LayerKind::kL2Normalize:
      return "l2_normalize";
  }
  return "unknown";
}

bool LayerSpec::operator==(const LayerSpec& o) const {
  return kind == o.kind && name == o.name && channels == o.channels &&
         kernel == o.kernel && stride == o.stride && padding == o.padding &&
         bias == o.bias && rate == o.rate && projection == o.projection;
}

LayerSpec ConvSpec(std::string name, int channels, int kernel, int stride,
                   int padding, bool bias) {
  LayerSpec l;
  l.kind = LayerKind::kConv;
  l.name = std::move(name);
  l.channels = channels;
  l.kernel = kernel;
  l.stride = stride;
  l.padding = padding;
  l.bias = bias;
  return l;
}

LayerSpec BatchNormSpec(std::string name) {
  LayerSpec l;
  l.kind = LayerKind::kBatchNorm;
  l.name = std::move(name);
  return l;
}

LayerSpec ReluSpec() { return LayerSpec{}; }

LayerSpec MaxPoolSpec(int kernel, int stride) {
  LayerSpec l;
  l.kind = LayerKind::kMaxPool;
  l.kernel = kernel;
  l.stride = stride;
  return l;
}

LayerSpec AvgPoolSpec(int kernel, int stride) {
  LayerSpec l = MaxPoolSpec(kernel, stride);
  l.kind = LayerKind::kAvgPool;
  return l;
}

LayerSpec ResidualSpec(std::string name, int channels, int stride,
                       bool projection) {
  LayerSpec l;
  l.kind = LayerKind::kResidual;
  l.name = std::move(name);
  l.channels = channels;
  l.stride = stride;
  l.projection = projection;
  l.bias = false;
  return l;
}

LayerSpec GlobalAvgPoolSpec() {
  LayerSpec l;
  l.kind = LayerKind::kGlobalAvgPool;
  return l;
}

LayerSpec LinearSpec(std::string name, int outputs, bool bias) {
  LayerSpec l;
  l.kind = LayerKind::kLinear;
  l.name = std::move(name);
  l.channels = outputs;
  l.bias = bias;
  return l;
}

LayerSpec DropoutSpec(float rate) {
  LayerSpec l;
  l.kind = LayerKind::kDropout;
  l.rate = rate;
  return l;
}

LayerSpec L2NormalizeSpec() {
  LayerSpec l;
  l.kind = LayerKind::kL2Normalize;
  return l;
}

absl::StatusOr<TensorShape> LayerOutputShape(const LayerSpec& l,
                                             const TensorShape& in) {
  const bool named =
      l.kind == LayerKind::kConv || l.kind == LayerKind::kBatchNorm ||
      l.kind == LayerKind::kResidual || l.kind == LayerKind::kLinear;
  if (named && l.name.empty())
    return Bad(l, "needs a name (its parameters' prefix)");
  switch (l.kind) {
    case LayerKind::kConv: {
      if (auto s = CheckRange(l, "channels", l.channels, 1, kMaxChannels);
          !s.ok())
        return s;
      if (auto s = CheckRange(l, "kernel", l.kernel, 1, 15); !s.ok()) return s;
      if (auto s = CheckRange(l, "stride", l.stride, 1, 8); !s.ok()) return s;
      if (auto s = CheckRange(l, "padding", l.padding, 0, l.kernel - 1);
          !s.ok())
        return s;
      if (int64_t{l.channels} * in.channels * l.kernel * l.kernel >
          kMaxWeights) {
        return Bad(l, "more than 2^28 weights");
      }
      absl::StatusOr<TensorShape> out =
          Window(l, in, l.kernel, l.stride, l.padding);
      if (out.ok()) out->channels = l.channels;
      return out;
    }
    case LayerKind::kMaxPool:
    case LayerKind::kAvgPool:
      if (auto s = CheckRange(l, "kernel", l.kernel, 1, 16); !s.ok()) return s;
      if (auto s = CheckRange(l, "stride", l.stride, 1, 16); !s.ok()) return s;
      return Window(l, in, l.kernel, l.stride, 0);
    case LayerKind::kResidual: {
      if (auto s = CheckRange(l, "channels", l.channels, 1, kMaxChannels);
          !s.ok())
        return s;
      if (auto s = CheckRange(l, "stride", l.stride, 1, 4); !s.ok()) return s;
      if (!l.projection && (in.channels != l.channels || l.stride != 1)) {
        return Bad(l, "identity shortcut needs input width ", in.channels,
                   " == block width ", l.channels, " and stride 1 (got stride ",
                   l.stride, "); use a projection shortcut");
      }
      if (int64_t{l.channels} * l.channels * 9 > kMaxWeights) {
        return Bad(l, "more than 2^28 weights");
      }
      absl::StatusOr<TensorShape> out = Window(l, in, 3, l.stride, 1);
      if (out.ok()) out->channels = l.channels;
      return out;
    }
    case LayerKind::kGlobalAvgPool:
      return TensorShape{in.channels, 1, 1};
    case LayerKind::kLinear:
      if (auto s = CheckRange(l, "outputs", l.channels, 1, kMaxFeatures);
          !s.ok())
        return s;
      if (in.size() * l.channels > kMaxWeights) {
        return Bad(l, in.size(), " inputs x ", l.channels,
                   " outputs is more than 2^28 weights");
      }
      return TensorShape{l.channels, 1, 1};
    case LayerKind::kDropout:
      if (!(l.rate >= 0.0f && l.rate < 1.0f))
        return Bad(l, "rate ", l.rate, " must be in [0, 1)");
      return in;
    case LayerKind::kBatchNorm:
    case LayerKind::kRelu:
    case LayerKind::kL2Normalize:
      return in;
  }
  return Bad(l, "unknown layer kind ", static_cast<int>(l.kind));
}

std::string DescribeLayer(const LayerSpec& l) {
  std::string s =
      absl::StrCat(l.name.empty() ? "" : l.name + ": ", LayerKindName(l.kind));
  switch (l.kind) {
    case LayerKind::kConv:
      absl::StrAppend(&s, " ", l.channels, " k", l.kernel, " s", l.stride, " p",
                      l.padding, l.bias ? " bias" : "");
      break;
    case LayerKind::kMaxPool:
    case LayerKind::kAvgPool:
      absl::StrAppend(&s, " k", l.kernel, " s", l.stride);
      break;
    case LayerKind::kResidual:
      absl::StrAppend(&s, " ", l.channels, " s", l.stride,
                      l.projection ? " projection" : " identity");
      break;
    case LayerKind::kLinear:
      absl::StrAppend(&s, " ", l.channels, l.bias ? " bias" : "");
      break;
    case LayerKind::kDropout:
      absl::StrAppend(&s, " ", l.rate);
      break;
    default:
      break;
  }
  return s;
}

}  // namespace embedsearch
