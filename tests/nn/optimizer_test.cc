// Optimizers vs a straightforward double-precision rendering of PyTorch's
// update rules, exact resume from saved state, and the LR schedules.
#include "core/nn/optimizer.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/nn/encoder.h"
#include "core/nn/lr_schedule.h"
#include "core/nn/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;

// Two parameters; gradients are a fixed function of the values and the step
// (g = 0.5*v + sin(step + j)), so reference and optimizer see the same ones.
struct Problem {
  Parameter a, b;
  Problem() {
    a.name = "a";
    a.shape = {5};
    a.value = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f};
    b.name = "b";
    b.shape = {2};
    b.value = {3.0f, -0.5f};
    b.trainable = true;
  }
  std::vector<Parameter*> params() { return {&a, &b}; }
  void SetGrads(int step) {
    for (Parameter* p : params()) {
      p->grad.resize(p->value.size());
      for (size_t j = 0; j < p->value.size(); ++j) {
        p->grad[j] = 0.5f * p->value[j] + std::sin(float(step + j));
      }
    }
  }
};

struct RefSgd {
  double mu, wd;
  bool nesterov;
  std::vector<double> buf;
  void Step(std::vector<double>& v, int step, double lr) {
    if (buf.empty()) buf.assign(v.size(), 0.0);
    for (size_t j = 0; j < v.size(); ++j) {
      double g = 0.5 * v[j] + std::sin(double(step + j)) + wd * v[j];
      buf[j] = step == 0 ? g : mu * buf[j] + g;
      g = nesterov ? g + mu * buf[j] : buf[j];
      v[j] -= lr * g;
    }
  }
};

struct RefAdam {
  double b1, b2, eps, wd;
  bool decoupled;
  std::vector<double> m, s;
  void Step(std::vector<double>& v, int step, double lr) {
    if (m.empty()) m.assign(v.size(), 0.0), s.assign(v.size(), 0.0);
    const int t = step + 1;
    for (size_t j = 0; j < v.size(); ++j) {
      double g = 0.5 * v[j] + std::sin(double(step + j));
      if (decoupled) v[j] *= 1 - lr * wd; else g += wd * v[j];
      m[j] = b1 * m[j] + (1 - b1) * g;
      s[j] = b2 * s[j] + (1 - b2) * g * g;
      const double mh = m[j] / (1 - std::pow(b1, t));
      const double sh = s[j] / (1 - std::pow(b2, t));
      v[j] -= lr * mh / (std::sqrt(sh) + eps);
    }
  }
};

template <typename Ref>
void CompareWithReference(Optimizer& opt, Problem& p, Ref ref_a, Ref ref_b,
                          int steps, float lr) {
  std::vector<double> va(p.a.value.begin(), p.a.value.end());
  std::vector<double> vb(p.b.value.begin(), p.b.value.end());
  for (int s = 0; s < steps; ++s) {
    p.SetGrads(s);
    opt.Step(lr);
    ref_a.Step(va, s, lr);
    ref_b.Step(vb, s, lr);
  }
  EXPECT_EQ(opt.steps(), steps);
  for (size_t j = 0; j < va.size(); ++j) EXPECT_NEAR(p.a.value[j], va[j], 1e-4) << j;
  for (size_t j = 0; j < vb.size(); ++j) EXPECT_NEAR(p.b.value[j], vb[j], 1e-4) << j;
}

TEST(Optimizer, SgdMomentumMatchesReference) {
  for (bool nesterov : {false, true}) {
    Problem p;
    auto opt = MakeSgd(p.params(), {0.9f, nesterov, 0.01f});
    RefSgd ref{0.9, 0.01, nesterov, {}};
    CompareWithReference(*opt, p, ref, ref, 10, 0.05f);
  }
}

TEST(Optimizer, AdamMatchesReference) {
  Problem p;
  AdamOptions o;
  o.weight_decay = 0.01f;
  auto opt = MakeAdam(p.params(), o);
  RefAdam ref{0.9, 0.999, 1e-8, 0.01, false, {}, {}};
  CompareWithReference(*opt, p, ref, ref, 10, 0.01f);
}

TEST(Optimizer, AdamWDecouplesWeightDecay) {
  Problem p;
  AdamOptions o;
  o.weight_decay = 0.1f;
  auto opt = MakeAdamW(p.params(), o);
  RefAdam ref{0.9, 0.999, 1e-8, 0.1, true, {}, {}};
  CompareWithReference(*opt, p, ref, ref, 10, 0.01f);
}

TEST(Optimizer, SkipsNonTrainableParameters) {
  Problem p;
  p.b.trainable = false;
  const std::vector<float> before = p.b.value;
  auto opt = MakeAdam(p.params());
  p.SetGrads(0);
  opt->Step(0.1f);
  EXPECT_EQ(p.b.value, before);
  EXPECT_NE(p.a.value[0], 0.5f);
}

TEST(Optimizer, ResumeFromSavedStateIsExact) {
  for (int kind = 0; kind < 2; ++kind) {
    auto make = [&](Problem& p) {
      return kind == 0 ? MakeSgd(p.params(), {0.9f, true, 1e-3f}) : MakeAdamW(p.params());
    };
    Problem straight;
    auto opt = make(straight);
    for (int s = 0; s < 6; ++s) {
      straight.SetGrads(s);
      opt->Step(0.02f);
    }
    Problem resumed;
    auto first = make(resumed);
    for (int s = 0; s < 3; ++s) {
      resumed.SetGrads(s);
      first->Step(0.02f);
    }
    const std::string state = first->SaveState();
    Problem copy = resumed;  // the checkpointed weights
    auto second = make(copy);
    ASSERT_TRUE(second->LoadState(state).ok());
    EXPECT_EQ(second->steps(), 3);
    for (int s = 3; s < 6; ++s) {
      copy.SetGrads(s);
      second->Step(0.02f);
    }
    EXPECT_EQ(0, std::memcmp(copy.a.value.data(), straight.a.value.data(), 5 * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(copy.b.value.data(), straight.b.value.data(), 2 * sizeof(float)));
  }
}

TEST(Optimizer, LoadStateRejectsMismatches) {
  Problem p;
  auto sgd = MakeSgd(p.params());
  auto adam = MakeAdam(p.params());
  const std::string state = sgd->SaveState();
  absl::Status s = adam->LoadState(state);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("SGD"));
  EXPECT_EQ(sgd->LoadState(state.substr(0, state.size() - 3)).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(sgd->LoadState("nonsense").code(), absl::StatusCode::kDataLoss);
  Problem other;
  other.b.name = "c";
  auto sgd2 = MakeSgd(other.params());
  s = sgd2->LoadState(state);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("expected c"));
}

TEST(Optimizer, SameSeedOneThreadGivesIdenticalEncoderWeights) {
  for (int kind = 0; kind < 2; ++kind) {
    auto train = [&](uint64_t seed) {
      EncoderConfig c;
      c.input_height = c.input_width = 12;
      c.conv_channels = {4, 8};
      c.hidden = 16;
      c.embedding_dim = 8;
      c.batch_norm = kind == 1;
      auto e = Encoder::Create(c, seed).value();
      e->set_threads(1);
      auto opt = kind == 0 ? MakeSgd(e->parameters()) : MakeAdam(e->parameters());
      nn::Rng rng(99);
      for (int step = 0; step < 8; ++step) {
        std::vector<float> x(6 * e->input_size());
        for (float& v : x) v = rng.Normal();
        std::vector<float> y(6 * e->dim());
        opt->ZeroGrad();
        e->Forward(x.data(), 6, y.data(), true);
        e->Backward(y.data());
        opt->Step(0.01f);
      }
      return e->model_version();
    };
    EXPECT_EQ(train(5), train(5)) << kind;
    EXPECT_NE(train(5), train(6)) << kind;
  }
}

TEST(Optimizer, ThreadCountDoesNotChangeUpdates) {
  auto run = [](int kind, int threads) {
    Parameter p;
    p.name = "big";
    p.shape = {300000};
    nn::Rng rng(3);
    for (int i = 0; i < 300000; ++i) p.value.push_back(rng.Normal());
    p.grad.resize(p.value.size());
    auto opt = kind == 0 ? MakeSgd({&p}, {0.9f, true, 1e-4f}) : MakeAdamW({&p});
    opt->set_threads(threads);
    for (int s = 0; s < 3; ++s) {
      for (size_t j = 0; j < p.value.size(); ++j) p.grad[j] = std::sin(p.value[j] + s);
      opt->Step(0.01f);
    }
    return p.value;
  };
  for (int kind = 0; kind < 2; ++kind) {
    const std::vector<float> a = run(kind, 1), b = run(kind, 2);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << kind;
  }
}

TEST(LrSchedule, ConstantStepCosineAndWarmup) {
  LearningRateSchedule s;
  s.base_lr = 0.1f;
  EXPECT_FLOAT_EQ(LearningRateAt(s, 0), 0.1f);
  EXPECT_FLOAT_EQ(LearningRateAt(s, 12345), 0.1f);

  s.kind = LearningRateSchedule::Kind::kStep;
  s.step_size = 10;
  s.gamma = 0.5f;
  EXPECT_FLOAT_EQ(LearningRateAt(s, 9), 0.1f);
  EXPECT_FLOAT_EQ(LearningRateAt(s, 10), 0.05f);
  EXPECT_FLOAT_EQ(LearningRateAt(s, 25), 0.025f);

  s.warmup_steps = 4;
  EXPECT_FLOAT_EQ(LearningRateAt(s, 0), 0.025f);
  EXPECT_FLOAT_EQ(LearningRateAt(s, 3), 0.1f);
  EXPECT_FLOAT_EQ(LearningRateAt(s, 4 + 10), 0.05f);

  s.kind = LearningRateSchedule::Kind::kCosine;
  s.total_steps = 104;
  s.min_lr = 0.001f;
  EXPECT_FLOAT_EQ(LearningRateAt(s, 4), 0.1f);
  EXPECT_NEAR(LearningRateAt(s, 54), 0.0505f, 1e-6);
  EXPECT_FLOAT_EQ(LearningRateAt(s, 104), 0.001f);
  EXPECT_FLOAT_EQ(LearningRateAt(s, 1000), 0.001f);
  // Monotone after warm-up.
  for (int i = 5; i < 104; ++i) EXPECT_LE(LearningRateAt(s, i), LearningRateAt(s, i - 1));
}

TEST(LrSchedule, ParsesKinds) {
  EXPECT_EQ(ParseLearningRateScheduleKind("cosine").value(), LearningRateSchedule::Kind::kCosine);
  EXPECT_EQ(ParseLearningRateScheduleKind("step").value(), LearningRateSchedule::Kind::kStep);
  EXPECT_EQ(ParseLearningRateScheduleKind("constant").value(), LearningRateSchedule::Kind::kConstant);
  EXPECT_EQ(ParseLearningRateScheduleKind("linear").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace embedsearch
