#include "core/nn/arch_spec.h"

#include <cctype>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace embedsearch {
namespace {

constexpr char kColourSmall[] = "colour-small";

// One token's letter options after its kind and main number: k3, s2, x4,
// i. Digits-only values; a letter without digits gets -1.
struct Options {
  int main = -1;  // the number right after the kind letters, -1 if none
  std::map<char, int> values;
};

absl::StatusOr<Options> ParseOptions(absl::string_view rest,
                                     absl::string_view allowed) {
  Options o;
  auto number = [&](int* out) -> bool {
    size_t n = 0;
    while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n])))
      ++n;
    if (n == 0) return false;
    if (n > 6 || !absl::SimpleAtoi(rest.substr(0, n), out)) {
      *out = 1 << 30;  // out of range; the layer check names it
    }
    rest.remove_prefix(n);
    return true;
  };
  int v = 0;
  if (number(&v)) o.main = v;
  while (!rest.empty()) {
    const char letter = rest[0];
    if (allowed.find(letter) == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected '", rest, "'"));
    }
    rest.remove_prefix(1);
    if (o.values.count(letter) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("option ", std::string(1, letter), " given twice"));
    }
    o.values[letter] = number(&v) ? v : -1;
  }
  return o;
}

int Get(const Options& o, char letter, int fallback) {
  auto it = o.values.find(letter);
  return it == o.values.end() || it->second < 0 ? fallback : it->second;
}

// Builds the layer list token by token, checking shapes as it goes.
class SpecBuilder {
 public:
  explicit SpecBuilder(TensorShape input) : shape_(input) {}

  absl::Status Token(absl::string_view token) {
    if (token.empty()) return absl::InvalidArgumentError("empty token");
    if (token == "gap") return Add(GlobalAvgPoolSpec());
    if (absl::ConsumePrefix(&token, "fc")) {
      int n = 0;
      if (!absl::SimpleAtoi(token, &n)) {
        return absl::InvalidArgumentError(
            "fc needs its output count, e.g. fc128");
      }
      linear_indices_.push_back(layers_.size());
      return Add(LinearSpec(absl::StrCat("fc", ++linears_), n));
    }
    const char kind = token[0];
    token.remove_prefix(1);
    if (kind == 'd') {
      float rate = 0;
      if (!absl::SimpleAtof(token, &rate)) {
        return absl::InvalidArgumentError("d needs a dropout rate, e.g. d0.2");
      }
      return Add(DropoutSpec(rate));
    }
    switch (kind) {
      case 'c':
        return Conv(token);
      case 'p':
      case 'a':
        return Pool(kind, token);
      case 'r':
        return Residual(token);
      default:
        return absl::InvalidArgumentError(
            "unknown layer (expected c, p, a, r, gap, fc or d)");
    }
  }

  // ReLU between consecutive linear layers, then the L2 normalization.
  std::vector<LayerSpec> Finish() {
    std::vector<LayerSpec> out;
    size_t next_linear = 0;
    for (size_t i = 0; i < layers_.size(); ++i) {
      out.push_back(layers_[i]);
      if (next_linear < linear_indices_.size() &&
          linear_indices_[next_linear] == i) {
        ++next_linear;
        if (next_linear < linear_indices_.size()) out.push_back(ReluSpec());
      }
    }
    out.push_back(L2NormalizeSpec());
    return out;
  }

 private:
  absl::Status Add(LayerSpec layer) {
    absl::StatusOr<TensorShape> out = LayerOutputShape(layer, shape_);
    if (!out.ok()) return out.status();
    shape_ = *out;
    layers_.push_back(std::move(layer));
    return absl::OkStatus();
  }

  absl::Status Conv(absl::string_view rest) {
    absl::StatusOr<Options> o = ParseOptions(rest, "kspx");
    if (!o.ok()) return o.status();
    if (o->main < 0)
      return absl::InvalidArgumentError("c needs its width, e.g. c32");
    const int kernel = Get(*o, 'k', 3);
    for (int i = 0, n = Get(*o, 'x', 1); i < n; ++i) {
      const int index = convs_++;
      LayerSpec conv =
          ConvSpec(absl::StrCat("conv", index), o->main, kernel,
                   i == 0 ? Get(*o, 's', 1) : 1, Get(*o, 'p', kernel / 2),
                   /*bias=*/false);
      if (absl::Status s = Add(std::move(conv)); !s.ok()) return s;
      if (absl::Status s = Add(BatchNormSpec(absl::StrCat("bn", index)));
          !s.ok())
        return s;
      if (absl::Status s = Add(ReluSpec()); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Pool(char kind, absl::string_view rest) {
    absl::StatusOr<Options> o = ParseOptions(rest, "s");
    if (!o.ok()) return o.status();
    const int kernel = o->main < 0 ? 2 : o->main;
    const int stride = Get(*o, 's', kernel);
    return Add(kind == 'p' ? MaxPoolSpec(kernel, stride)
                           : AvgPoolSpec(kernel, stride));
  }

  absl::Status Residual(absl::string_view rest) {
    absl::StatusOr<Options> o = ParseOptions(rest, "sxi");
    if (!o.ok()) return o.status();
    if (o->main < 0)
      return absl::InvalidArgumentError("r needs its width, e.g. r64");
    const bool identity = o->values.count('i') != 0;
    for (int i = 0, n = Get(*o, 'x', 1); i < n; ++i) {
      const int stride = i == 0 ? Get(*o, 's', 1) : 1;
      const bool projection =
          !identity && (shape_.channels != o->main || stride != 1);
      LayerSpec block = ResidualSpec(absl::StrCat("res", residuals_++), o->main,
                                     stride, projection);
      if (absl::Status s = Add(std::move(block)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  TensorShape shape_;
  std::vector<LayerSpec> layers_;
  std::vector<size_t> linear_indices_;
  int convs_ = 0, residuals_ = 0, linears_ = 0;
};

}  // namespace

std::vector<std::string> ArchPresetNames() {
  return {kLegacyArchPreset, kColourSmall};
}

absl::StatusOr<std::vector<LayerSpec>> ParseArchSpec(absl::string_view spec,
                                                     const TensorShape& input) {
  SpecBuilder builder(input);
  int position = 0;
  for (absl::string_view token : absl::StrSplit(spec, ',')) {
    ++position;
    token = absl::StripAsciiWhitespace(token);
    if (absl::Status s = builder.Token(token); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "arch spec token ", position, " '", token, "': ", s.message()));
    }
  }
  return builder.Finish();
}

absl::Status ApplyArch(absl::string_view arch, EncoderConfig* config) {
  if (arch.empty() || arch == kLegacyArchPreset) {
    config->layers.clear();
    return absl::OkStatus();
  }
  std::string spec(arch);
  if (arch == kColourSmall) {
    spec = absl::StrCat("c32,p,c64,p,r128,p,gap,fc", config->embedding_dim);
  }
  const TensorShape input{config->input_channels, config->input_height,
                          config->input_width};
  absl::StatusOr<std::vector<LayerSpec>> layers = ParseArchSpec(spec, input);
  if (!layers.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--arch ", arch, " on ", input.height, "x", input.width, "x",
        input.channels, " input: ", layers.status().message()));
  }
  config->layers = *std::move(layers);
  return absl::OkStatus();
}

absl::StatusOr<TensorShape> ParseInputShape(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, 'x');
  int v[3] = {0, 0, 0};
  bool ok = parts.size() == 3;
  for (size_t i = 0; ok && i < 3; ++i) ok = absl::SimpleAtoi(parts[i], &v[i]);
  if (!ok || v[0] < 1 || v[0] > 4096 || v[1] < 1 || v[1] > 4096 || v[2] < 1 ||
      v[2] > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input shape '", text,
        "' must be HxWxC, e.g. 64x64x3 (H, W in 1..4096, C in 1..64)"));
  }
  return TensorShape{v[2], v[0], v[1]};
}

}  // namespace embedsearch
