#include "trainer/nearest_selection.h"

#include <algorithm>
#include <cstring>

namespace embedsearch {
namespace {

// For floats >= 0 the IEEE bits order like the values, so all the work is
// on integers. The top kBucketBits of the 31 value bits (8 exponent bits
// and 5 of the mantissa) pick a histogram bucket: 32 buckets per octave of
// distance, so the bucket holding the k-th nearest is a small share of the
// gallery.
constexpr int kBucketBits = 13;
constexpr int kBucketShift = 31 - kBucketBits;

uint32_t DistanceBits(float d) {
  d = d > 0.0f ? d : 0.0f;  // std::max(-0.0f, 0.0f) would keep -0.0f
  uint32_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

// Stable LSD radix sort of (bits << 32 | index) keys by their high 32 bits,
// 8 bits a pass; keys arrive in index order, so equal distances stay in
// gallery order. Result in `keys`.
void SortByDistance(std::vector<uint64_t>& keys, std::vector<uint64_t>& tmp) {
  tmp.resize(keys.size());
  for (int shift = 32; shift < 64; shift += 8) {
    uint32_t count[257] = {};
    for (uint64_t key : keys) ++count[((key >> shift) & 0xFF) + 1];
    // A byte all keys share (the top ones, often) would be a no-op pass.
    if (*std::max_element(count + 1, count + 257) == keys.size()) continue;
    for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
    for (uint64_t key : keys) tmp[count[(key >> shift) & 0xFF]++] = key;
    keys.swap(tmp);
  }
}

}  // namespace

void SelectNearestInOrder(const float* distances, int64_t n, int64_t k,
                          NearestSelectionScratch& s, uint32_t* out) {
  k = std::min(k, n);
  if (k <= 0) return;
  // 1. Distance bits and their histogram over the top bits.
  s.keys.resize(n);
  s.histogram.assign(size_t{1} << kBucketBits, 0);
  for (int64_t g = 0; g < n; ++g) {
    const uint32_t bits = DistanceBits(distances[g]);
    s.keys[g] = bits;
    ++s.histogram[bits >> kBucketShift];
  }
  // 2. The bucket that holds the k-th nearest: everything below it is in.
  uint32_t last_bucket = 0;
  for (int64_t below = 0;; ++last_bucket) {
    below += s.histogram[last_bucket];
    if (below >= k) break;
  }
  // 3. Candidates (buckets up to that one) in gallery order, sorted stably;
  // the first k are the answer.
  s.candidates.clear();
  for (int64_t g = 0; g < n; ++g) {
    if ((s.keys[g] >> kBucketShift) <= last_bucket) {
      s.candidates.push_back(static_cast<uint64_t>(s.keys[g]) << 32 |
                             static_cast<uint64_t>(g));
    }
  }
  SortByDistance(s.candidates, s.sorted);
  for (int64_t j = 0; j < k; ++j) {
    out[j] = static_cast<uint32_t>(s.candidates[j] & 0xFFFFFFFFu);
  }
}

}  // namespace embedsearch
