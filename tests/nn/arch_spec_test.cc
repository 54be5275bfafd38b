// The --arch spec parser and presets, and --input shapes.
#include "core/nn/arch_spec.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> Describe(const std::vector<LayerSpec>& layers) {
  std::vector<std::string> out;
  for (const LayerSpec& l : layers) out.push_back(DescribeLayer(l));
  return out;
}

TEST(ArchSpec, ConvStagesGapAndFc) {
  auto layers = ParseArchSpec("c32x2,p,c64,p,gap,fc128", {1, 28, 28});
  ASSERT_TRUE(layers.ok()) << layers.status();
  EXPECT_THAT(Describe(*layers),
              ::testing::ElementsAre(
                  "conv0: conv 32 k3 s1 p1", "bn0: batch_norm", "relu",
                  "conv1: conv 32 k3 s1 p1", "bn1: batch_norm", "relu",
                  "max_pool k2 s2", "conv2: conv 64 k3 s1 p1",
                  "bn2: batch_norm", "relu", "max_pool k2 s2",
                  "global_avg_pool", "fc1: linear 128 bias", "l2_normalize"));
}

TEST(ArchSpec, ConvOptionsPoolsDropoutAndReluBetweenFcs) {
  auto layers =
      ParseArchSpec("c16k5s2,a3s1,p3s2,fc256,d0.25,fc64", {3, 32, 32});
  ASSERT_TRUE(layers.ok()) << layers.status();
  EXPECT_THAT(
      Describe(*layers),
      ::testing::ElementsAre("conv0: conv 16 k5 s2 p2", "bn0: batch_norm",
                             "relu", "avg_pool k3 s1", "max_pool k3 s2",
                             "fc1: linear 256 bias", "relu", "dropout 0.25",
                             "fc2: linear 64 bias", "l2_normalize"));
}

TEST(ArchSpec, ResidualStagesProjectOnlyWhereShapesChange) {
  auto layers = ParseArchSpec("c32,r32x2,r64s2x2,gap", {3, 16, 16});
  ASSERT_TRUE(layers.ok()) << layers.status();
  EXPECT_THAT(
      Describe(*layers),
      ::testing::ElementsAre(
          "conv0: conv 32 k3 s1 p1", "bn0: batch_norm", "relu",
          "res0: residual 32 s1 identity", "res1: residual 32 s1 identity",
          "res2: residual 64 s2 projection", "res3: residual 64 s1 identity",
          "global_avg_pool", "l2_normalize"));
}

TEST(ArchSpec, RefusesNamingTheOffendingToken) {
  struct Case {
    std::string spec;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"c32,p,p,p,gap", "token 4 'p': max_pool: 2x2 window on 1x1 input"},
      {"c32,r64i",
       "token 2 'r64i': residual res0: identity shortcut needs input width 32"},
      {"c32,q,fc8", "token 2 'q': unknown layer"},
      {"c,fc8", "token 1 'c': c needs its width"},
      {"c32k3k5", "token 1 'c32k3k5': option k given twice"},
      {"c32z", "token 1 'c32z': unexpected 'z'"},
      {"c32,,fc8", "token 2 '': empty token"},
      {"c32,fcx", "token 2 'fcx': fc needs its output count"},
      {"c32,d2", "token 2 'd2': dropout: rate 2 must be in [0, 1)"},
      {"c0", "token 1 'c0': conv conv0: channels 0 must be within 1..4096"},
      {"c8k9p0",
       "token 1 'c8k9p0': conv conv0: 9x9 window on 5x5 input would give"},
      {"c8k9p1",
       "token 1 'c8k9p1': conv conv0: 9x9 window on 5x5 input (padding 1)"},
  };
  for (const Case& c : cases) {
    auto layers = ParseArchSpec(c.spec, {1, 5, 5});
    EXPECT_EQ(layers.status().code(), absl::StatusCode::kInvalidArgument)
        << c.spec;
    EXPECT_THAT(layers.status().message(), HasSubstr(c.message)) << c.spec;
  }
}

TEST(ArchSpec, LegacyPresetKeepsTheLegacyLayout) {
  EncoderConfig config;
  config.layers = {ReluSpec()};
  ASSERT_TRUE(ApplyArch("fmnist-small", &config).ok());
  EXPECT_TRUE(config.layers.empty());
  ASSERT_TRUE(ApplyArch("", &config).ok());
  EXPECT_TRUE(config.layers.empty());
}

TEST(ArchSpec, ColourPresetBuildsOn64x64x3) {
  EncoderConfig config;
  config.input_height = 64;
  config.input_width = 64;
  config.input_channels = 3;
  config.embedding_dim = 48;
  ASSERT_TRUE(ApplyArch("colour-small", &config).ok());
  auto e = Encoder::Create(config, 1);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->dim(), 48);
  EXPECT_EQ((*e)->input_size(), 64 * 64 * 3);
  EXPECT_THAT(ArchPresetNames(),
              ::testing::ElementsAre("fmnist-small", "colour-small"));
}

TEST(ArchSpec, ApplyArchNamesInputAndToken) {
  EncoderConfig config;  // 28x28x1
  absl::Status s = ApplyArch("c8,p,p,p,p,p", &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      s.message(),
      HasSubstr("--arch c8,p,p,p,p,p on 28x28x1 input: arch spec token 6"));
}

TEST(ArchSpec, InputShapes) {
  auto shape = ParseInputShape("64x48x3");
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(shape->height, 64);
  EXPECT_EQ(shape->width, 48);
  EXPECT_EQ(shape->channels, 3);
  for (const char* bad :
       {"64x64", "64x64x0", "0x5x1", "axbxc", "64x64x3x1", "64x64x65"}) {
    EXPECT_EQ(ParseInputShape(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace embedsearch
