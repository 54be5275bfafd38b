// 2-D convolution (cross-correlation, as in PyTorch) by im2col + GEMM.
//
// Weights are [out_channels, in_channels, kernel, kernel] row-major, which is
// the [out_channels, in_channels*kernel*kernel] matrix W; one image's output
// is W * im2col(image), a [out_channels, out_h*out_w] matrix, i.e. NCHW.
// All functions are thread-safe; buffers are caller-owned.
#ifndef EMBEDSEARCH_CORE_NN_CONV2D_H_
#define EMBEDSEARCH_CORE_NN_CONV2D_H_

#include <cstdint>

namespace embedsearch {
namespace nn {

struct Conv2dShape {
  int in_channels = 1;
  int in_height = 1;
  int in_width = 1;
  int out_channels = 1;
  int kernel = 3;
  int stride = 1;
  int padding = 1;

  int out_height() const { return (in_height + 2 * padding - kernel) / stride + 1; }
  int out_width() const { return (in_width + 2 * padding - kernel) / stride + 1; }
  // im2col matrix: col_rows() x col_cols().
  int col_rows() const { return in_channels * kernel * kernel; }
  int col_cols() const { return out_height() * out_width(); }
  int64_t weight_size() const {
    return static_cast<int64_t>(out_channels) * col_rows();
  }
  int64_t in_size() const {
    return static_cast<int64_t>(in_channels) * in_height * in_width;
  }
  int64_t out_size() const {
    return static_cast<int64_t>(out_channels) * col_cols();
  }
};

// col[(c*k + ky)*k + kx, oy*out_w + ox] = image[c, oy*s - p + ky, ox*s - p + kx]
// (zero outside the image).
void Im2Col(const Conv2dShape& s, const float* image, float* col);
// The adjoint of Im2Col: image += scatter(col).
void Col2ImAdd(const Conv2dShape& s, const float* col, float* image);

// The transpose of Im2Col: row[oy*out_w + ox, (c*k + ky)*k + kx], one
// contiguous patch per output position (for sparse gradient updates that
// touch only some positions).
void Im2Row(const Conv2dShape& s, const float* image, float* rows);
// The adjoint of Im2Row: image += scatter(rows).
void Row2ImAdd(const Conv2dShape& s, const float* rows, float* image);

// One image: out = W * im2col(image) (+ bias[c] per output channel if bias
// is non-null). `col` is scratch of col_rows()*col_cols() floats.
void Conv2dForwardImage(const Conv2dShape& s, const float* weight,
                        const float* bias, const float* image, float* col,
                        float* out);

// One image, given dL/dout ([out_channels, out_h*out_w]):
//   dweight += dout * im2col(image)^T, dbias[c] += sum of dout row c (if
//   non-null), dimage = col2im(W^T * dout) (overwritten; skipped if null).
// `col` and `dcol` are scratch of col_rows()*col_cols() floats each.
void Conv2dBackwardImage(const Conv2dShape& s, const float* weight,
                         const float* image, const float* dout, float* col,
                         float* dcol, float* dweight, float* dbias,
                         float* dimage);

// Batch versions over n NCHW images, parallel over images with at most
// `threads` OpenMP threads. Backward accumulates dweight/dbias (per-thread
// partial sums added in thread order: deterministic for a fixed thread
// count) and overwrites dinput (if non-null).
void Conv2dForward(const Conv2dShape& s, const float* weight,
                   const float* bias, const float* input, int n,
                   float* output, int threads);
void Conv2dBackward(const Conv2dShape& s, const float* weight,
                    const float* input, const float* dout, int n,
                    float* dweight, float* dbias, float* dinput, int threads);

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_CONV2D_H_
