#include "core/nn/pool.h"

#include <algorithm>
#include <cstring>

namespace embedsearch {
namespace nn {

void MaxPool2dForwardImage(const PoolShape& s, const float* in, float* out,
                           int32_t* argmax) {
  const int h = s.in_height, w = s.in_width;
  const int oh = s.out_height(), ow = s.out_width();
  for (int c = 0; c < s.channels; ++c) {
    const float* plane = in + static_cast<int64_t>(c) * h * w;
    float* o = out + static_cast<int64_t>(c) * oh * ow;
    int32_t* a = argmax != nullptr ? argmax + static_cast<int64_t>(c) * oh * ow
                                   : nullptr;
    if (s.kernel == 2 && s.stride == 2 && w <= 4096) {
      // The encoder's case, branch-free: the vertical max of the row pair
      // (vectorizes), then the max of horizontal neighbours. On exact ties
      // the top row and then the left column win.
      float vert[4096];
      uint8_t lower[4096];
      for (int oy = 0; oy < oh; ++oy) {
        const float* r0 = plane + (2 * oy) * w;
        const float* r1 = r0 + w;
        for (int x = 0; x < 2 * ow; ++x) {
          const bool down = r1[x] > r0[x];
          vert[x] = down ? r1[x] : r0[x];
          lower[x] = down;
        }
        if (a == nullptr) {
          for (int ox = 0; ox < ow; ++ox) {
            const float l = vert[2 * ox], r = vert[2 * ox + 1];
            o[oy * ow + ox] = r > l ? r : l;
          }
          continue;
        }
        for (int ox = 0; ox < ow; ++ox) {
          const float l = vert[2 * ox], r = vert[2 * ox + 1];
          const int right = r > l;
          const int x = 2 * ox + right;
          o[oy * ow + ox] = right ? r : l;
          a[oy * ow + ox] = (2 * oy + lower[x]) * w + x;
        }
      }
      continue;
    }
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox) {
        int idx = (oy * s.stride) * w + ox * s.stride;
        float best = plane[idx];
        for (int ky = 0; ky < s.kernel; ++ky) {
          for (int kx = 0; kx < s.kernel; ++kx) {
            const int j = (oy * s.stride + ky) * w + ox * s.stride + kx;
            if (plane[j] > best) best = plane[j], idx = j;
          }
        }
        o[oy * ow + ox] = best;
        if (a != nullptr) a[oy * ow + ox] = idx;
      }
    }
  }
}

void MaxPool2dBackwardImage(const PoolShape& s, const float* dout,
                            const int32_t* argmax, float* din) {
  const int64_t plane_in = static_cast<int64_t>(s.in_height) * s.in_width;
  const int64_t plane_out = static_cast<int64_t>(s.out_height()) * s.out_width();
  std::memset(din, 0, sizeof(float) * s.in_size());
  for (int c = 0; c < s.channels; ++c) {
    float* d = din + c * plane_in;
    const float* g = dout + c * plane_out;
    const int32_t* a = argmax + c * plane_out;
    for (int64_t j = 0; j < plane_out; ++j) d[a[j]] += g[j];
  }
}

void MaxPool2dForward(const PoolShape& s, const float* in, int n, float* out,
                      int32_t* argmax) {
  for (int i = 0; i < n; ++i) {
    MaxPool2dForwardImage(s, in + i * s.in_size(), out + i * s.out_size(),
                          argmax != nullptr ? argmax + i * s.out_size() : nullptr);
  }
}

void MaxPool2dBackward(const PoolShape& s, const float* dout,
                       const int32_t* argmax, int n, float* din) {
  for (int i = 0; i < n; ++i) {
    MaxPool2dBackwardImage(s, dout + i * s.out_size(), argmax + i * s.out_size(),
                           din + i * s.in_size());
  }
}

void GlobalAvgPoolForward(const float* in, int n, int channels, int spatial,
                          float* out) {
  for (int64_t r = 0; r < static_cast<int64_t>(n) * channels; ++r) {
    double sum = 0.0;
    for (int j = 0; j < spatial; ++j) sum += in[r * spatial + j];
    out[r] = static_cast<float>(sum / spatial);
  }
}

void GlobalAvgPoolBackward(const float* dout, int n, int channels,
                           int spatial, float* din) {
  for (int64_t r = 0; r < static_cast<int64_t>(n) * channels; ++r) {
    const float g = dout[r] / static_cast<float>(spatial);
    for (int j = 0; j < spatial; ++j) din[r * spatial + j] = g;
  }
}

}  // namespace nn
}  // namespace embedsearch
