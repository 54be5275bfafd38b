// Max pooling (with recorded argmax, so backward is a scatter) and global
// average pooling over NCHW batches. Thread-safe; buffers caller-owned.
#ifndef EMBEDSEARCH_CORE_NN_POOL_H_
#define EMBEDSEARCH_CORE_NN_POOL_H_

#include <cstdint>

namespace embedsearch {
namespace nn {

struct PoolShape {
  int channels = 1;
  int in_height = 2;
  int in_width = 2;
  int kernel = 2;
  int stride = 2;

  // Floor mode, no padding (PyTorch's default): trailing rows/columns that
  // do not fill a window are dropped.
  int out_height() const { return (in_height - kernel) / stride + 1; }
  int out_width() const { return (in_width - kernel) / stride + 1; }
  int64_t in_size() const {
    return static_cast<int64_t>(channels) * in_height * in_width;
  }
  int64_t out_size() const {
    return static_cast<int64_t>(channels) * out_height() * out_width();
  }
};

// One image [C, H, W] -> [C, OH, OW]. argmax (optional) receives, per output,
// the index y*W + x of the maximum within its channel plane (first maximum
// on ties).
void MaxPool2dForwardImage(const PoolShape& s, const float* in, float* out,
                           int32_t* argmax);
// din = scatter of dout to the recorded argmax positions (din overwritten).
void MaxPool2dBackwardImage(const PoolShape& s, const float* dout,
                            const int32_t* argmax, float* din);
// Batch versions (n images, serial).
void MaxPool2dForward(const PoolShape& s, const float* in, int n, float* out,
                      int32_t* argmax);
void MaxPool2dBackward(const PoolShape& s, const float* dout,
                       const int32_t* argmax, int n, float* din);

// [n, C, spatial] -> [n, C]: mean over spatial positions.
void GlobalAvgPoolForward(const float* in, int n, int channels, int spatial,
                          float* out);
// din[n, c, j] = dout[n, c] / spatial (din overwritten).
void GlobalAvgPoolBackward(const float* dout, int n, int channels,
                           int spatial, float* din);

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_POOL_H_
