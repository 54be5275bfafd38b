#include "core/nn/conv2d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/nn/parallel.h"
#include "core/nn/tensor.h"

namespace embedsearch {
namespace nn {

void Im2Col(const Conv2dShape& s, const float* image, float* col) {
  const int k = s.kernel, oh = s.out_height(), ow = s.out_width();
  const int h = s.in_height, w = s.in_width;
  for (int c = 0; c < s.in_channels; ++c) {
    const float* plane = image + static_cast<int64_t>(c) * h * w;
    for (int ky = 0; ky < k; ++ky) {
      for (int kx = 0; kx < k; ++kx) {
        float* dst = col + static_cast<int64_t>((c * k + ky) * k + kx) * oh * ow;
        // Output columns whose input column is inside the image.
        int lo = 0, hi = ow;
        if (s.stride == 1) {
          lo = std::max(0, s.padding - kx);
          hi = std::min(ow, w + s.padding - kx);
        }
        for (int oy = 0; oy < oh; ++oy, dst += ow) {
          const int iy = oy * s.stride - s.padding + ky;
          if (iy < 0 || iy >= h) {
            std::memset(dst, 0, sizeof(float) * ow);
            continue;
          }
          const float* src = plane + static_cast<int64_t>(iy) * w;
          if (s.stride == 1) {
            for (int ox = 0; ox < lo; ++ox) dst[ox] = 0.0f;
            if (hi > lo) {
              std::memcpy(dst + lo, src + lo - s.padding + kx,
                          sizeof(float) * (hi - lo));
            }
            for (int ox = std::max(hi, lo); ox < ow; ++ox) dst[ox] = 0.0f;
          } else {
            for (int ox = 0; ox < ow; ++ox) {
              const int ix = ox * s.stride - s.padding + kx;
              dst[ox] = (ix >= 0 && ix < w) ? src[ix] : 0.0f;
            }
          }
        }
      }
    }
  }
}

void Col2ImAdd(const Conv2dShape& s, const float* col, float* image) {
  const int k = s.kernel, oh = s.out_height(), ow = s.out_width();
  const int h = s.in_height, w = s.in_width;
  for (int c = 0; c < s.in_channels; ++c) {
    float* plane = image + static_cast<int64_t>(c) * h * w;
    for (int ky = 0; ky < k; ++ky) {
      for (int kx = 0; kx < k; ++kx) {
        const float* src =
            col + static_cast<int64_t>((c * k + ky) * k + kx) * oh * ow;
        for (int oy = 0; oy < oh; ++oy, src += ow) {
          const int iy = oy * s.stride - s.padding + ky;
          if (iy < 0 || iy >= h) continue;
          float* dst = plane + static_cast<int64_t>(iy) * w;
          if (s.stride == 1) {
            const int lo = std::max(0, s.padding - kx);
            const int hi = std::min(ow, w + s.padding - kx);
            float* d = dst - s.padding + kx;
            for (int ox = lo; ox < hi; ++ox) d[ox] += src[ox];
          } else {
            for (int ox = 0; ox < ow; ++ox) {
              const int ix = ox * s.stride - s.padding + kx;
              if (ix >= 0 && ix < w) dst[ix] += src[ox];
            }
          }
        }
      }
    }
  }
}

void Conv2dForwardImage(const Conv2dShape& s, const float* weight,
                        const float* bias, const float* image, float* col,
                        float* out) {
  const int rows = s.col_rows(), cols = s.col_cols();
  Im2Col(s, image, col);
  ConstMatrixMap w(weight, s.out_channels, rows);
  ConstMatrixMap c(col, rows, cols);
  MatrixMap o(out, s.out_channels, cols);
  o.noalias() = w * c;
  if (bias != nullptr) {
    for (int oc = 0; oc < s.out_channels; ++oc) o.row(oc).array() += bias[oc];
  }
}

void Conv2dBackwardImage(const Conv2dShape& s, const float* weight,
                         const float* image, const float* dout, float* col,
                         float* dcol, float* dweight, float* dbias,
                         float* dimage) {
  const int rows = s.col_rows(), cols = s.col_cols();
  ConstMatrixMap d(dout, s.out_channels, cols);
  Im2Col(s, image, col);
  ConstMatrixMap c(col, rows, cols);
  MatrixMap dw(dweight, s.out_channels, rows);
  dw.noalias() += d * c.transpose();
  if (dbias != nullptr) {
    for (int oc = 0; oc < s.out_channels; ++oc) dbias[oc] += d.row(oc).sum();
  }
  if (dimage != nullptr) {
    ConstMatrixMap w(weight, s.out_channels, rows);
    MatrixMap dc(dcol, rows, cols);
    dc.noalias() = w.transpose() * d;
    std::memset(dimage, 0, sizeof(float) * s.in_size());
    Col2ImAdd(s, dcol, dimage);
  }
}

void Conv2dForward(const Conv2dShape& s, const float* weight,
                   const float* bias, const float* input, int n,
                   float* output, int threads) {
  const size_t col_size = static_cast<size_t>(s.col_rows()) * s.col_cols();
  ParallelChunks(n, threads, [&](int64_t begin, int64_t end, int) {
    float* col = ThreadScratch(0, col_size);
    for (int64_t i = begin; i < end; ++i) {
      Conv2dForwardImage(s, weight, bias, input + i * s.in_size(), col,
                         output + i * s.out_size());
    }
  });
}

void Conv2dBackward(const Conv2dShape& s, const float* weight,
                    const float* input, const float* dout, int n,
                    float* dweight, float* dbias, float* dinput, int threads) {
  const size_t col_size = static_cast<size_t>(s.col_rows()) * s.col_cols();
  const int slots = ChunkSlots(n, threads);
  const int64_t wsize = s.weight_size();
  std::vector<float> partial(static_cast<size_t>(slots) * (wsize + s.out_channels), 0.0f);
  ParallelChunks(n, threads, [&](int64_t begin, int64_t end, int slot) {
    float* col = ThreadScratch(0, col_size);
    float* dcol = ThreadScratch(1, col_size);
    float* dw = partial.data() + slot * (wsize + s.out_channels);
    float* db = dw + wsize;
    for (int64_t i = begin; i < end; ++i) {
      Conv2dBackwardImage(s, weight, input + i * s.in_size(),
                          dout + i * s.out_size(), col, dcol, dw,
                          dbias != nullptr ? db : nullptr,
                          dinput != nullptr ? dinput + i * s.in_size() : nullptr);
    }
  });
  for (int t = 0; t < slots; ++t) {
    const float* dw = partial.data() + t * (wsize + s.out_channels);
    for (int64_t j = 0; j < wsize; ++j) dweight[j] += dw[j];
    if (dbias != nullptr) {
      for (int c = 0; c < s.out_channels; ++c) dbias[c] += dw[wsize + c];
    }
  }
}

}  // namespace nn
}  // namespace embedsearch
