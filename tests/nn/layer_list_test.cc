// Encoders built from layer lists (format 2): every layer kind and the
// residual block gradient-checked end to end, inference equal to the
// training forward, save/load, and bad lists refused naming the layer.
#include <cmath>
#include <string>
#include <vector>

#include "core/nn/encoder.h"
#include "core/nn/model_config.h"
#include "core/nn/random.h"
#include "embedsearch/v1/bundle.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;

EncoderConfig ListConfig(std::vector<LayerSpec> layers, int channels = 2,
                         int size = 8) {
  EncoderConfig c;
  c.input_height = size;
  c.input_width = size;
  c.input_channels = channels;
  c.layers = std::move(layers);
  return c;
}

std::vector<float> RandomVector(size_t n, uint64_t seed) {
  nn::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.Normal();
  return v;
}

// L = sum(out * r) in double, with the same dropout masks every time.
double Loss(Encoder& e, const std::vector<float>& x, int n,
            const std::vector<float>& r, bool training) {
  std::vector<float> out(n * e.dim());
  e.SeedDropout(9);
  e.Forward(x.data(), n, out.data(), training);
  double l = 0;
  for (size_t i = 0; i < out.size(); ++i) l += double(out[i]) * r[i];
  return l;
}

// Central differences of every trainable tensor (a few entries each) against
// Backward. Running statistics are restored around each evaluation.
void CheckGradients(const EncoderConfig& config, bool training,
                    const std::string& what) {
  auto created = Encoder::Create(config, 7);
  ASSERT_TRUE(created.ok()) << what << ": " << created.status();
  Encoder& e = **created;
  for (Parameter* p : e.parameters()) {  // non-trivial running stats
    if (p->name.find("running_var") != std::string::npos) {
      for (float& v : p->value) v = 1.5f;
    }
    if (p->name.find("running_mean") != std::string::npos) {
      for (float& v : p->value) v = 0.2f;
    }
  }
  const int n = 3;
  std::vector<float> x = RandomVector(n * e.input_size(), 11);
  std::vector<float> r = RandomVector(n * e.dim(), 12);
  std::vector<std::vector<float>> stats;
  for (Parameter* q : e.parameters()) {
    if (!q->trainable) stats.push_back(q->value);
  }
  auto restore = [&] {
    size_t s = 0;
    for (Parameter* q : e.parameters()) {
      if (!q->trainable) q->value = stats[s++];
    }
  };
  e.ZeroGrad();
  Loss(e, x, n, r, training);
  restore();
  e.Backward(r.data());
  nn::Rng pick(5);
  int checked = 0;
  for (Parameter* p : e.parameters()) {
    if (!p->trainable) continue;
    for (int k = 0; k < 4; ++k) {
      const size_t j = pick.Next() % p->value.size();
      const float orig = p->value[j];
      const float h = 2e-4f;  // small: BN in training moves many ReLU kinks
      p->value[j] = orig + h;
      const double lp = Loss(e, x, n, r, training);
      restore();
      p->value[j] = orig - h;
      const double lm = Loss(e, x, n, r, training);
      restore();
      p->value[j] = orig;
      const double numeric = (lp - lm) / (2 * h);
      EXPECT_NEAR(p->grad[j], numeric, 2e-2 * std::max(1.0, std::fabs(numeric)))
          << what << " " << p->name << "[" << j << "] training=" << training;
      ++checked;
    }
  }
  EXPECT_GE(checked, 8) << what;
}

struct NamedList {
  std::string what;
  std::vector<LayerSpec> layers;
};

// Each list puts the layer under test where its input gradient matters.
std::vector<NamedList> GradientLists() {
  return {
      {"conv k3 s2 p1 with bias, alone",
       {ConvSpec("c", 3, 3, 2, 1, true), LinearSpec("fc", 4)}},
      {"conv k5 p2 + batch norm + relu (fused, no pool)",
       {ConvSpec("c", 3, 5, 1, 2, false), BatchNormSpec("bn"), ReluSpec(),
        ConvSpec("c2", 2, 1, 1, 0, true), LinearSpec("fc", 4),
        L2NormalizeSpec()}},
      {"conv + relu + max-pool (sparse backward) twice",
       {ConvSpec("c0", 3), ReluSpec(), MaxPoolSpec(), ConvSpec("c1", 4),
        ReluSpec(), MaxPoolSpec(), LinearSpec("fc", 4)}},
      {"conv + batch norm + relu + max-pool 3/2",
       {ConvSpec("c0", 3), BatchNormSpec("bn0"), ReluSpec(), MaxPoolSpec(3, 2),
        ConvSpec("c1", 3), LinearSpec("fc", 4)}},
      {"average pool and a stand-alone max pool",
       {ConvSpec("c", 3), AvgPoolSpec(2, 1), MaxPoolSpec(3, 2),
        LinearSpec("fc", 4)}},
      {"stand-alone batch norm (1d) and relu",
       {LinearSpec("fc0", 6), BatchNormSpec("bn"), ReluSpec(),
        LinearSpec("fc1", 4), L2NormalizeSpec()}},
      {"residual block, identity shortcut",
       {ConvSpec("c", 3), ResidualSpec("res", 3), GlobalAvgPoolSpec(),
        LinearSpec("fc", 4)}},
      {"residual block, projection with stride 2",
       {ConvSpec("c", 3), ResidualSpec("res", 5, 2, true),
        ResidualSpec("res2", 5), GlobalAvgPoolSpec(), LinearSpec("fc", 4)}},
      {"global average pool then linear + dropout",
       {ConvSpec("c", 4), ReluSpec(), GlobalAvgPoolSpec(), LinearSpec("fc0", 6),
        ReluSpec(), DropoutSpec(0.3f), LinearSpec("fc1", 4),
        L2NormalizeSpec()}},
  };
}

TEST(LayerList, EveryLayerMatchesFiniteDifferencesInTraining) {
  for (const NamedList& l : GradientLists()) {
    CheckGradients(ListConfig(l.layers), /*training=*/true, l.what);
  }
}

TEST(LayerList, EveryLayerMatchesFiniteDifferencesInEval) {
  for (const NamedList& l : GradientLists()) {
    CheckGradients(ListConfig(l.layers), /*training=*/false, l.what);
  }
}

// Encode folds batch norm and reorders pool/bias; it must agree with the
// training forward in eval mode, on any thread count and batch split.
TEST(LayerList, EncodeMatchesEvalForwardForEveryList) {
  for (const NamedList& l : GradientLists()) {
    auto e = Encoder::Create(ListConfig(l.layers), 3).value();
    for (Parameter* p : e->parameters()) {
      if (p->name.find("running_var") != std::string::npos) {
        for (float& v : p->value) v = 0.7f;
      }
    }
    const int n = 37;  // more than one Encode chunk
    std::vector<float> x = RandomVector(n * e->input_size(), 4);
    std::vector<float> want(n * e->dim());
    e->Forward(x.data(), n, want.data(), /*training=*/false);
    for (int threads : {1, 2}) {
      std::vector<float> got(want.size());
      e->Encode(x.data(), n, got.data(), threads);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-4f * std::max(1.0f, std::fabs(want[i])))
            << l.what << " threads=" << threads << " at " << i;
      }
    }
    std::vector<float> one(e->dim());
    e->Encode(x.data() + 5 * e->input_size(), 1, one.data());
    for (int j = 0; j < e->dim(); ++j) {
      EXPECT_NEAR(one[j], want[5 * e->dim() + j], 1e-4f) << l.what;
    }
  }
}

TEST(LayerList, EmbeddingDimIsTheListOutput) {
  auto e =
      Encoder::Create(ListConfig({ConvSpec("c", 6), GlobalAvgPoolSpec()}), 1)
          .value();
  EXPECT_EQ(e->dim(), 6);
  EXPECT_EQ(e->config().embedding_dim, 6);
  auto f =
      Encoder::Create(
          ListConfig({ResidualSpec("r", 4, 2, true), LinearSpec("fc", 9)}), 1)
          .value();
  EXPECT_EQ(f->dim(), 9);
}

TEST(LayerList, ResidualParametersAreNamedPerBranch) {
  auto e =
      Encoder::Create(
          ListConfig({ResidualSpec("res", 4, 2, true), GlobalAvgPoolSpec()}), 1)
          .value();
  std::vector<std::string> names;
  for (const Parameter* p : static_cast<const Encoder&>(*e).parameters()) {
    names.push_back(p->name);
  }
  EXPECT_THAT(names,
              ::testing::ElementsAre(
                  "res.conv1.weight", "res.bn1.weight", "res.bn1.bias",
                  "res.bn1.running_mean", "res.bn1.running_var",
                  "res.conv2.weight", "res.bn2.weight", "res.bn2.bias",
                  "res.bn2.running_mean", "res.bn2.running_var",
                  "res.proj.weight", "res.proj_bn.weight", "res.proj_bn.bias",
                  "res.proj_bn.running_mean", "res.proj_bn.running_var"));
}

TEST(LayerList, SavesAsFormat2AndLoadsBitIdentically) {
  const NamedList l = GradientLists()[7];
  auto e = Encoder::Create(ListConfig(l.layers, 3, 12), 5).value();
  std::vector<float> x = RandomVector(4 * e->input_size(), 6);
  e->Forward(x.data(), 4, nullptr, /*training=*/true);  // move running stats
  const std::string bytes = e->ToBytes();
  v1::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  EXPECT_EQ(m.format_version(), 2u);
  EXPECT_EQ(m.config().layers_size(), static_cast<int>(l.layers.size()));
  auto loaded = Encoder::FromBytes(bytes);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->model_version(), e->model_version());
  EXPECT_EQ((*loaded)->config().layers, e->config().layers);
  EXPECT_EQ(ArchitectureDifference(e->config(), (*loaded)->config()), "");
  std::vector<float> a(4 * e->dim()), b(a.size());
  e->Encode(x.data(), 4, a.data());
  (*loaded)->Encode(x.data(), 4, b.data());
  EXPECT_EQ(a, b);
}

TEST(LayerList, LegacyConfigStaysFormat1) {
  EncoderConfig c;
  c.conv_channels = {4};
  c.hidden = 8;
  auto e = Encoder::Create(c, 1).value();
  v1::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(e->ToBytes()));
  EXPECT_EQ(m.format_version(), 1u);
  EXPECT_EQ(m.config().layers_size(), 0);
}

TEST(LayerList, Format2WithoutLayersIsDataLoss) {
  EncoderConfig c;
  c.conv_channels = {4};
  auto e = Encoder::Create(c, 1).value();
  v1::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(e->ToBytes()));
  m.set_format_version(2);
  m.clear_model_version();
  auto r = Encoder::FromBytes(m.SerializeAsString());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("format 2 needs them"));
}

TEST(LayerList, ListsThatDoNotFitAreRefusedNamingTheLayer) {
  struct Case {
    std::vector<LayerSpec> layers;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{MaxPoolSpec(), MaxPoolSpec(), MaxPoolSpec(), MaxPoolSpec()},
       "layer 3 (max_pool: 2x2 window on 1x1 input would give an output below "
       "1x1)"},
      {{ConvSpec("c", 4), ResidualSpec("res", 8)},
       "layer 1 (residual res: identity shortcut needs input width 4 == block "
       "width 8"},
      {{ConvSpec("c", 0)}, "conv c: channels 0 must be within"},
      {{ConvSpec("c", 4), LinearSpec("c", 3)}, "name c is used twice"},
      {{LinearSpec("", 3)}, "linear: needs a name"},
      {{DropoutSpec(1.5f)}, "rate 1.5 must be in [0, 1)"},
      {{ConvSpec("c", 4, 9, 1, 0)}, "9x9 window on 8x8 input"},
  };
  for (const Case& c : cases) {
    auto e = Encoder::Create(ListConfig(c.layers), 1);
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument)
        << c.message;
    EXPECT_THAT(e.status().message(), HasSubstr(c.message));
  }
}

TEST(LayerList, ArchitectureDifferenceNamesTheFirstDifference) {
  EncoderConfig legacy;
  EXPECT_EQ(ArchitectureDifference(legacy, legacy), "");
  // The legacy layout compares as its layer list.
  EncoderConfig spelled = legacy;
  spelled.layers = EncoderLayers(legacy);
  EXPECT_EQ(ArchitectureDifference(legacy, spelled), "");
  EncoderConfig wider = legacy;
  wider.conv_channels = {32, 48};
  EXPECT_THAT(
      ArchitectureDifference(legacy, wider),
      HasSubstr(
          "layer 3: stored conv1: conv 64 k3 s1 p1 bias, now conv1: conv 48"));
  EncoderConfig colour = legacy;
  colour.input_channels = 3;
  EXPECT_EQ(ArchitectureDifference(legacy, colour),
            "input: stored 28x28x1, now 28x28x3");
  EncoderConfig white = legacy;
  white.preprocessing.background = {255, 255, 255};
  EXPECT_EQ(ArchitectureDifference(legacy, white),
            "input preprocessing: stored stretch on #000000, now stretch on "
            "#ffffff");
  EncoderConfig shorter = spelled;
  shorter.layers.pop_back();
  EXPECT_THAT(ArchitectureDifference(spelled, shorter),
              HasSubstr("now (none)"));
}

TEST(LayerList, ConfigProtoRoundTripKeepsTheList) {
  EncoderConfig c = ListConfig(GradientLists()[8].layers);
  c.preprocessing.mean = {0.25f};
  c.preprocessing.background = {255, 255, 255};
  const EncoderConfig back = EncoderConfigFromProto(EncoderConfigToProto(c));
  EXPECT_EQ(back.layers, c.layers);
  EXPECT_EQ(back.preprocessing.mean, std::vector<float>{0.25f});
  EXPECT_EQ(back.preprocessing.background, (Rgb{255, 255, 255}));
  EXPECT_EQ(ArchitectureDifference(c, back), "");
}

}  // namespace
}  // namespace embedsearch
