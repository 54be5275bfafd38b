// Every layer's backward vs central finite differences of L = sum(out * R)
// on random inputs (float forward, double loss), plus forward checks
// against direct formulas.
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

#include "core/nn/batchnorm.h"
#include "core/nn/conv2d.h"
#include "core/nn/dropout.h"
#include "core/nn/l2norm.h"
#include "core/nn/linear.h"
#include "core/nn/pool.h"
#include "core/nn/random.h"
#include "core/nn/relu.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace nn {
namespace {

std::vector<float> Randn(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.Normal();
  return v;
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

// Compares grad[j] with (L(v+h e_j) - L(v-h e_j)) / 2h for every entry (or
// `samples` random ones), where loss() recomputes L from the current v.
void CheckGradient(const char* what, std::vector<float>& v, const std::vector<float>& grad,
                   const std::function<double()>& loss, float h = 1e-2f,
                   double tol = 1e-2, size_t samples = 64) {
  ASSERT_EQ(v.size(), grad.size()) << what;
  Rng pick(123);
  const size_t count = std::min(samples, v.size());
  double max_abs = 0;
  for (size_t k = 0; k < count; ++k) {
    const size_t j = count == v.size() ? k : pick.Next() % v.size();
    const float orig = v[j];
    v[j] = orig + h;
    const double lp = loss();
    v[j] = orig - h;
    const double lm = loss();
    v[j] = orig;
    const double numeric = (lp - lm) / (2.0 * h);
    max_abs = std::max(max_abs, std::fabs(numeric));
    EXPECT_NEAR(grad[j], numeric, tol * std::max(1.0, std::fabs(numeric)))
        << what << "[" << j << "]";
  }
  EXPECT_GT(max_abs, 1e-3) << what << ": gradient is identically ~0, check is vacuous";
}

TEST(NnLayers, Im2ColAndCol2ImAreAdjoint) {
  for (Conv2dShape s : {Conv2dShape{2, 5, 6, 3, 3, 1, 1}, Conv2dShape{3, 7, 5, 2, 3, 2, 0},
                        Conv2dShape{1, 6, 6, 1, 2, 2, 1}}) {
    std::vector<float> x = Randn(s.in_size(), 1);
    std::vector<float> c = Randn(size_t(s.col_rows()) * s.col_cols(), 2);
    std::vector<float> col(c.size()), back(x.size(), 0.0f);
    Im2Col(s, x.data(), col.data());
    Col2ImAdd(s, c.data(), back.data());
    EXPECT_NEAR(Dot(col, c), Dot(x, back), 1e-3);
  }
}

TEST(NnLayers, Im2RowIsTheTransposeOfIm2ColAndRow2ImItsAdjoint) {
  for (Conv2dShape s : {Conv2dShape{2, 5, 6, 3, 3, 1, 1}, Conv2dShape{3, 7, 5, 2, 3, 2, 0},
                        Conv2dShape{2, 6, 6, 1, 2, 1, 0}}) {
    const int rows = s.col_rows(), cols = s.col_cols();
    std::vector<float> x = Randn(s.in_size(), 40);
    std::vector<float> col(size_t(rows) * cols), row(col.size());
    Im2Col(s, x.data(), col.data());
    Im2Row(s, x.data(), row.data());
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) ASSERT_EQ(col[r * cols + c], row[c * rows + r]);
    std::vector<float> g = Randn(row.size(), 41), back(x.size(), 0.0f);
    Row2ImAdd(s, g.data(), back.data());
    EXPECT_NEAR(Dot(row, g), Dot(x, back), 1e-3);
  }
}

TEST(NnLayers, Conv2dForwardMatchesDirectConvolution) {
  const Conv2dShape s{2, 5, 6, 3, 3, 2, 1};
  const int n = 2;
  std::vector<float> x = Randn(n * s.in_size(), 3), w = Randn(s.weight_size(), 4),
                     b = Randn(s.out_channels, 5);
  std::vector<float> y(n * s.out_size());
  Conv2dForward(s, w.data(), b.data(), x.data(), n, y.data(), 2);
  const int oh = s.out_height(), ow = s.out_width();
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < s.out_channels; ++o)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          double acc = b[o];
          for (int c = 0; c < s.in_channels; ++c)
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx) {
                const int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
                if (iy < 0 || iy >= s.in_height || ix < 0 || ix >= s.in_width) continue;
                acc += double(w[((o * s.in_channels + c) * 3 + ky) * 3 + kx]) *
                       x[((i * s.in_channels + c) * s.in_height + iy) * s.in_width + ix];
              }
          EXPECT_NEAR(y[((i * s.out_channels + o) * oh + oy) * ow + ox], acc, 1e-4);
        }
}

TEST(NnLayers, Conv2dBackwardMatchesFiniteDifferences) {
  for (Conv2dShape s : {Conv2dShape{2, 5, 6, 3, 3, 1, 1}, Conv2dShape{3, 7, 5, 2, 3, 2, 0}}) {
    const int n = 3;
    std::vector<float> x = Randn(n * s.in_size(), 6), w = Randn(s.weight_size(), 7),
                       b = Randn(s.out_channels, 8), r = Randn(n * s.out_size(), 9);
    std::vector<float> y(r.size());
    auto loss = [&] {
      Conv2dForward(s, w.data(), b.data(), x.data(), n, y.data(), 1);
      return Dot(y, r);
    };
    std::vector<float> dw(w.size(), 0.0f), db(b.size(), 0.0f), dx(x.size());
    Conv2dBackward(s, w.data(), x.data(), r.data(), n, dw.data(), db.data(), dx.data(), 2);
    CheckGradient("conv.x", x, dx, loss);
    CheckGradient("conv.w", w, dw, loss);
    CheckGradient("conv.b", b, db, loss);
  }
}

TEST(NnLayers, ReluBackwardMatchesFiniteDifferences) {
  std::vector<float> x = Randn(200, 10), r = Randn(200, 11);
  for (float& v : x) v += v > 0 ? 0.1f : -0.1f;  // keep away from the kink
  std::vector<float> y(x.size()), dx(x.size());
  ReluForward(x.data(), x.size(), y.data());
  ReluBackward(y.data(), r.data(), x.size(), dx.data());
  CheckGradient("relu.x", x, dx, [&] {
    ReluForward(x.data(), x.size(), y.data());
    return Dot(y, r);
  }, 1e-2f, 1e-2, 200);
}

TEST(NnLayers, BiasReluBackwardMatchesFiniteDifferences) {
  const int n = 3, c = 4, sp = 5;
  std::vector<float> x = Randn(n * c * sp, 12), b = Randn(c, 13, 0.1f), r = Randn(x.size(), 14);
  for (float& v : x) v += v > 0 ? 0.5f : -0.5f;
  std::vector<float> y(x.size()), dx(x.size()), db(c, 0.0f);
  auto loss = [&] {
    BiasReluForward(x.data(), b.data(), n, c, sp, y.data());
    return Dot(y, r);
  };
  loss();
  BiasReluBackward(y.data(), r.data(), n, c, sp, dx.data(), db.data());
  CheckGradient("biasrelu.x", x, dx, loss);
  CheckGradient("biasrelu.b", b, db, loss, 1e-3f);
}

// Distinct values at least 0.05 apart, so max-pool has no near-ties.
std::vector<float> Distinct(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  Rng rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(v[i - 1], v[rng.Next() % i]);
  for (float& x : v) x = 0.05f * x - 1.0f;
  return v;
}

TEST(NnLayers, MaxPoolBackwardMatchesFiniteDifferences) {
  for (PoolShape s : {PoolShape{3, 6, 7, 2, 2}, PoolShape{2, 7, 7, 3, 2}}) {
    const int n = 2;
    std::vector<float> x = Distinct(n * s.in_size(), 15), r = Randn(n * s.out_size(), 16);
    std::vector<float> y(r.size()), dx(x.size());
    std::vector<int32_t> arg(r.size());
    MaxPool2dForward(s, x.data(), n, y.data(), arg.data());
    MaxPool2dBackward(s, r.data(), arg.data(), n, dx.data());
    CheckGradient("maxpool.x", x, dx, [&] {
      MaxPool2dForward(s, x.data(), n, y.data(), nullptr);
      return Dot(y, r);
    }, 1e-2f, 1e-2, x.size());
  }
}

TEST(NnLayers, MaxPoolForwardTakesWindowMaximum) {
  const PoolShape s{1, 4, 4, 2, 2};
  std::vector<float> x = {1, 2, 3, 4,  //
                          5, 6, 7, 8,  //
                          9, 1, 1, 1,  //
                          1, 1, 1, 9.5f};
  std::vector<float> y(4);
  std::vector<int32_t> arg(4);
  MaxPool2dForward(s, x.data(), 1, y.data(), arg.data());
  EXPECT_EQ(y, (std::vector<float>{6, 8, 9, 9.5f}));
  EXPECT_EQ(arg, (std::vector<int32_t>{5, 7, 8, 15}));
}

TEST(NnLayers, GlobalAvgPoolBackwardMatchesFiniteDifferences) {
  const int n = 2, c = 3, sp = 10;
  std::vector<float> x = Randn(n * c * sp, 17), r = Randn(n * c, 18), y(n * c), dx(x.size());
  GlobalAvgPoolBackward(r.data(), n, c, sp, dx.data());
  CheckGradient("gap.x", x, dx, [&] {
    GlobalAvgPoolForward(x.data(), n, c, sp, y.data());
    return Dot(y, r);
  }, 1e-2f, 1e-2, x.size());
  GlobalAvgPoolForward(x.data(), n, c, sp, y.data());
  EXPECT_NEAR(y[4], std::accumulate(x.begin() + 40, x.begin() + 50, 0.0) / 10, 1e-5);
}

TEST(NnLayers, BatchNormTrainBackwardMatchesFiniteDifferences) {
  const int n = 4, c = 3, sp = 5;
  std::vector<float> x = Randn(n * c * sp, 19, 2.0f), g = Randn(c, 20), b = Randn(c, 21),
                     r = Randn(x.size(), 22);
  for (float& v : x) v += 3.0f;  // a non-zero mean
  std::vector<float> y(x.size()), mean(c), invstd(c), dx(x.size()), dg(c, 0.0f), db(c, 0.0f);
  BatchNormOptions o;
  auto loss = [&] {
    BatchNormForwardTrain(x.data(), n, c, sp, g.data(), b.data(), o, nullptr, nullptr,
                          y.data(), mean.data(), invstd.data());
    return Dot(y, r);
  };
  loss();
  BatchNormBackwardTrain(x.data(), r.data(), n, c, sp, g.data(), mean.data(), invstd.data(),
                         dx.data(), dg.data(), db.data());
  CheckGradient("bn.x", x, dx, loss, 1e-2f, 2e-2);
  CheckGradient("bn.gamma", g, dg, loss);
  CheckGradient("bn.beta", b, db, loss);
  // Normalized output: per channel mean beta, std |gamma|.
  loss();
  for (int ch = 0; ch < c; ++ch) {
    double s = 0, sq = 0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < sp; ++j) s += y[(i * c + ch) * sp + j];
    s /= n * sp;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < sp; ++j) sq += std::pow(y[(i * c + ch) * sp + j] - s, 2);
    EXPECT_NEAR(s, b[ch], 1e-4);
    EXPECT_NEAR(std::sqrt(sq / (n * sp)), std::fabs(g[ch]), 1e-3);
  }
}

// The training functions split channels across threads and sum 8 channels
// per sweep (1 at a time for a remainder). 19 channels: one thread takes
// channels 0-15 in two groups of 8, three threads take chunks of 6-7, all
// one at a time. Every bit must agree: a channel's sums keep their order.
TEST(NnLayers, BatchNormTrainIsBitIdenticalForEveryThreadCountAndGrouping) {
  const int n = 5, c = 19, sp = 7;
  std::vector<float> x = Randn(n * c * sp, 40, 2.0f), g = Randn(c, 41), b = Randn(c, 42),
                     dy = Randn(x.size(), 43);
  // Magnitudes from 2^-20 to 2^20, so that double sums round and a changed
  // summation order would show (sums of similar floats are exact in double).
  for (size_t k = 0; k < x.size(); ++k) {
    x[k] = std::ldexp(x[k] + 3.0f, static_cast<int>((k * 7919) % 41) - 20);
    dy[k] = std::ldexp(dy[k], static_cast<int>((k * 104729) % 41) - 20);
  }
  struct Out {
    std::vector<float> y, mean, invstd, rm, rv, dx, dg, db;
  };
  auto run = [&](int threads) {
    Out o{std::vector<float>(x.size()), std::vector<float>(c), std::vector<float>(c),
          std::vector<float>(c, 0.5f), std::vector<float>(c, 2.0f),
          std::vector<float>(x.size()), std::vector<float>(c, 0.25f),
          std::vector<float>(c, -0.25f)};
    BatchNormForwardTrain(x.data(), n, c, sp, g.data(), b.data(), {}, o.rm.data(),
                          o.rv.data(), o.y.data(), o.mean.data(), o.invstd.data(), threads);
    BatchNormBackwardTrain(x.data(), dy.data(), n, c, sp, g.data(), o.mean.data(),
                           o.invstd.data(), o.dx.data(), o.dg.data(), o.db.data(), threads);
    return o;
  };
  const Out one = run(1);
  for (int threads : {2, 3, 4}) {
    const Out other = run(threads);
    EXPECT_EQ(one.y, other.y) << threads << " threads";
    EXPECT_EQ(one.mean, other.mean) << threads << " threads";
    EXPECT_EQ(one.invstd, other.invstd) << threads << " threads";
    EXPECT_EQ(one.rm, other.rm) << threads << " threads";
    EXPECT_EQ(one.rv, other.rv) << threads << " threads";
    EXPECT_EQ(one.dx, other.dx) << threads << " threads";
    EXPECT_EQ(one.dg, other.dg) << threads << " threads";
    EXPECT_EQ(one.db, other.db) << threads << " threads";
  }
  // And the grouped statistics are the right ones.
  for (int ch : {0, 7, 8, 15, 18}) {
    double s = 0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < sp; ++j) s += x[(i * c + ch) * sp + j];
    EXPECT_NEAR(one.mean[ch], s / (n * sp), 1e-6 * std::fabs(s / (n * sp)))
        << "channel " << ch;
  }
}

TEST(NnLayers, BatchNormUpdatesRunningStatsLikePyTorch) {
  const int n = 2, c = 1, sp = 3;
  std::vector<float> x = {1, 2, 3, 4, 5, 6}, g = {1}, b = {0}, y(6), mean(1), invstd(1);
  std::vector<float> rm = {0.0f}, rv = {1.0f};
  BatchNormForwardTrain(x.data(), n, c, sp, g.data(), b.data(), {}, rm.data(), rv.data(),
                        y.data(), mean.data(), invstd.data());
  // batch mean 3.5, unbiased var 3.5; momentum 0.1.
  EXPECT_NEAR(rm[0], 0.35f, 1e-6);
  EXPECT_NEAR(rv[0], 0.9f + 0.35f, 1e-6);
  EXPECT_NEAR(invstd[0], 1.0 / std::sqrt(17.5 / 6 + 1e-5), 1e-6);
}

TEST(NnLayers, BatchNormEvalBackwardMatchesFiniteDifferences) {
  const int n = 3, c = 2, sp = 4;
  std::vector<float> x = Randn(n * c * sp, 23), g = Randn(c, 24), b = Randn(c, 25),
                     rm = {0.3f, -0.2f}, rv = {0.5f, 2.0f}, r = Randn(x.size(), 26);
  std::vector<float> y(x.size()), dx(x.size()), dg(c, 0.0f), db(c, 0.0f);
  BatchNormOptions o;
  auto loss = [&] {
    BatchNormForwardEval(x.data(), n, c, sp, g.data(), b.data(), rm.data(), rv.data(), o,
                         y.data());
    return Dot(y, r);
  };
  BatchNormBackwardEval(x.data(), r.data(), n, c, sp, g.data(), rm.data(), rv.data(), o,
                        dx.data(), dg.data(), db.data());
  CheckGradient("bn_eval.x", x, dx, loss);
  CheckGradient("bn_eval.gamma", g, dg, loss);
  CheckGradient("bn_eval.beta", b, db, loss);
}

TEST(NnLayers, DropoutKeepsExpectationAndBackpropagatesMask) {
  const size_t count = 20000;
  std::vector<float> x(count, 1.0f), y(count), mask(count), dx(count);
  Rng rng(27);
  DropoutForward(x.data(), count, 0.3f, &rng, y.data(), mask.data());
  const double mean = std::accumulate(y.begin(), y.end(), 0.0) / count;
  EXPECT_NEAR(mean, 1.0, 0.03);
  const size_t zeros = std::count(mask.begin(), mask.end(), 0.0f);
  EXPECT_NEAR(double(zeros) / count, 0.3, 0.02);
  std::vector<float> r = Randn(count, 28);
  DropoutBackward(r.data(), mask.data(), count, dx.data());
  for (size_t i = 0; i < count; i += 97) EXPECT_EQ(dx[i], r[i] * mask[i]);
  // Same seed, same mask.
  Rng again(27);
  std::vector<float> mask2(count);
  DropoutForward(x.data(), count, 0.3f, &again, y.data(), mask2.data());
  EXPECT_EQ(mask, mask2);
}

// Small batches take a matrix-vector path, larger ones a matrix product:
// both must give y = x W^T + b.
TEST(NnLayers, LinearForwardMatchesReferenceForEveryBatchSize) {
  const int in = 300, out = 17;
  std::vector<float> w = Randn(out * in, 41), b = Randn(out, 42);
  for (int n = 1; n <= 9; ++n) {
    std::vector<float> x = Randn(n * in, 43 + n), y(n * out);
    LinearForward(x.data(), n, in, out, w.data(), b.data(), y.data(), 1);
    for (int r = 0; r < n; ++r) {
      for (int o = 0; o < out; ++o) {
        double want = b[o];
        for (int i = 0; i < in; ++i) want += double(x[r * in + i]) * w[o * in + i];
        EXPECT_NEAR(y[r * out + o], want, 1e-4 * (1 + std::abs(want)))
            << "n=" << n << " row " << r << " output " << o;
      }
    }
  }
}

TEST(NnLayers, LinearBackwardMatchesFiniteDifferences) {
  const int n = 5, in = 7, out = 4;
  std::vector<float> x = Randn(n * in, 29), w = Randn(out * in, 30), b = Randn(out, 31),
                     r = Randn(n * out, 32);
  std::vector<float> y(n * out), dx(x.size()), dw(w.size(), 0.0f), db(out, 0.0f);
  for (bool relu : {false, true}) {
    auto loss = [&] {
      LinearForward(x.data(), n, in, out, w.data(), b.data(), y.data(), 1, relu);
      return Dot(y, r);
    };
    if (!relu) {
      LinearBackward(x.data(), r.data(), n, in, out, w.data(), dw.data(), db.data(), dx.data(), 2);
      CheckGradient("linear.x", x, dx, loss);
      CheckGradient("linear.w", w, dw, loss);
      CheckGradient("linear.b", b, db, loss);
    } else {
      loss();
      for (float v : y) EXPECT_GE(v, 0.0f);
    }
  }
}

TEST(NnLayers, LinearThreadCountsAgree) {
  const int n = 64, in = 300, out = 50;
  std::vector<float> x = Randn(n * in, 33), w = Randn(out * in, 34), b = Randn(out, 35);
  std::vector<float> y1(n * out), y2(n * out);
  LinearForward(x.data(), n, in, out, w.data(), b.data(), y1.data(), 1);
  LinearForward(x.data(), n, in, out, w.data(), b.data(), y2.data(), 2);
  for (size_t i = 0; i < y1.size(); ++i) ASSERT_NEAR(y1[i], y2[i], 1e-4);
}

TEST(NnLayers, L2NormalizeBackwardMatchesFiniteDifferences) {
  const int n = 4, d = 6;
  std::vector<float> x = Randn(n * d, 36), r = Randn(n * d, 37);
  std::vector<float> y(x.size()), norms(n), dx(x.size());
  auto loss = [&] {
    L2NormalizeForward(x.data(), n, d, y.data(), norms.data());
    return Dot(y, r);
  };
  loss();
  for (int i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < d; ++j) s += double(y[i * d + j]) * y[i * d + j];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
  L2NormalizeBackward(y.data(), norms.data(), r.data(), n, d, dx.data());
  CheckGradient("l2.x", x, dx, loss, 1e-3f, 1e-2, x.size());
}

}  // namespace
}  // namespace nn
}  // namespace embedsearch
