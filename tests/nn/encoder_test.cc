// The encoder end to end: gradients vs finite differences, save/load,
// errors on bad files, determinism, threading and inference equivalence.
#include "core/nn/encoder.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "embedsearch/v1/bundle.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "core/nn/arch_spec.h"
#include "core/nn/random.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;

EncoderConfig SmallConfig(bool batch_norm = false) {
  EncoderConfig c;
  c.input_height = 8;
  c.input_width = 8;
  c.input_channels = 2;
  c.conv_channels = {3, 4};
  c.hidden = 6;
  c.embedding_dim = 5;
  c.batch_norm = batch_norm;
  return c;
}

std::vector<float> RandomVector(size_t n, uint64_t seed, float scale = 1.0f) {
  nn::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.Normal();
  return v;
}

std::string TempPath(const std::string& name) {
  return std::string(::testing::TempDir()) + "/" + name + "." +
         std::to_string(::getpid());
}

// L = sum(out * r), in double.
double Loss(Encoder& e, const std::vector<float>& x, int n,
            const std::vector<float>& r, bool training) {
  std::vector<float> out(n * e.dim());
  e.Forward(x.data(), n, out.data(), training);
  double l = 0;
  for (size_t i = 0; i < out.size(); ++i) l += double(out[i]) * r[i];
  return l;
}

void CheckGradients(bool batch_norm, bool training) {
  EncoderConfig c = SmallConfig(batch_norm);
  auto e = Encoder::Create(c, 7).value();
  const int n = 3;
  std::vector<float> x = RandomVector(n * e->input_size(), 11);
  std::vector<float> r = RandomVector(n * e->dim(), 12);
  if (batch_norm && !training) {
    // Make the running stats non-trivial first.
    for (Parameter* p : e->parameters()) {
      if (p->name.find("running_var") != std::string::npos) {
        for (float& v : p->value) v = 1.5f;
      }
      if (p->name.find("running_mean") != std::string::npos) {
        for (float& v : p->value) v = 0.2f;
      }
    }
  }
  e->ZeroGrad();
  std::vector<float> out(n * e->dim());
  e->Forward(x.data(), n, out.data(), training);
  e->Backward(r.data());
  nn::Rng pick(5);
  int checked = 0;
  for (Parameter* p : e->parameters()) {
    if (!p->trainable) continue;
    std::vector<float> saved_stats;
    for (int k = 0; k < 4; ++k) {
      const size_t j = pick.Next() % p->value.size();
      const float orig = p->value[j];
      const float h = 1e-2f;
      // Forward in training mode updates BN running stats; restore them so
      // every evaluation sees the same network.
      std::vector<std::vector<float>> stats;
      for (Parameter* q : e->parameters()) if (!q->trainable) stats.push_back(q->value);
      auto restore = [&] {
        size_t s = 0;
        for (Parameter* q : e->parameters()) if (!q->trainable) q->value = stats[s++];
      };
      p->value[j] = orig + h;
      const double lp = Loss(*e, x, n, r, training);
      restore();
      p->value[j] = orig - h;
      const double lm = Loss(*e, x, n, r, training);
      restore();
      p->value[j] = orig;
      const double numeric = (lp - lm) / (2 * h);
      EXPECT_NEAR(p->grad[j], numeric, 2e-2 * std::max(1.0, std::fabs(numeric)))
          << p->name << "[" << j << "] bn=" << batch_norm << " training=" << training;
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

TEST(Encoder, GradientsMatchFiniteDifferences) { CheckGradients(false, true); }
TEST(Encoder, GradientsMatchFiniteDifferencesWithBatchNormTraining) {
  CheckGradients(true, true);
}
TEST(Encoder, GradientsMatchFiniteDifferencesWithBatchNormEval) {
  CheckGradients(true, false);
}

TEST(Encoder, RejectsInvalidConfig) {
  EncoderConfig c = SmallConfig();
  c.embedding_dim = 0;
  auto e = Encoder::Create(c, 1);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(), HasSubstr("embedding_dim"));
  c = SmallConfig();
  c.input_height = 2;  // two pools need at least 4 rows
  EXPECT_EQ(Encoder::Create(c, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Encoder, ReferenceShapes) {
  auto e = Encoder::Create(EncoderConfig(), 1).value();
  EXPECT_EQ(e->dim(), 64);
  EXPECT_EQ(e->input_size(), 784);
  std::vector<std::string> names;
  int64_t total = 0;
  for (Parameter* p : e->parameters()) {
    names.push_back(p->name);
    total += p->value.size();
  }
  EXPECT_THAT(names, ::testing::ElementsAre("conv0.weight", "conv0.bias", "conv1.weight",
                                            "conv1.bias", "fc1.weight", "fc1.bias",
                                            "fc2.weight", "fc2.bias"));
  // 32*9+32 + 64*288+64 + 128*3136+128 + 64*128+64.
  EXPECT_EQ(total, 320 + 18496 + 401536 + 8256);
}

TEST(Encoder, OutputsHaveUnitNorm) {
  auto e = Encoder::Create(EncoderConfig(), 3).value();
  const int n = 5;
  std::vector<float> x = RandomVector(n * 784, 4);
  std::vector<float> y(n * 64);
  e->Encode(x.data(), n, y.data(), 1);
  for (int i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < 64; ++j) s += double(y[i * 64 + j]) * y[i * 64 + j];
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
}

void ExpectClose(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol) << i;
}

TEST(Encoder, EncodeMatchesForwardAndThreadCounts) {
  for (bool bn : {false, true}) {
    EncoderConfig c;
    c.batch_norm = bn;
    auto e = Encoder::Create(c, 9).value();
    if (bn) {  // non-trivial running stats, so the folding is exercised
      for (Parameter* p : e->parameters()) {
        for (size_t j = 0; j < p->value.size(); ++j) {
          if (p->name.find("running_var") != std::string::npos) p->value[j] = 0.5f + 0.01f * j;
          if (p->name.find("running_mean") != std::string::npos) p->value[j] = 0.1f - 0.003f * j;
          if (p->name.find("bn") == 0 && p->name.find(".weight") != std::string::npos) {
            p->value[j] = (j % 3 == 0) ? -0.7f : 1.2f;  // negative scales too
          }
        }
      }
    }
    const int n = 37;
    std::vector<float> x = RandomVector(n * 784, 10);
    std::vector<float> y1(n * 64), y2(n * 64), yf(n * 64), y0(n * 64);
    e->Encode(x.data(), n, y1.data(), 1);
    e->Encode(x.data(), n, y2.data(), 2);
    e->Encode(x.data(), n, y0.data(), 0);
    e->Forward(x.data(), n, yf.data(), /*training=*/false);
    ExpectClose(y1, y2, 1e-5f);
    ExpectClose(y1, y0, 1e-5f);
    ExpectClose(y1, yf, 1e-4f);
    // One image alone gives the same embedding as inside a batch.
    std::vector<float> single(64);
    e->Encode(x.data() + 36 * 784, 1, single.data(), 1);
    ExpectClose(single, std::vector<float>(y1.begin() + 36 * 64, y1.end()), 1e-5f);
  }
}

// A colour layer-list encoder on a non-square input, so a mirror that
// swapped rows with columns or crossed channels would show.
EncoderConfig FlipAverageConfig() {
  EncoderConfig c;
  c.input_height = 6;
  c.input_width = 8;
  c.input_channels = 3;
  c.embedding_dim = 5;
  c.preprocessing.mean = {0.5f, 0.4f, 0.3f};
  c.preprocessing.std = {0.2f, 0.25f, 0.3f};
  EXPECT_TRUE(ApplyArch("c4,p,gap,fc5", &c).ok());
  c.flip_average = true;
  return c;
}

// Images (C x H x W planar, rows of `width`) mirrored left-right.
std::vector<float> Mirrored(const std::vector<float>& input, int width) {
  std::vector<float> out(input.size());
  for (size_t r = 0; r < input.size() / width; ++r) {
    for (int x = 0; x < width; ++x) out[r * width + x] = input[r * width + width - 1 - x];
  }
  return out;
}

TEST(Encoder, FlipAverageIsTheNormalizedSumOfBothViews) {
  const EncoderConfig c = FlipAverageConfig();
  auto averaged = Encoder::Create(c, 21).value();
  EncoderConfig plain_config = c;
  plain_config.flip_average = false;
  auto f = Encoder::Create(plain_config, 21).value();  // same seed: same weights
  const int n = 7, size = 3 * 6 * 8, dim = 5;
  const std::vector<float> x = RandomVector(n * size, 22);
  const std::vector<float> mirror = Mirrored(x, 8);
  std::vector<float> fx(n * dim), fm(n * dim), got(n * dim), got_mirror(n * dim),
      got_two_threads(n * dim);
  f->Encode(x.data(), n, fx.data(), 1);
  f->Encode(mirror.data(), n, fm.data(), 1);
  averaged->Encode(x.data(), n, got.data(), 1);
  averaged->Encode(mirror.data(), n, got_mirror.data(), 1);
  averaged->Encode(x.data(), n, got_two_threads.data(), 2);
  std::vector<float> expected(n * dim);
  for (int i = 0; i < n; ++i) {
    double norm2 = 0;
    for (int k = 0; k < dim; ++k) {
      const double v = double(fx[i * dim + k]) + fm[i * dim + k];
      norm2 += v * v;
    }
    for (int k = 0; k < dim; ++k) {
      expected[i * dim + k] =
          static_cast<float>((double(fx[i * dim + k]) + fm[i * dim + k]) / std::sqrt(norm2));
    }
  }
  ExpectClose(got, expected, 1e-5f);
  ExpectClose(got_mirror, got, 1e-5f);  // an image and its mirror: one embedding
  ExpectClose(got_two_threads, got, 1e-5f);
  // The plain model's f(x) is not symmetric, or the test would prove nothing.
  float largest_difference = 0;
  for (int i = 0; i < n * dim; ++i) {
    largest_difference = std::max(largest_difference, std::abs(fx[i] - fm[i]));
  }
  EXPECT_GT(largest_difference, 1e-3f);
}

TEST(Encoder, FlipAverageSavesAsFormat3AndChangesTheVersion) {
  const EncoderConfig c = FlipAverageConfig();
  auto averaged = Encoder::Create(c, 21).value();
  EncoderConfig plain_config = c;
  plain_config.flip_average = false;
  auto plain = Encoder::Create(plain_config, 21).value();
  EXPECT_NE(averaged->model_version(), plain->model_version());
  v1::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(averaged->ToBytes()));
  EXPECT_EQ(m.format_version(), 3u);
  EXPECT_TRUE(m.config().flip_average());
  auto loaded = Encoder::FromBytes(averaged->ToBytes());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE((*loaded)->config().flip_average);
  EXPECT_EQ((*loaded)->model_version(), averaged->model_version());
  // Format 2 bytes that claim flip averaging are refused, not misread.
  m.set_format_version(2);
  m.clear_model_version();
  auto mislabelled = Encoder::FromBytes(m.SerializeAsString());
  EXPECT_EQ(mislabelled.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(mislabelled.status().message(), HasSubstr("flip_average"));
  // Resuming with the other setting is an architecture change.
  EXPECT_THAT(ArchitectureDifference(c, plain_config), HasSubstr("flip_average"));
}

TEST(Encoder, ConcurrentEncodeCallsAgreeWithSerial) {
  auto e = Encoder::Create(EncoderConfig(), 12).value();
  const int callers = 4, n = 9;
  std::vector<std::vector<float>> inputs, expected(callers), got(callers);
  for (int t = 0; t < callers; ++t) {
    inputs.push_back(RandomVector(n * 784, 50 + t));
    expected[t].resize(n * 64);
    got[t].resize(n * 64);
    e->Encode(inputs[t].data(), n, expected[t].data(), 1);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < callers; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep) {
        e->Encode(inputs[t].data(), n, got[t].data(), 1 + t % 2);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < callers; ++t) ExpectClose(got[t], expected[t], 1e-5f);
}

TEST(Encoder, SaveLoadIsBitIdentical) {
  EncoderConfig c = SmallConfig(/*batch_norm=*/true);
  c.dropout = 0.25f;
  c.preprocessing.mean = {0.5f};
  c.preprocessing.std = {0.25f};
  auto e = Encoder::Create(c, 21).value();
  // Train one step so running stats are non-default.
  std::vector<float> x = RandomVector(4 * e->input_size(), 2);
  e->Forward(x.data(), 4, nullptr, true);
  const std::string path = TempPath("model.pb");
  ASSERT_TRUE(e->Save(path).ok());
  auto loaded = Encoder::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Encoder& l = **loaded;
  EXPECT_EQ(l.model_version(), e->model_version());
  EXPECT_EQ(l.config().conv_channels, c.conv_channels);
  EXPECT_EQ(l.config().batch_norm, true);
  EXPECT_EQ(l.config().dropout, 0.25f);
  EXPECT_EQ(l.config().preprocessing.mean, std::vector<float>{0.5f});
  EXPECT_EQ(l.config().preprocessing.std, std::vector<float>{0.25f});
  auto a = e->parameters();
  auto b = l.parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]->name, b[i]->name);
    EXPECT_EQ(a[i]->shape, b[i]->shape);
    ASSERT_EQ(0, std::memcmp(a[i]->value.data(), b[i]->value.data(),
                             a[i]->value.size() * sizeof(float)))
        << a[i]->name;
  }
  std::vector<float> ya(4 * c.embedding_dim), yb(4 * c.embedding_dim);
  e->Encode(x.data(), 4, ya.data(), 1);
  l.Encode(x.data(), 4, yb.data(), 1);
  EXPECT_EQ(0, std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)));
  std::remove(path.c_str());
}

TEST(Encoder, ModelVersionDependsOnWeights) {
  auto a = Encoder::Create(SmallConfig(), 1).value();
  auto b = Encoder::Create(SmallConfig(), 2).value();
  EXPECT_THAT(a->model_version(), ::testing::MatchesRegex("enc-[0-9a-f]{12}"));
  EXPECT_NE(a->model_version(), b->model_version());
  const std::string before = a->model_version();
  a->parameters()[0]->value[0] += 1.0f;
  EXPECT_NE(a->model_version(), before);
}

TEST(Encoder, LoadMissingFileIsNotFound) {
  auto e = Encoder::Load(TempPath("does-not-exist"));
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
}

TEST(Encoder, CorruptOrTruncatedBytesAreDataLoss) {
  auto e = Encoder::Create(SmallConfig(), 1).value();
  const std::string bytes = e->ToBytes();
  // Garbage.
  EXPECT_EQ(Encoder::FromBytes("\xff\xff\xff\xff garbage").status().code(),
            absl::StatusCode::kDataLoss);
  // Truncated at several points.
  for (size_t cut : {bytes.size() / 3, bytes.size() / 2, bytes.size() - 7}) {
    auto r = Encoder::FromBytes(absl::string_view(bytes).substr(0, cut));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << cut << " " << r.status();
  }
  // A flipped bit inside the weights: parses, but fails the checksum.
  v1::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  m.mutable_tensors(0)->set_values(0, m.tensors(0).values(0) + 0.5f);
  auto r = Encoder::FromBytes(m.SerializeAsString());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("model_version"));
}

TEST(Encoder, WrongFormatVersionIsFailedPrecondition) {
  auto e = Encoder::Create(SmallConfig(), 1).value();
  v1::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(e->ToBytes()));
  m.set_format_version(4);  // 1, 2 and 3 are read
  const std::string path = TempPath("v4.pb");
  {
    std::ofstream f(path, std::ios::binary);
    f << m.SerializeAsString();
  }
  auto r = Encoder::Load(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("format_version 4"));
  EXPECT_THAT(r.status().message(), HasSubstr("format_version 1, 2 and 3"));
  std::remove(path.c_str());
}

TEST(Encoder, MissingOrMisshapedTensorIsDataLossNamingIt) {
  auto e = Encoder::Create(SmallConfig(), 1).value();
  v1::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(e->ToBytes()));
  m.clear_model_version();
  v1::ModelProto missing = m;
  missing.mutable_tensors()->DeleteSubrange(2, 1);  // conv1.weight
  auto r = Encoder::FromBytes(missing.SerializeAsString());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("conv1.weight"));

  v1::ModelProto reshaped = m;
  reshaped.mutable_tensors(4)->set_shape(0, 7);  // fc1.weight
  r = Encoder::FromBytes(reshaped.SerializeAsString());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("fc1.weight"));
}

TEST(Encoder, SameSeedGivesIdenticalWeightsAfterTraining) {
  auto train = [](uint64_t seed, int threads) {
    EncoderConfig c = SmallConfig(/*batch_norm=*/false);
    c.dropout = 0.2f;
    auto e = Encoder::Create(c, seed).value();
    e->set_threads(threads);
    const int n = 6;
    for (int step = 0; step < 5; ++step) {
      std::vector<float> x = RandomVector(n * e->input_size(), 100 + step);
      std::vector<float> y(n * e->dim());
      e->ZeroGrad();
      e->Forward(x.data(), n, y.data(), true);
      e->Backward(y.data());  // gradient of 0.5 * sum of squares
      for (Parameter* p : e->parameters()) {
        for (size_t j = 0; j < p->value.size(); ++j) p->value[j] -= 0.1f * p->grad[j];
      }
    }
    return e;
  };
  auto a = train(42, 1), b = train(42, 1), c = train(43, 1);
  EXPECT_EQ(a->model_version(), b->model_version());
  EXPECT_NE(a->model_version(), c->model_version());
  // With two threads the result is deterministic too (fixed reduction order).
  EXPECT_EQ(train(42, 2)->model_version(), train(42, 2)->model_version());
}

}  // namespace
}  // namespace embedsearch
