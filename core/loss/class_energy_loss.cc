#include "core/loss/class_energy_loss.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace embedsearch {

absl::StatusOr<ClassEnergyLossResult> ClassEnergyLoss(
    const float* embeddings, int n, int dim, const int32_t* labels,
    const float* prototypes, int classes, EbmLossKind kind,
    const EbmOptions& options) {
  if (n < 1 || dim < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("class energy loss needs n >= 1 and dim >= 1, got n=", n,
                     " dim=", dim));
  }
  if (classes < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "class energy loss needs at least 2 classes, got ", classes));
  }
  RETURN_IF_ERROR(CheckEbmOptions(options));
  for (int i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label ", labels[i], " of image ", i, " is outside [0, ", classes, ")"));
    }
  }
  // Unit class vectors u_c = w_c / ||w_c||.
  std::vector<double> unit(static_cast<size_t>(classes) * dim);
  std::vector<double> norm(classes);
  for (int c = 0; c < classes; ++c) {
    double s = 0;
    for (int j = 0; j < dim; ++j) s += double(prototypes[c * dim + j]) * prototypes[c * dim + j];
    norm[c] = std::sqrt(s);
    if (!(norm[c] > 0) || !std::isfinite(norm[c])) {
      return absl::InvalidArgumentError(
          absl::StrCat("class vector ", c, " is zero or not finite"));
    }
    for (int j = 0; j < dim; ++j) unit[c * dim + j] = prototypes[c * dim + j] / norm[c];
  }

  ClassEnergyLossResult r;
  r.grad_embeddings.assign(static_cast<size_t>(n) * dim, 0.0f);
  std::vector<double> grad_unit(static_cast<size_t>(classes) * dim, 0.0);
  std::vector<double> energy(classes), grad_energy(classes), diff(dim);
  const double per_image = 1.0 / n;
  for (int i = 0; i < n; ++i) {
    const float* x = embeddings + static_cast<size_t>(i) * dim;
    for (int c = 0; c < classes; ++c) {
      double e = 0;
      for (int j = 0; j < dim; ++j) {
        const double d = x[j] - unit[c * dim + j];
        e += d * d;
      }
      energy[c] = e;
    }
    const int own = labels[i];
    int offending = own == 0 ? 1 : 0;
    for (int c = 0; c < classes; ++c) {
      if (c != own && energy[c] < energy[offending]) offending = c;
    }
    if (energy[own] < energy[offending]) ++r.correct;
    r.mean_positive_energy += energy[own] * per_image;
    r.mean_negative_energy += energy[offending] * per_image;

    std::fill(grad_energy.begin(), grad_energy.end(), 0.0);
    // EbmSampleLoss returns L_i and adds per_image * dL_i/dE to the gradient.
    r.loss += per_image * EbmSampleLoss(kind, energy.data(), classes, own,
                                        options, per_image, grad_energy.data());
    // dE(x,c)/dx = 2 (x - u_c); dE(x,c)/du_c = -2 (x - u_c).
    float* gx = r.grad_embeddings.data() + static_cast<size_t>(i) * dim;
    for (int c = 0; c < classes; ++c) {
      if (grad_energy[c] == 0) continue;
      for (int j = 0; j < dim; ++j) {
        const double g = 2 * grad_energy[c] * (x[j] - unit[c * dim + j]);
        gx[j] += static_cast<float>(g);
        grad_unit[c * dim + j] -= g;
      }
    }
  }
  // Through the normalization: dL/dw = (I - u u^T) dL/du / ||w||.
  r.grad_prototypes.assign(static_cast<size_t>(classes) * dim, 0.0f);
  for (int c = 0; c < classes; ++c) {
    double along = 0;
    for (int j = 0; j < dim; ++j) along += unit[c * dim + j] * grad_unit[c * dim + j];
    for (int j = 0; j < dim; ++j) {
      r.grad_prototypes[c * dim + j] = static_cast<float>(
          (grad_unit[c * dim + j] - along * unit[c * dim + j]) / norm[c]);
    }
  }
  return r;
}

}  // namespace embedsearch
