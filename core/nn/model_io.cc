// Encoder <-> ModelProto (proto/embedsearch/v1/bundle.proto) and the
// content-derived model version.
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/nn/encoder.h"
#include "core/nn/encoder_impl.h"
#include "core/nn/model_config.h"
#include "core/util/file.h"
#include "embedsearch/v1/bundle.pb.h"

namespace embedsearch {
namespace {

// 1: the legacy layout (older builds read it); 2: a layer list; 3: flip
// averaging (format 1 and 2 readers would ignore it and encode otherwise).
constexpr uint32_t kLegacyFormatVersion = 1;
constexpr uint32_t kLayerListFormatVersion = 2;
constexpr uint32_t kFlipAverageFormatVersion = 3;

// What a format-1 model could say about its input: stretch, black, one
// gray mean and std.
bool IsFormat1Preprocessing(const Preprocessing& p) {
  return p.resize == ResizePolicy::kStretch && p.background == Rgb{} &&
         p.mean.size() == 1 && p.std.size() == 1;
}

// Format 2 for anything a format-1 reader would misread: a layer list, or a
// preprocessing it would ignore (it would feed the model wrong inputs).
uint32_t FormatOf(const EncoderConfig& c) {
  if (c.flip_average) return kFlipAverageFormatVersion;
  return c.layers.empty() && IsFormat1Preprocessing(c.preprocessing)
             ? kLegacyFormatVersion
             : kLayerListFormatVersion;
}

uint32_t BackgroundToRgb24(Rgb c) {
  return (uint32_t{c.r} << 16) | (uint32_t{c.g} << 8) | c.b;
}

Rgb BackgroundFromRgb24(uint32_t v) {
  return {static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v)};
}

// FNV-1a 64 over 64-bit words (8x fewer multiplies than bytewise on the
// weights) with a final avalanche so every hex digit of the id mixes.

class Hasher {
 public:
  void Word(uint64_t w) {
    h_ ^= w;
    h_ *= 0x100000001B3ull;
  }
  void Bytes(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    Word(size);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      Word(w);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p + i, size - i);
    Word(tail);
  }
  void Int(int64_t v) { Word(static_cast<uint64_t>(v)); }
  void Float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    Word(u);
  }
  uint64_t Digest() const {
    uint64_t z = h_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t h_ = 0xCBF29CE484222325ull;
};

// Format-1 models hashed one mean and std; a config that format 1 could
// express hashes exactly that, so their stored versions still verify.
void HashPreprocessing(const Preprocessing& p, Hasher* h) {
  h->Float(p.mean[0]);
  h->Float(p.std[0]);
  if (IsFormat1Preprocessing(p)) return;
  h->Int(static_cast<int>(p.resize));
  h->Int(BackgroundToRgb24(p.background));
  h->Int(static_cast<int64_t>(p.mean.size()));
  for (float v : p.mean) h->Float(v);
  h->Int(static_cast<int64_t>(p.std.size()));
  for (float v : p.std) h->Float(v);
}

std::string VersionOf(const EncoderConfig& c,
                      const std::vector<std::unique_ptr<Parameter>>& params) {
  Hasher h;
  h.Int(FormatOf(c));
  h.Int(c.input_height);
  h.Int(c.input_width);
  h.Int(c.input_channels);
  h.Int(static_cast<int64_t>(c.conv_channels.size()));
  for (int w : c.conv_channels) h.Int(w);
  h.Int(c.batch_norm);
  h.Int(c.hidden);
  h.Int(c.embedding_dim);
  h.Int(c.l2_normalize);
  h.Float(c.dropout);
  HashPreprocessing(c.preprocessing, &h);
  for (const LayerSpec& l : c.layers) {  // none in format 1: its ids stay
    h.Int(static_cast<int>(l.kind));
    h.Bytes(l.name.data(), l.name.size());
    for (int v : {l.channels, l.kernel, l.stride, l.padding, int{l.bias},
                  int{l.projection}}) {
      h.Int(v);
    }
    h.Float(l.rate);
  }
  for (const auto& p : params) {
    h.Bytes(p->name.data(), p->name.size());
    h.Int(static_cast<int64_t>(p->shape.size()));
    for (int d : p->shape) h.Int(d);
    h.Bytes(p->value.data(), p->value.size() * sizeof(float));
  }
  return absl::StrFormat("enc-%012x", h.Digest() >> 16);
}

}  // namespace

v1::EncoderConfigProto EncoderConfigToProto(const EncoderConfig& c) {
  v1::EncoderConfigProto p;
  p.set_input_height(c.input_height);
  p.set_input_width(c.input_width);
  p.set_input_channels(c.input_channels);
  for (int w : c.conv_channels) p.add_conv_channels(w);
  p.set_batch_norm(c.batch_norm);
  p.set_hidden(c.hidden);
  p.set_embedding_dim(c.embedding_dim);
  p.set_l2_normalize(c.l2_normalize);
  p.set_dropout(c.dropout);
  p.set_flip_average(c.flip_average);
  const Preprocessing& pre = c.preprocessing;
  p.set_input_mean(pre.mean.empty() ? 0.0f : pre.mean[0]);
  p.set_input_std(pre.std.empty() ? 0.0f : pre.std[0]);
  p.set_input_resize(static_cast<v1::InputResize>(pre.resize));
  p.set_background_rgb(BackgroundToRgb24(pre.background));
  if (pre.mean.size() > 1 || pre.std.size() > 1) {
    p.mutable_channel_mean()->Add(pre.mean.begin(), pre.mean.end());
    p.mutable_channel_std()->Add(pre.std.begin(), pre.std.end());
  }
  for (const LayerSpec& l : c.layers) {
    v1::LayerProto* out = p.add_layers();
    out->set_kind(static_cast<v1::LayerProto::Kind>(static_cast<int>(l.kind)));
    out->set_name(l.name);
    out->set_channels(l.channels);
    out->set_kernel(l.kernel);
    out->set_stride(l.stride);
    out->set_padding(l.padding);
    out->set_bias(l.bias);
    out->set_rate(l.rate);
    out->set_projection(l.projection);
  }
  return p;
}

EncoderConfig EncoderConfigFromProto(const v1::EncoderConfigProto& p) {
  // uint32 fields beyond int range become negative and fail validation.
  auto to_int = [](uint32_t v) { return v > 0x7fffffffu ? -1 : static_cast<int>(v); };
  EncoderConfig c;
  c.input_height = to_int(p.input_height());
  c.input_width = to_int(p.input_width());
  c.input_channels = to_int(p.input_channels());
  c.conv_channels.clear();
  for (uint32_t w : p.conv_channels()) c.conv_channels.push_back(to_int(w));
  c.batch_norm = p.batch_norm();
  c.hidden = to_int(p.hidden());
  c.embedding_dim = to_int(p.embedding_dim());
  c.l2_normalize = p.l2_normalize();
  c.dropout = p.dropout();
  c.flip_average = p.flip_average();
  Preprocessing& pre = c.preprocessing;
  pre.resize = static_cast<ResizePolicy>(p.input_resize());
  pre.background = BackgroundFromRgb24(p.background_rgb());
  if (p.channel_mean_size() > 0 || p.channel_std_size() > 0) {
    pre.mean.assign(p.channel_mean().begin(), p.channel_mean().end());
    pre.std.assign(p.channel_std().begin(), p.channel_std().end());
  } else {  // format-1 models: one gray mean and std
    pre.mean = {p.input_mean()};
    pre.std = {p.input_std()};
  }
  for (const v1::LayerProto& in : p.layers()) {
    LayerSpec l;
    // An unknown kind (a newer build's) stays out of range and fails
    // validation as "unknown layer kind".
    l.kind = static_cast<LayerKind>(static_cast<int>(in.kind()));
    l.name = in.name();
    l.channels = to_int(in.channels());
    l.kernel = to_int(in.kernel());
    l.stride = to_int(in.stride());
    l.padding = to_int(in.padding());
    l.bias = in.bias();
    l.rate = in.rate();
    l.projection = in.projection();
    c.layers.push_back(std::move(l));
  }
  if (!c.layers.empty()) {  // derived from the list, whatever was stored
    c.conv_channels.clear();
    c.batch_norm = false;
    c.hidden = 0;
    c.dropout = 0.0f;
    c.l2_normalize = false;
  }
  return c;
}

std::string Encoder::model_version() const { return VersionOf(impl_->config, impl_->params); }

std::string Encoder::ToBytes() const {
  v1::ModelProto model;
  model.set_format_version(FormatOf(impl_->config));
  *model.mutable_config() = EncoderConfigToProto(impl_->config);
  for (const auto& p : impl_->params) {
    v1::TensorProto* t = model.add_tensors();
    t->set_name(p->name);
    for (int d : p->shape) t->add_shape(d);
    t->mutable_values()->Add(p->value.begin(), p->value.end());
  }
  model.set_model_version(model_version());
  return model.SerializeAsString();
}

absl::Status Encoder::Save(const std::string& path) const {
  return WriteFileAtomically(path, ToBytes());
}

absl::StatusOr<std::unique_ptr<Encoder>> Encoder::Load(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::unique_ptr<Encoder>> e = FromBytes(*bytes);
  if (!e.ok()) {
    return absl::Status(e.status().code(),
                        absl::StrCat("model ", path, ": ", e.status().message()));
  }
  return e;
}

absl::StatusOr<std::unique_ptr<Encoder>> Encoder::FromBytes(absl::string_view bytes) {
  v1::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat(
        "cannot parse ", bytes.size(), " bytes as a ModelProto (corrupt or truncated)"));
  }
  if (model.format_version() < kLegacyFormatVersion ||
      model.format_version() > kFlipAverageFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model format_version ", model.format_version(),
        " is not supported; this build reads format_version ", kLegacyFormatVersion, ", ",
        kLayerListFormatVersion, " and ", kFlipAverageFormatVersion));
  }
  const EncoderConfig config = EncoderConfigFromProto(model.config());
  if (FormatOf(config) != model.format_version()) {
    return absl::DataLossError(absl::StrCat(
        "model format_version ", model.format_version(), " with ",
        config.layers.size(),
        " layers in its config and flip_average ", config.flip_average ? "on" : "off",
        " (format 1 has no layers, format 2 needs them, format 3 is flip_average)"));
  }
  if (absl::Status s = ValidateEncoderConfig(config); !s.ok()) {
    return absl::DataLossError(absl::StrCat("invalid config in model: ", s.message()));
  }
  std::unique_ptr<Encoder> e(new Encoder());
  Impl& m = *e->impl_;
  m.Build(config);

  std::map<std::string, const v1::TensorProto*> by_name;
  for (const v1::TensorProto& t : model.tensors()) {
    if (!by_name.emplace(t.name(), &t).second) {
      return absl::DataLossError(absl::StrCat("tensor ", t.name(), " appears twice"));
    }
  }
  for (auto& p : m.params) {
    auto it = by_name.find(p->name);
    if (it == by_name.end()) {
      return absl::DataLossError(absl::StrCat("tensor ", p->name, " is missing"));
    }
    const v1::TensorProto& t = *it->second;
    std::vector<int> shape(t.shape().begin(), t.shape().end());
    if (shape != p->shape) {
      return absl::DataLossError(absl::StrCat(
          "tensor ", p->name, " has shape [", absl::StrJoin(t.shape(), ","),
          "], the config needs [", absl::StrJoin(p->shape, ","), "]"));
    }
    if (t.values_size() != static_cast<int64_t>(p->value.size())) {
      return absl::DataLossError(absl::StrCat("tensor ", p->name, " has ",
                                              t.values_size(), " values, shape needs ",
                                              p->value.size()));
    }
    std::copy(t.values().begin(), t.values().end(), p->value.begin());
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    return absl::DataLossError(absl::StrCat("unexpected tensor ",
                                            by_name.begin()->first, " in model"));
  }
  // The stored id doubles as a checksum of config and weights.
  if (!model.model_version().empty()) {
    const std::string actual = VersionOf(m.config, m.params);
    if (actual != model.model_version()) {
      return absl::DataLossError(absl::StrCat(
          "weights do not match model_version ", model.model_version(),
          " (they hash to ", actual, "): the file is corrupt"));
    }
  }
  return e;
}

}  // namespace embedsearch
