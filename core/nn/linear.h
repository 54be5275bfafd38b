// Fully connected layer y = x W^T + b over a batch, W stored [out, in]
// row-major (PyTorch's nn.Linear layout). Thread-safe; the batch (forward,
// dx) or the output features (dW) are split over `threads` OpenMP threads.
#ifndef EMBEDSEARCH_CORE_NN_LINEAR_H_
#define EMBEDSEARCH_CORE_NN_LINEAR_H_

namespace embedsearch {
namespace nn {

// x: [n, in], w: [out, in], b: [out] (nullable), y: [n, out]. If `relu`,
// y = max(0, x W^T + b) (fused, saves a pass over y).
void LinearForward(const float* x, int n, int in, int out, const float* w,
                   const float* b, float* y, int threads, bool relu = false);

// dy: [n, out]. dw += dy^T x; db += column sums of dy (if non-null);
// dx = dy W (overwritten; skipped if null).
void LinearBackward(const float* x, const float* dy, int n, int in, int out,
                    const float* w, float* dw, float* db, float* dx,
                    int threads);

}  // namespace nn
}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_NN_LINEAR_H_
