#include "core/loss/distance.h"

#include <cmath>

namespace embedsearch {
namespace {

double Sgn(double v) { return (v > 0) - (v < 0); }

}  // namespace

double RowDistance(const double* x1, const double* x2, int dim, double p,
                   double eps) {
  double acc = 0;
  if (p == 1) {
    for (int k = 0; k < dim; ++k) acc += std::abs(x1[k] - x2[k] + eps);
    return acc;
  }
  if (p == 2) {
    for (int k = 0; k < dim; ++k) {
      const double v = x1[k] - x2[k] + eps;
      acc += v * v;
    }
    return std::sqrt(acc);
  }
  for (int k = 0; k < dim; ++k) {
    acc += std::pow(std::abs(x1[k] - x2[k] + eps), p);
  }
  return std::pow(acc, 1.0 / p);
}

void AddRowDistanceGrad(const double* x1, const double* x2, int dim, double p,
                        double eps, double dist, double g, double* gx1,
                        double* gx2) {
  if (p != 1 && dist == 0) return;  // ATen masks the gradient where norm == 0
  for (int k = 0; k < dim; ++k) {
    const double v = x1[k] - x2[k] + eps;
    double dv;
    if (p == 1) {
      dv = Sgn(v);
    } else if (p == 2) {
      dv = v / dist;
    } else {
      dv = Sgn(v) * std::pow(std::abs(v), p - 1) / std::pow(dist, p - 1);
    }
    if (gx1 != nullptr) gx1[k] += g * dv;
    if (gx2 != nullptr) gx2[k] -= g * dv;
  }
}

Eigen::VectorXd PairwiseDistance(const RowMatrix& x1, const RowMatrix& x2,
                                 double p, double eps) {
  Eigen::VectorXd d(x1.rows());
  for (Eigen::Index i = 0; i < x1.rows(); ++i) {
    d[i] = RowDistance(x1.row(i).data(), x2.row(i).data(),
                       static_cast<int>(x1.cols()), p, eps);
  }
  return d;
}

}  // namespace embedsearch
