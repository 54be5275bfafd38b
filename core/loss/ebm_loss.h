// The energy-based-model losses of the lecture notes (LeCun, "Energy-Based
// Models, part IV"), on energies rather than embeddings.
//
// A sample i has energies E_i(y) for K candidate answers y (row i of a P x K
// matrix) and a correct answer c_i. The most offending incorrect answer is
// ybar_i = argmin_{y != c_i} E_i(y) (the first one on ties). Per sample:
//
//   kEnergy        E(c)
//   kNll           E(c) + (1/beta) log sum_y exp(-beta E(y))
//                  (the notes print exp(+beta E); the minus sign is the
//                  Gibbs distribution P(y) ∝ exp(-beta E(y)) the loss is the
//                  negative log-likelihood of; computed with log-sum-exp)
//   kPerceptron    E(c) - min_y E(y)                 (min over ALL y, so >= 0)
//   kHinge         max(0, m + E(c) - E(ybar))        (the notes' bracket is
//                  misplaced; this is the intended hinge on the difference)
//   kLog           log(1 + exp(E(c) - E(ybar)))      (softplus, stable form)
//   kSquareSquare  E(c)^2 + max(0, m - E(ybar))^2
//
// The functional is the mean over the P samples (1/P sum_i L_i).
// Gradients with respect to the energies; at kinks the hinge passes its
// gradient where its argument is >= 0 (PyTorch's clamp_min convention), and
// min/argmin picks the first index (a subgradient).
//
// Errors: InvalidArgument for P < 1, K < 1 (K < 2 for the kinds that need an
// incorrect answer), correct indices outside [0, K), beta <= 0, or a cost
// matrix of the wrong shape.
#ifndef EMBEDSEARCH_CORE_LOSS_EBM_LOSS_H_
#define EMBEDSEARCH_CORE_LOSS_EBM_LOSS_H_

#include <vector>

#include "absl/status/status.h"
#include "core/loss/loss_types.h"

namespace embedsearch {

enum class EbmLossKind {
  kEnergy,
  kNll,
  kPerceptron,
  kHinge,
  kLog,
  kSquareSquare,
};

struct EbmOptions {
  double margin = 1.0;  // default 1: m of the hinge and square-square losses
  double beta = 1.0;    // default 1: inverse temperature of kNll (> 0)
};

// InvalidArgument unless beta is finite and > 0 (EbmLoss and
// ClassEnergyLoss check their options with it).
absl::Status CheckEbmOptions(const EbmOptions& options);

// One sample: returns L and adds g * dL/dE(y) to grad[y] (grad may be null).
// `energies` has k >= 1 values (k >= 2 for kHinge, kLog, kSquareSquare),
// 0 <= correct < k; not checked here (EbmLoss checks).
double EbmSampleLoss(EbmLossKind kind, const double* energies, int k,
                     int correct, const EbmOptions& options, double g,
                     double* grad);

// The mean over samples. output: 1 value; grads: {dL/dE} (P x K).
absl::StatusOr<LossResult> EbmLoss(const RowMatrix& energies,
                                   const std::vector<int>& correct,
                                   EbmLossKind kind,
                                   const EbmOptions& options = EbmOptions());

// The notes' general form for hinge-type contrastive losses:
//   L_i = sum_{y != c_i} H(E_i(c_i) - E_i(y) + C_i(y)),
// with C(Y^i, y) the margin, given per sample and candidate (P x K; the
// correct column is ignored). The functional is the mean over samples.
enum class HingeFunction {
  kHinge,         // H(z) = max(0, z)
  kSoftHinge,     // H(z) = log(1 + exp(z))
  kSquaredHinge,  // H(z) = max(0, z)^2
};
absl::StatusOr<LossResult> GeneralMarginLoss(const RowMatrix& energies,
                                             const std::vector<int>& correct,
                                             const RowMatrix& cost,
                                             HingeFunction h);

// One sample of the general form (k energies and k costs, cost[correct]
// ignored): returns L_i and adds g * dL_i/dE(y) to grad[y] (grad may be
// null). Unchecked; GeneralMarginLoss checks.
double GeneralMarginSampleLoss(const double* energies, const double* cost,
                               int k, int correct, HingeFunction h, double g,
                               double* grad);

// Numerically stable softplus log(1 + exp(z)) and its derivative.
double Softplus(double z);
double Sigmoid(double z);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_EBM_LOSS_H_
