#include "core/nn/parallel.h"

#include <cassert>

namespace embedsearch {
namespace nn {

float* ThreadScratch(int slot, size_t count) {
  assert(slot >= 0 && slot < kScratchSlots);
  thread_local std::vector<float> buffers[kScratchSlots];
  std::vector<float>& b = buffers[slot];
  if (b.size() < count) b.resize(count);
  return b.data();
}

}  // namespace nn
}  // namespace embedsearch
