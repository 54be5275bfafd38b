// Times an encoder on random inputs. --model=reference (default): conv
// 1->32, pool, conv 32->64, pool, linear 3136->128, ReLU, linear 128->64, L2
// norm on 28x28x1 (the trainer's fmnist-small); --model=colour-small: the
// colour preset c32,p,c64,p,r128,p,gap,fc64 on 64x64x3 (conv + BN + ReLU,
// a residual block with a projection shortcut, global average pooling).
//   encode_b1     Encode of one image (latency)
//   encode_b256   Encode of 256 images (throughput)
//   train_sgd_b<B> / train_adam_b<B>  ZeroGrad + Forward + Backward of
//                 L = sum(y^2) + optimizer step, batch --train_batch (128)
// Prints one JSON object per line: {"name", "threads", "ms" (median),
// "ms_mean", "items_per_s", "cpu_ms" (process CPU time per rep), "reps"}.
// Median over repetitions because the machine is shared.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "core/nn/arch_spec.h"
#include "core/nn/encoder.h"
#include "core/nn/optimizer.h"
#include "core/nn/random.h"

ABSL_FLAG(int, threads, 1, "OpenMP threads for encoding and training");
ABSL_FLAG(double, seconds, 2.0, "minimum measuring time per case");
ABSL_FLAG(std::string, cases, "encode_b1,encode_b256,train_sgd,train_adam",
          "comma-separated cases to run");
ABSL_FLAG(std::string, model, "reference", "reference | colour-small");
ABSL_FLAG(int, train_batch, 128, "batch size of the training cases");
ABSL_FLAG(int, min_reps, 5, "minimum timed repetitions per case");

namespace embedsearch {
namespace {

using Clock = std::chrono::steady_clock;

void Measure(const std::string& name, int threads, int items, double seconds,
             const std::function<void()>& fn) {
  for (int i = 0; i < 3; ++i) fn();  // warm-up: scratch buffers, caches
  std::vector<double> ms;
  timespec c0, c1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  const auto start = Clock::now();
  while (ms.size() < static_cast<size_t>(absl::GetFlag(FLAGS_min_reps)) ||
         std::chrono::duration<double>(Clock::now() - start).count() <
             seconds) {
    const auto t0 = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (ms.size() >= 100000) break;
  }
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  const double cpu_ms = ((c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) * 1e-6) / ms.size();
  double mean = 0;
  for (double v : ms) mean += v;
  mean /= ms.size();
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf(
      "{\"name\": \"%s\", \"threads\": %d, \"ms\": %.5f, \"ms_mean\": %.5f, "
      "\"items_per_s\": %.1f, \"cpu_ms\": %.5f, \"reps\": %zu}\n",
      name.c_str(), threads, median, mean, items * 1000.0 / median, cpu_ms, ms.size());
  std::fflush(stdout);
}

int Main() {
  const int threads = absl::GetFlag(FLAGS_threads);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const std::string cases = "," + absl::GetFlag(FLAGS_cases) + ",";
  auto want = [&](const char* c) { return cases.find(std::string(",") + c + ",") != std::string::npos; };

  EncoderConfig config;
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model == "colour-small") {
    config.input_height = config.input_width = 64;
    config.input_channels = 3;
    if (absl::Status s = ApplyArch(model, &config); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  } else if (model != "reference") {
    std::fprintf(stderr, "unknown --model %s\n", model.c_str());
    return 2;
  }
  auto encoder = Encoder::Create(config, 1).value();
  const int batch = absl::GetFlag(FLAGS_train_batch);
  encoder->set_threads(threads);
  nn::Rng rng(7);
  std::vector<float> x(std::max(256, batch) * encoder->input_size());
  for (float& v : x) v = rng.Normal();
  std::vector<float> y(std::max(256, batch) * encoder->dim());

  if (want("encode_b1")) {
    Measure("encode_b1", threads, 1, seconds,
            [&] { encoder->Encode(x.data(), 1, y.data(), threads); });
  }
  if (want("encode_b256")) {
    Measure("encode_b256", threads, 256, seconds,
            [&] { encoder->Encode(x.data(), 256, y.data(), threads); });
  }
  for (const char* kind : {"sgd", "adam"}) {
    if (!want((std::string("train_") + kind).c_str())) continue;
    const std::string name =
        std::string("train_") + kind + "_b" + std::to_string(batch);
    std::unique_ptr<Optimizer> opt =
        std::string(kind) == "sgd" ? MakeSgd(encoder->parameters())
                                   : MakeAdam(encoder->parameters());
    opt->set_threads(threads);
    std::vector<float> grad(batch * encoder->dim());
    Measure(name, threads, batch, seconds, [&] {
      opt->ZeroGrad();
      encoder->Forward(x.data(), batch, y.data(), /*training=*/true);
      for (size_t i = 0; i < grad.size(); ++i)
        grad[i] = 2.0f * y[i];  // d sum(y^2)
      encoder->Backward(grad.data());
      opt->Step(1e-3f);
    });
  }
  return 0;
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return embedsearch::Main();
}
