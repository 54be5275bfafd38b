#include "core/nn/linear.h"

#include <algorithm>

#include "core/nn/parallel.h"
#include "core/nn/tensor.h"

namespace embedsearch {
namespace nn {
namespace {

// Below this many multiply-adds a second thread costs more than it saves.
constexpr double kMinParallelWork = 2e5;

int ThreadsFor(double work, int threads) {
  return work < kMinParallelWork ? 1 : threads;
}

}  // namespace

// Up to this many rows, one matrix-vector product per row beats a matrix
// product: Eigen's GEMM re-packs all of W (fc1 of the reference encoder:
// 128 x 3136, 1.6 MB) on every call, which dominates for the small batches
// a server encodes (measured: 2-4 rows 1.6-3x faster this way, 8 rows
// slower). One row already takes Eigen's matrix-vector path.
constexpr int kMaxRowsForMatrixVector = 4;

void LinearForward(const float* x, int n, int in, int out, const float* w,
                   const float* b, float* y, int threads, bool relu) {
  ConstMatrixMap wm(w, out, in);
  ParallelChunks(n, ThreadsFor(double(n) * in * out, threads),
                 [&](int64_t begin, int64_t end, int) {
                   const int rows = static_cast<int>(end - begin);
                   ConstMatrixMap xm(x + begin * in, rows, in);
                   MatrixMap ym(y + begin * out, rows, out);
                   if (rows <= kMaxRowsForMatrixVector) {
                     for (int r = 0; r < rows; ++r) {
                       ym.row(r).transpose().noalias() = wm * xm.row(r).transpose();
                     }
                   } else {
                     ym.noalias() = xm * wm.transpose();
                   }
                   if (b != nullptr) {
                     ym.rowwise() += ConstVectorMap(b, out).transpose();
                   }
                   if (relu) ym = ym.cwiseMax(0.0f);
                 });
}

void LinearBackward(const float* x, const float* dy, int n, int in, int out,
                    const float* w, float* dw, float* db, float* dx,
                    int threads) {
  const int t = ThreadsFor(double(n) * in * out, threads);
  ConstMatrixMap xm(x, n, in);
  ConstMatrixMap dym(dy, n, out);
  // dW rows (output features) are independent: split them, no reduction.
  ParallelChunks(out, t, [&](int64_t begin, int64_t end, int) {
    const int rows = static_cast<int>(end - begin);
    MatrixMap dwm(dw + begin * in, rows, in);
    dwm.noalias() += dym.middleCols(begin, rows).transpose() * xm;
    if (db != nullptr) {
      for (int64_t o = begin; o < end; ++o) db[o] += dym.col(o).sum();
    }
  });
  if (dx == nullptr) return;
  ConstMatrixMap wm(w, out, in);
  ParallelChunks(n, t, [&](int64_t begin, int64_t end, int) {
    const int rows = static_cast<int>(end - begin);
    MatrixMap dxm(dx + begin * in, rows, in);
    dxm.noalias() = dym.middleRows(begin, rows) * wm;
  });
}

}  // namespace nn
}  // namespace embedsearch
