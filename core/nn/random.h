// A small seeded random generator with a fixed algorithm (SplitMix64 and
// Box-Muller), so initial weights and dropout masks are the same on every
// platform and standard library for a given seed.
#ifndef EMBEDSEARCH_CORE_NN_RANDOM_H_
#define EMBEDSEARCH_CORE_NN_RANDOM_H_

#include <cmath>
#include <cstdint>

namespace embedsearch {
namespace nn {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 24 bits of precision.
  float Uniform() { return static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f); }
  float Uniform(float lo, float hi) { return lo + (hi - lo) * Uniform(); }
  // Standard normal (Box-Muller; one draw per call, no cached pair).
  float Normal() {
    const double u1 = (static_cast<double>(Next() >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(Next() >> 11) * 0x1.0p-53;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) *
                              std::cos(6.283185307179586 * u2));
  }

  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_RANDOM_H_
