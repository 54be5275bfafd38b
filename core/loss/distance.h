// PyTorch's pairwise_distance and its gradient, row by row.
//
//   d(x1, x2) = ||x1 - x2 + eps||_p        (eps is added to the DIFFERENCE,
//                                           which keeps d > 0 when x1 == x2)
//
// Gradient (ATen's norm_backward), with v = x1 - x2 + eps:
//   p == 1:  dd/dv = sgn(v)                 (sgn(0) = 0)
//   p == 2:  dd/dv = v / d,                  0 where d == 0
//   else:    dd/dv = sgn(v) |v|^(p-1) / d^(p-1), 0 where d == 0
// and dd/dx1 = dd/dv, dd/dx2 = -dd/dv. Supported p: finite, p >= 1.
#ifndef EMBEDSEARCH_CORE_LOSS_DISTANCE_H_
#define EMBEDSEARCH_CORE_LOSS_DISTANCE_H_

#include "core/loss/loss_types.h"

namespace embedsearch {

// Distance between two rows of `dim` doubles.
double RowDistance(const double* x1, const double* x2, int dim, double p,
                   double eps);

// Adds g * dd/dx1 to gx1 and g * dd/dx2 to gx2 (either may be null);
// `dist` is RowDistance(x1, x2, ...).
void AddRowDistanceGrad(const double* x1, const double* x2, int dim, double p,
                        double eps, double dist, double g, double* gx1,
                        double* gx2);

// Row-wise distances of two (N, D) matrices of equal shape.
Eigen::VectorXd PairwiseDistance(const RowMatrix& x1, const RowMatrix& x2,
                                 double p, double eps);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_DISTANCE_H_
