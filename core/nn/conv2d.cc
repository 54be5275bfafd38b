#include "core/nn/conv2d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/nn/parallel.h"
#include "core/nn/tensor.h"

namespace embedsearch {
namespace nn {

namespace {

// "Same" convolution (stride 1, out_w == in_w, e.g. 3x3 pad 1): for fixed
// (c, ky, kx) the valid output rows read one contiguous run of the input
// plane shifted by kx - pad, so each im2col row is one long copy plus a
// zero fix-up of the columns that wrapped around a row edge. Per-row copies
// of 14-28 floats are instruction-bound; this is several times faster.
void Im2ColSame(const Conv2dShape& s, const float* image, float* col) {
  const int k = s.kernel, oh = s.out_height(), w = s.in_width, h = s.in_height;
  const int p = s.padding;
  const int64_t plane_out = static_cast<int64_t>(oh) * w;
  for (int c = 0; c < s.in_channels; ++c) {
    const float* plane = image + static_cast<int64_t>(c) * h * w;
    for (int ky = 0; ky < k; ++ky) {
      // Output rows whose input row iy = oy + ky - p is inside the image.
      const int oy0 = std::max(0, p - ky), oy1 = std::min(oh, h + p - ky);
      for (int kx = 0; kx < k; ++kx) {
        float* dst = col + static_cast<int64_t>((c * k + ky) * k + kx) * plane_out;
        const int shift = kx - p;
        for (int64_t j = 0; j < int64_t(oy0) * w; ++j) dst[j] = 0.0f;
        for (int64_t j = int64_t(std::max(oy0, oy1)) * w; j < plane_out; ++j) dst[j] = 0.0f;
        if (oy1 <= oy0) continue;
        const float* src = plane + static_cast<int64_t>(oy0 + ky - p) * w + shift;
        float* d = dst + static_cast<int64_t>(oy0) * w;
        const int64_t len = static_cast<int64_t>(oy1 - oy0) * w;
        // Skip the ends that would read outside the plane; they are zeroed
        // by the fix-up below anyway.
        const int64_t j0 = shift < 0 ? -shift : 0;
        const int64_t j1 = shift > 0 ? len - shift : len;
        for (int64_t j = j0; j < j1; ++j) d[j] = src[j];
        for (int64_t j = j1; j < len; ++j) d[j] = 0.0f;
        for (int64_t j = 0; j < j0; ++j) d[j] = 0.0f;
        // Columns with ix = ox + shift outside [0, w) wrapped to a
        // neighbouring row: zero them.
        const int lo = std::max(0, -shift), hi = std::min(w, w - shift);
        for (int oy = oy0; oy < oy1; ++oy) {
          float* row = dst + static_cast<int64_t>(oy) * w;
          for (int ox = 0; ox < lo; ++ox) row[ox] = 0.0f;
          for (int ox = hi; ox < w; ++ox) row[ox] = 0.0f;
        }
      }
    }
  }
}

// The adjoint of Im2ColSame: one long add per (c, ky, kx) after zeroing the
// wrapped columns of `col` (which is clobbered).
void Col2ImAddSame(const Conv2dShape& s, float* col, float* image) {
  const int k = s.kernel, oh = s.out_height(), w = s.in_width, h = s.in_height;
  const int p = s.padding;
  const int64_t plane_out = static_cast<int64_t>(oh) * w;
  for (int c = 0; c < s.in_channels; ++c) {
    float* plane = image + static_cast<int64_t>(c) * h * w;
    for (int ky = 0; ky < k; ++ky) {
      const int oy0 = std::max(0, p - ky), oy1 = std::min(oh, h + p - ky);
      if (oy1 <= oy0) continue;
      for (int kx = 0; kx < k; ++kx) {
        float* src = col + static_cast<int64_t>((c * k + ky) * k + kx) * plane_out;
        const int shift = kx - p;
        const int lo = std::max(0, -shift), hi = std::min(w, w - shift);
        for (int oy = oy0; oy < oy1; ++oy) {
          float* row = src + static_cast<int64_t>(oy) * w;
          for (int ox = 0; ox < lo; ++ox) row[ox] = 0.0f;
          for (int ox = hi; ox < w; ++ox) row[ox] = 0.0f;
        }
        float* dst = plane + static_cast<int64_t>(oy0 + ky - p) * w + shift;
        const float* sv = src + static_cast<int64_t>(oy0) * w;
        const int64_t len = static_cast<int64_t>(oy1 - oy0) * w;
        const int64_t j0 = shift < 0 ? -shift : 0;
        const int64_t j1 = shift > 0 ? len - shift : len;
        for (int64_t j = j0; j < j1; ++j) dst[j] += sv[j];
      }
    }
  }
}

}  // namespace

void Im2Col(const Conv2dShape& s, const float* image, float* col) {
  const int k = s.kernel, oh = s.out_height(), ow = s.out_width();
  const int h = s.in_height, w = s.in_width;
  if (s.stride == 1 && ow == w) {
    Im2ColSame(s, image, col);
    return;
  }
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
            for (int ox = 0; ox < ow; ++ox) dst[ox] = 0.0f;
            continue;
          }
          const float* src = plane + static_cast<int64_t>(iy) * w;
          if (s.stride == 1) {
            // Rows are short (14-28 floats here): an inline loop the
            // compiler vectorizes beats a libc memcpy call per row.
            const float* shifted = src - s.padding + kx;
            for (int ox = 0; ox < lo; ++ox) dst[ox] = 0.0f;
            for (int ox = lo; ox < hi; ++ox) dst[ox] = shifted[ox];
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

namespace {

// Patch copy/scatter for output positions whose window lies inside the
// image (no bounds checks); K is a compile-time kernel size when known.
template <int K>
inline void CopyPatch(const float* image, int cin, int h, int w, int k,
                      int iy0, int ix0, float* dst) {
  const int kk = K > 0 ? K : k;
  for (int c = 0; c < cin; ++c) {
    const float* p = image + (static_cast<int64_t>(c) * h + iy0) * w + ix0;
    for (int ky = 0; ky < kk; ++ky, p += w) {
      for (int kx = 0; kx < kk; ++kx) *dst++ = p[kx];
    }
  }
}

template <int K>
inline void AddPatch(const float* src, int cin, int h, int w, int k, int iy0,
                     int ix0, float* image) {
  const int kk = K > 0 ? K : k;
  for (int c = 0; c < cin; ++c) {
    float* p = image + (static_cast<int64_t>(c) * h + iy0) * w + ix0;
    for (int ky = 0; ky < kk; ++ky, p += w) {
      for (int kx = 0; kx < kk; ++kx) p[kx] += *src++;
    }
  }
}

}  // namespace

void Im2Row(const Conv2dShape& s, const float* image, float* rows) {
  const int k = s.kernel, oh = s.out_height(), ow = s.out_width();
  const int h = s.in_height, w = s.in_width, kk = s.col_rows();
  for (int oy = 0; oy < oh; ++oy) {
    const int iy0 = oy * s.stride - s.padding;
    for (int ox = 0; ox < ow; ++ox) {
      const int ix0 = ox * s.stride - s.padding;
      float* dst = rows + static_cast<int64_t>(oy * ow + ox) * kk;
      if (iy0 >= 0 && iy0 + k <= h && ix0 >= 0 && ix0 + k <= w) {
        if (k == 3) {
          CopyPatch<3>(image, s.in_channels, h, w, k, iy0, ix0, dst);
        } else {
          CopyPatch<0>(image, s.in_channels, h, w, k, iy0, ix0, dst);
        }
        continue;
      }
      for (int c = 0; c < s.in_channels; ++c) {
        const float* plane = image + static_cast<int64_t>(c) * h * w;
        for (int ky = 0; ky < k; ++ky) {
          const int iy = iy0 + ky;
          float* d = dst + (c * k + ky) * k;
          for (int kx = 0; kx < k; ++kx) {
            const int ix = ix0 + kx;
            d[kx] = (iy >= 0 && iy < h && ix >= 0 && ix < w)
                        ? plane[static_cast<int64_t>(iy) * w + ix]
                        : 0.0f;
          }
        }
      }
    }
  }
}

void Row2ImAdd(const Conv2dShape& s, const float* rows, float* image) {
  const int k = s.kernel, oh = s.out_height(), ow = s.out_width();
  const int h = s.in_height, w = s.in_width, kk = s.col_rows();
  for (int oy = 0; oy < oh; ++oy) {
    const int iy0 = oy * s.stride - s.padding;
    for (int ox = 0; ox < ow; ++ox) {
      const int ix0 = ox * s.stride - s.padding;
      const float* src = rows + static_cast<int64_t>(oy * ow + ox) * kk;
      if (iy0 >= 0 && iy0 + k <= h && ix0 >= 0 && ix0 + k <= w) {
        if (k == 3) {
          AddPatch<3>(src, s.in_channels, h, w, k, iy0, ix0, image);
        } else {
          AddPatch<0>(src, s.in_channels, h, w, k, iy0, ix0, image);
        }
        continue;
      }
      for (int c = 0; c < s.in_channels; ++c) {
        float* plane = image + static_cast<int64_t>(c) * h * w;
        for (int ky = 0; ky < k; ++ky) {
          const int iy = iy0 + ky;
          if (iy < 0 || iy >= h) continue;
          const float* v = src + (c * k + ky) * k;
          for (int kx = 0; kx < k; ++kx) {
            const int ix = ix0 + kx;
            if (ix >= 0 && ix < w) plane[static_cast<int64_t>(iy) * w + ix] += v[kx];
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
    if (s.stride == 1 && s.out_width() == s.in_width) {
      Col2ImAddSame(s, dcol, dimage);  // dcol is our scratch: may clobber
    } else {
      Col2ImAdd(s, dcol, dimage);
    }
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
