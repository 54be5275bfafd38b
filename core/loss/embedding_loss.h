// The trainer-facing loss: a batch of labelled embeddings in, one scalar loss
// and dLoss/dEmbedding out. Mining (which triplets / pairs / answers take
// part) and the loss kind are chosen by EmbeddingLossOptions.
//
// Definitions (all distances are PyTorch's pairwise_distance,
// d(x, y) = ||x - y + eps||_p, unless squared_energy is set, in which case
// the EBM kinds use E(x, y) = ||x - y||_2^2):
//
//   kTriplet            TripletMarginLoss on mined triplets (a, p, n):
//                       max(0, margin + d(a,p) - d(a,n')), d(a,n') =
//                       min(d(a,n), d(p,n)) if swap.
//                         kAll: every valid triplet; the loss is the SUM over
//                           triplets divided by the number of triplets with a
//                           positive loss ("batch-all", Hermans et al. 2017);
//                           0 if none is active. Set
//                           average_over_active=false for the plain PyTorch
//                           mean over all triplets.
//                         kBatchHard: per anchor, hardest positive (max d) and
//                           hardest negative (min d); mean over anchors.
//                         kSemiHard: per positive pair (a,p), the closest
//                           negative farther than p (d(a,n) > d(a,p)); if
//                           none, the farthest negative (as TF's
//                           triplet_semihard_loss); mean over pairs.
//   kCosine             CosineEmbeddingLoss(margin) on pairs: target +1 for
//                       same label, -1 otherwise; mean over pairs.
//   kHingeEmbedding     HingeEmbeddingLoss(margin) on x = d(a,b) of pairs;
//                       mean over pairs.
//                       Pairs for both: kAll = every unordered pair i<j;
//                       kBatchHard / kSemiHard = the mined triplets (a,p,n)
//                       of the triplet kind (with the kind's own distance:
//                       1-cos for kCosine, d for kHingeEmbedding), each
//                       giving the pairs (a,p,+1) and (a,n,-1).
//   kMarginHinge        generalized margin losses over the most offending
//   kMarginLog          incorrect answer nbar(a) = argmin over the
//   kMarginSquareSquare negatives n of a of E(a,n), E = energy; for each
//                       correct answer p of anchor a:
//                         hinge:  max(0, margin + E(a,p) - E(a,nbar))
//                         log:    log(1 + exp(E(a,p) - E(a,nbar)))
//                         sq-sq:  E(a,p)^2 + max(0, margin - E(a,nbar))^2
//                       Correct answers: kAll = every positive of a;
//                       kBatchHard = the hardest positive (max E) only;
//                       kSemiHard = every positive, with nbar restricted to
//                       the negatives farther than p (E(a,n) > E(a,p)),
//                       falling back to the most offending one if none is.
//                       Mean over (a, p).
//   kNll                negative log-likelihood with a Gibbs distribution over
//                       the candidates Y(a,p) = {p} U {negatives of a}
//                       (the notes print exp(+beta E): a sign slip):
//                         E(a,p) + (1/beta) log sum_{y in Y} exp(-beta E(a,y))
//                       (= -(1/beta) log softmax(-beta E)[p]); correct answers
//                       as for the margin kinds (kSemiHard = kAll). Mean over
//                       (a, p).
//   kEnergy             energy loss E(a,p), mean over (a,p) as for kNll (no
//                       push-up: collapses if trained alone; for study).
//   kPerceptron         E(a,p) - min_{y in Y(a,p)} E(a,y), mean over (a,p).
//   kGeneralHinge       the notes' general form with H = hinge and
//                       C(p, n) = margin for every incorrect answer n:
//                         sum_{n in N(a,p)} max(0, E(a,p) - E(a,n) + margin),
//                       N(a,p) = the negatives of a (kSemiHard: those farther
//                       than p if any); correct answers as for the margin
//                       kinds. Mean over (a, p).
//
// kEnergy, kNll and kPerceptron ignore kSemiHard (it acts as kAll).
//
// Gradients follow PyTorch's conventions at kinks: a hinge max(0, z) passes
// the gradient at z == 0 (clamp_min's mask is z >= 0); ties in mining and in
// the most offending answer pick the first index, except the triplet swap,
// which follows at::minimum and splits the gradient in half.
// The gradient treats the selection (mined triplets, nbar) and the active
// count of batch-all as constants, as autograd would.
//
// Cost: an n x n matrix of distances (O(n^2 dim) time, O(n^2) memory);
// triplet + kAll visits every triplet (O(n^3)), streamed, not stored. A
// batch of 160 x 64 takes a few milliseconds for any kind.
//
// Thread safety: ComputeEmbeddingLoss is a pure function; call it from any
// thread. This header exposes no Eigen types, so callers may be compiled
// with other -march flags than the loss library.
#ifndef EMBEDSEARCH_CORE_LOSS_EMBEDDING_LOSS_H_
#define EMBEDSEARCH_CORE_LOSS_EMBEDDING_LOSS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/loss/mining_kind.h"

namespace embedsearch {

enum class EmbeddingLossKind {
  kTriplet,
  kCosine,
  kHingeEmbedding,
  kMarginHinge,
  kMarginLog,
  kMarginSquareSquare,
  kNll,
  kEnergy,
  kPerceptron,
  kGeneralHinge,
};

struct EmbeddingLossOptions {
  EmbeddingLossKind kind = EmbeddingLossKind::kTriplet;  // default: triplet
  Mining mining = Mining::kAll;                          // default: all
  double margin = 0.2;          // default 0.2 (triplet / hinge / margin kinds;
                                // cosine uses it as its cos margin)
  double p = 2;                 // default 2: norm of pairwise_distance (>= 1)
  double eps = 1e-6;            // default 1e-6: pairwise_distance's eps
  bool swap = false;            // default off: triplet distance swap
  double beta = 1;              // default 1: inverse temperature of kNll (> 0)
  bool squared_energy = false;  // default off: EBM kinds use d(a,b); on:
                                // ||a-b||_2^2
  bool average_over_active = true;  // default on: kTriplet+kAll divides by
                                    // the number of active triplets
};

struct EmbeddingLossResult {
  double loss = 0;
  std::vector<float> grad;  // n * dim, dLoss/dEmbedding, row-major
  int64_t active = 0;       // terms (triplets / pairs / anchors) with loss > 0
  int64_t total = 0;        // terms that entered the loss
  // Means over the terms used of the positive / negative dissimilarity:
  // d (triplet, hinge-embedding), 1 - cos (cosine), E(a,p) and E(a, nbar)
  // (EBM kinds). 0 when there is none.
  double mean_positive_distance = 0;
  double mean_negative_distance = 0;
};

// `embeddings` holds n rows of `dim` floats; `labels` holds n labels. The
// batch needs at least one positive pair and one negative for every kind but
// kEnergy (InvalidArgument otherwise, as for n < 2, dim < 1, p < 1,
// beta <= 0, eps < 0, non-finite margin, or non-finite embeddings).
// Computes in double; the result's grad is rounded to float.
absl::StatusOr<EmbeddingLossResult> ComputeEmbeddingLoss(
    const float* embeddings, int n, int dim, const int32_t* labels,
    const EmbeddingLossOptions& options);

// "triplet", "cosine", "hinge-embedding", "hinge", "log", "square-square",
// "nll", "energy", "perceptron", "general".
absl::StatusOr<EmbeddingLossKind> ParseEmbeddingLossKind(
    absl::string_view name);
absl::string_view EmbeddingLossKindName(EmbeddingLossKind kind);

// True for the kinds defined on energies of answers, the notes' EBM losses:
// margin hinge/log/square-square, nll, energy, perceptron, general hinge.
// (squared_energy applies to these; triplet, cosine and hinge-embedding keep
// their own distances.)
bool IsAnswerEnergyKind(EmbeddingLossKind kind);

// The loss on answer energies (core/loss/ebm_loss.h) an EBM kind stands for:
// kMarginHinge -> kHinge, kMarginLog -> kLog, kMarginSquareSquare ->
// kSquareSquare, kNll, kPerceptron; kEnergy for every other kind.
enum class EbmLossKind;
EbmLossKind ToEbmLossKind(EmbeddingLossKind kind);

// ParseMining / MiningName ("all", "batch-hard", "semi-hard") are in
// core/loss/mining_kind.h, included above.

// The same computation on doubles, for gradient checks and double callers:
// the returned result's grad is empty and `grad` receives n * dim doubles.
absl::StatusOr<EmbeddingLossResult> ComputeEmbeddingLossDouble(
    const double* embeddings, int n, int dim, const int32_t* labels,
    const EmbeddingLossOptions& options, std::vector<double>* grad);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_EMBEDDING_LOSS_H_
