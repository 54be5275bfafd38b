// Writes the format-1 model fixtures of format1_fixture_test.cc: models made
// by Encoder::Create (format 1, before the layer-list encoder) with running
// batch-norm statistics moved off their initial values by a few training
// forwards, plus the embeddings Encode gave for FixtureInputs() and the
// output and gradients of one training Forward/Backward on them. Run once
// from the commit before the layer encoder; kept for the record:
//   make_format1_fixture <dir>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/nn/encoder.h"
#include "tests/nn/format1_fixture.h"

namespace embedsearch {
namespace {

int Write(const std::string& dir, const FixtureModel& f) {
  auto e = Encoder::Create(f.config, f.seed);
  if (!e.ok()) {
    std::fprintf(stderr, "%s\n", e.status().ToString().c_str());
    return 1;
  }
  Encoder& enc = **e;
  std::vector<float> train = FixtureInputs(enc.input_size(), 8, 7);
  for (int step = 0; step < 3; ++step) {
    enc.Forward(train.data(), 8, nullptr, /*training=*/true);
  }
  if (absl::Status s = enc.Save(dir + "/" + f.name + ".model"); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::vector<float> in = FixtureInputs(enc.input_size(), kFixtureImages, 1);
  // Encode's rounding depends on how rows are split (threads; the small
  // batch matrix-vector path), so three cases: the batch on 1 and on 2
  // threads, then each image alone.
  const size_t batch = size_t(kFixtureImages) * enc.dim();
  std::vector<float> out(3 * batch);
  enc.Encode(in.data(), kFixtureImages, out.data(), 1);
  enc.Encode(in.data(), kFixtureImages, out.data() + batch, 2);
  for (int i = 0; i < kFixtureImages; ++i) {
    enc.Encode(in.data() + i * enc.input_size(), 1,
               out.data() + 2 * batch + i * enc.dim(), 1);
  }
  std::ofstream(dir + "/" + f.name + ".embeddings", std::ios::binary)
      .write(reinterpret_cast<const char*>(out.data()),
             static_cast<std::streamsize>(out.size() * sizeof(float)));
  // One training step (2 threads: per-thread partial sums in thread order):
  // the training output, then every parameter gradient in model order.
  enc.set_threads(2);
  enc.SeedDropout(5);
  std::vector<float> train_out(batch);
  enc.Forward(in.data(), kFixtureImages, train_out.data(), /*training=*/true);
  std::vector<float> grad = FixtureInputs(enc.dim(), kFixtureImages, 3);
  enc.ZeroGrad();
  enc.Backward(grad.data());
  for (const Parameter* p : enc.parameters()) {
    train_out.insert(train_out.end(), p->grad.begin(), p->grad.end());
  }
  std::ofstream(dir + "/" + f.name + ".train", std::ios::binary)
      .write(reinterpret_cast<const char*>(train_out.data()),
             static_cast<std::streamsize>(train_out.size() * sizeof(float)));
  return 0;
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_format1_fixture <dir>\n");
    return 2;
  }
  for (const auto& f : embedsearch::FixtureModels()) {
    if (int rc = embedsearch::Write(argv[1], f); rc != 0) return rc;
  }
  return 0;
}
