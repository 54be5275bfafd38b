#include "core/loss/embedding_loss.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/loss/distance.h"
#include "core/loss/ebm_loss.h"
#include "core/loss/mining.h"
#include "core/loss/pairwise_losses.h"

namespace embedsearch {
namespace {

struct KindName {
  EmbeddingLossKind kind;
  absl::string_view name;
};
constexpr KindName kKindNames[] = {
    {EmbeddingLossKind::kTriplet, "triplet"},
    {EmbeddingLossKind::kCosine, "cosine"},
    {EmbeddingLossKind::kHingeEmbedding, "hinge-embedding"},
    {EmbeddingLossKind::kMarginHinge, "hinge"},
    {EmbeddingLossKind::kMarginLog, "log"},
    {EmbeddingLossKind::kMarginSquareSquare, "square-square"},
    {EmbeddingLossKind::kNll, "nll"},
    {EmbeddingLossKind::kEnergy, "energy"},
    {EmbeddingLossKind::kPerceptron, "perceptron"},
    {EmbeddingLossKind::kGeneralHinge, "general"},
};

absl::Status Validate(const double* x, int n, int dim, const int32_t* labels,
                      const EmbeddingLossOptions& o) {
  if (x == nullptr || labels == nullptr) {
    return absl::InvalidArgumentError(
        "ComputeEmbeddingLoss: embeddings and labels must not be null");
  }
  if (n < 2 || dim < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ComputeEmbeddingLoss: need n >= 2 embeddings of dim >= 1, got n=", n,
        " dim=", dim));
  }
  if (!(o.p >= 1) || !std::isfinite(o.p)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ComputeEmbeddingLoss: p must be finite and >= 1, got ", o.p));
  }
  if (!(o.eps >= 0) || !std::isfinite(o.eps)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ComputeEmbeddingLoss: eps must be >= 0, got ", o.eps));
  }
  if (!std::isfinite(o.margin)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ComputeEmbeddingLoss: margin must be finite, got ", o.margin));
  }
  if (!(o.beta > 0) || !std::isfinite(o.beta)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ComputeEmbeddingLoss: beta must be finite and > 0, got ", o.beta));
  }
  for (int64_t i = 0; i < int64_t{n} * dim; ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("ComputeEmbeddingLoss: embedding ", i / dim,
                       " has a non-finite ", "value at dimension ", i % dim));
    }
  }
  bool has_positive = false, has_negative = false;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      (labels[i] == labels[j] ? has_positive : has_negative) = true;
    }
  }
  if (!has_positive) {
    return absl::InvalidArgumentError(
        "ComputeEmbeddingLoss: the batch has no two embeddings with the same "
        "label; sample at least 2 per class (PK batches)");
  }
  if (!has_negative && o.kind != EmbeddingLossKind::kEnergy) {
    return absl::InvalidArgumentError(
        "ComputeEmbeddingLoss: the batch has a single label; this loss needs "
        "at least two classes");
  }
  return absl::OkStatus();
}

// Accumulates the loss and dL/d(matrix entries); the caller backpropagates
// the matrix gradient to the embeddings.
struct Accumulator {
  double sum = 0;
  int64_t active = 0;
  int64_t total = 0;
  double pos_sum = 0;
  int64_t pos_count = 0;
  double neg_sum = 0;
  int64_t neg_count = 0;
  void Term(double loss) {
    sum += loss;
    ++total;
    if (loss > 0) ++active;
  }
  void Pos(double d) {
    pos_sum += d;
    ++pos_count;
  }
  void Neg(double d) {
    neg_sum += d;
    ++neg_count;
  }
};

void TripletTerms(const RowMatrix& d, const int32_t* labels,
                  const EmbeddingLossOptions& o, Accumulator* acc,
                  RowMatrix* g) {
  auto term = [&](int a, int p, int q) {
    const double dp = d(a, p);
    const double dan = d(a, q);
    double dn = dan, w_an = 1, w_pn = 0;
    if (o.swap) {
      const double dpn = d(p, q);
      dn = std::min(dan, dpn);
      if (dan == dpn) {
        w_an = w_pn = 0.5;  // at::minimum splits ties
      } else if (dpn < dan) {
        w_an = 0, w_pn = 1;
      }
    }
    const double z = o.margin + dp - dn;
    acc->Term(std::max(z, 0.0));
    acc->Pos(dp);
    acc->Neg(dn);
    if (z >= 0) {  // clamp_min passes the gradient at 0
      (*g)(a, p) += 1;
      (*g)(a, q) -= w_an;
      (*g)(p, q) -= w_pn;
    }
  };
  if (o.mining == Mining::kAll) {
    // Streamed rather than materialised: a batch of 512 over 10 classes has
    // ~12M triplets.
    const int n = static_cast<int>(d.rows());
    for (int a = 0; a < n; ++a) {
      for (int p = 0; p < n; ++p) {
        if (p == a || labels[p] != labels[a]) continue;
        for (int q = 0; q < n; ++q) {
          if (labels[q] != labels[a]) term(a, p, q);
        }
      }
    }
    return;
  }
  for (const Triplet& t : MineTriplets(d, labels, o.mining)) {
    term(t.anchor, t.positive, t.negative);
  }
}

// Pair kinds. `m` is cos (kCosine) or the distance (kHingeEmbedding).
void PairTerms(const RowMatrix& m, const int32_t* labels, int n,
               const EmbeddingLossOptions& o, Accumulator* acc, RowMatrix* g) {
  const bool cosine = o.kind == EmbeddingLossKind::kCosine;
  std::vector<LabeledPair> pairs;
  if (o.mining == Mining::kAll) {
    pairs = AllPairs(labels, n);
  } else {
    RowMatrix dissim = cosine ? RowMatrix((1.0 - m.array()).matrix()) : m;
    pairs = PairsFromTriplets(MineTriplets(dissim, labels, o.mining));
  }
  for (const LabeledPair& pr : pairs) {
    const double v = m(pr.first, pr.second);
    double& gv = (*g)(pr.first, pr.second);
    const double dist = cosine ? 1 - v : v;
    if (pr.target > 0) {
      acc->Pos(dist);
      acc->Term(cosine ? 1 - v : v);
      gv += cosine ? -1 : 1;
    } else {
      acc->Neg(dist);
      // cosine: max(0, cos - margin); hinge-embedding: max(0, margin - d).
      const double z = cosine ? v - o.margin : o.margin - v;
      acc->Term(std::max(z, 0.0));
      if (z >= 0) gv += cosine ? 1 : -1;
    }
  }
}

void EbmTerms(const RowMatrix& e, const int32_t* labels, int n,
              const EmbeddingLossOptions& o, Accumulator* acc, RowMatrix* g) {
  const EbmLossKind kind = ToEbmLossKind(o.kind);
  const bool general = o.kind == EmbeddingLossKind::kGeneralHinge;
  const bool restrict_semi_hard =
      o.mining == Mining::kSemiHard &&
      (general || kind == EbmLossKind::kHinge || kind == EbmLossKind::kLog ||
       kind == EbmLossKind::kSquareSquare);
  EbmOptions eo;
  eo.margin = o.margin;
  eo.beta = o.beta;
  std::vector<int> candidates;
  std::vector<double> energies, grad, cost;
  for (int a = 0; a < n; ++a) {
    std::vector<int> positives, negatives;
    for (int j = 0; j < n; ++j) {
      if (j == a) continue;
      (labels[j] == labels[a] ? positives : negatives).push_back(j);
    }
    if (positives.empty()) continue;
    if (negatives.empty() && o.kind != EmbeddingLossKind::kEnergy) continue;
    if (o.mining == Mining::kBatchHard) {
      int hp = positives[0];
      for (int p : positives) {
        if (e(a, p) > e(a, hp)) hp = p;
      }
      positives = {hp};
    }
    for (int p : positives) {
      candidates.assign(1, p);
      if (o.kind != EmbeddingLossKind::kEnergy) {
        bool any_far = false;
        for (int q : negatives) any_far |= e(a, q) > e(a, p);
        for (int q : negatives) {
          if (!restrict_semi_hard || !any_far || e(a, q) > e(a, p)) {
            candidates.push_back(q);
          }
        }
      }
      const int k = static_cast<int>(candidates.size());
      energies.resize(k);
      for (int j = 0; j < k; ++j) energies[j] = e(a, candidates[j]);
      grad.assign(k, 0.0);
      double loss;
      if (general) {
        cost.assign(k, o.margin);
        loss = GeneralMarginSampleLoss(energies.data(), cost.data(), k, 0,
                                       HingeFunction::kHinge, 1.0, grad.data());
      } else {
        loss = EbmSampleLoss(kind, energies.data(), k, 0, eo, 1.0, grad.data());
      }
      acc->Term(loss);
      acc->Pos(energies[0]);
      if (k > 1) {
        double bar = energies[1];
        for (int j = 2; j < k; ++j) bar = std::min(bar, energies[j]);
        acc->Neg(bar);
      }
      for (int j = 0; j < k; ++j) (*g)(a, candidates[j]) += grad[j];
    }
  }
}

}  // namespace

absl::StatusOr<EmbeddingLossKind> ParseEmbeddingLossKind(
    absl::string_view name) {
  for (const auto& e : kKindNames) {
    if (e.name == name) return e.kind;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown embedding loss '", name,
      "'; expected one of triplet, cosine, hinge-embedding, hinge, log, "
      "square-square, nll, energy, perceptron, general"));
}

absl::string_view EmbeddingLossKindName(EmbeddingLossKind kind) {
  for (const auto& e : kKindNames) {
    if (e.kind == kind) return e.name;
  }
  return "unknown";
}

absl::StatusOr<EmbeddingLossResult> ComputeEmbeddingLossDouble(
    const double* x, int n, int dim, const int32_t* labels,
    const EmbeddingLossOptions& o, std::vector<double>* grad) {
  absl::Status status = Validate(x, n, dim, labels, o);
  if (!status.ok()) return status;
  const bool cosine = o.kind == EmbeddingLossKind::kCosine;
  const bool squared = o.squared_energy && IsAnswerEnergyKind(o.kind);
  auto row = [&](int i) { return x + int64_t{i} * dim; };

  // The kind's base quantity for every ordered pair.
  RowMatrix m = RowMatrix::Zero(n, n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (i == j) continue;
      if (cosine) {
        m(i, j) = RowCosine(row(i), row(j), dim);
      } else if (squared) {
        double s = 0;
        for (int k = 0; k < dim; ++k) {
          const double v = row(i)[k] - row(j)[k];
          s += v * v;
        }
        m(i, j) = s;
      } else {
        m(i, j) = RowDistance(row(i), row(j), dim, o.p, o.eps);
      }
    }
  }

  Accumulator acc;
  RowMatrix g = RowMatrix::Zero(n, n);  // dL/dm before normalisation
  switch (o.kind) {
    case EmbeddingLossKind::kTriplet:
      TripletTerms(m, labels, o, &acc, &g);
      break;
    case EmbeddingLossKind::kCosine:
    case EmbeddingLossKind::kHingeEmbedding:
      PairTerms(m, labels, n, o, &acc, &g);
      break;
    default:
      EbmTerms(m, labels, n, o, &acc, &g);
      break;
  }
  int64_t normalizer = acc.total;
  if (o.kind == EmbeddingLossKind::kTriplet && o.mining == Mining::kAll &&
      o.average_over_active) {
    normalizer = acc.active;
  }
  EmbeddingLossResult result;
  result.active = acc.active;
  result.total = acc.total;
  result.mean_positive_distance =
      acc.pos_count > 0 ? acc.pos_sum / double(acc.pos_count) : 0.0;
  result.mean_negative_distance =
      acc.neg_count > 0 ? acc.neg_sum / double(acc.neg_count) : 0.0;
  grad->assign(int64_t{n} * dim, 0.0);
  if (normalizer == 0) return result;  // nothing active: loss 0, grad 0
  const double scale = 1.0 / static_cast<double>(normalizer);
  result.loss = acc.sum * scale;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (g(i, j) == 0) continue;
      const double gij = g(i, j) * scale;
      double* gi = grad->data() + int64_t{i} * dim;
      double* gj = grad->data() + int64_t{j} * dim;
      if (cosine) {
        AddRowCosineGrad(row(i), row(j), dim, gij, gi, gj);
      } else if (squared) {
        for (int k = 0; k < dim; ++k) {
          const double v = 2 * gij * (row(i)[k] - row(j)[k]);
          gi[k] += v;
          gj[k] -= v;
        }
      } else {
        AddRowDistanceGrad(row(i), row(j), dim, o.p, o.eps, m(i, j), gij, gi,
                           gj);
      }
    }
  }
  return result;
}

absl::StatusOr<EmbeddingLossResult> ComputeEmbeddingLoss(
    const float* embeddings, int n, int dim, const int32_t* labels,
    const EmbeddingLossOptions& options) {
  if (embeddings == nullptr || n < 0 || dim < 0) {
    return absl::InvalidArgumentError(
        "ComputeEmbeddingLoss: embeddings must not be null and n, dim >= 0");
  }
  std::vector<double> x(embeddings, embeddings + int64_t{n} * dim);
  std::vector<double> grad;
  absl::StatusOr<EmbeddingLossResult> result =
      ComputeEmbeddingLossDouble(x.data(), n, dim, labels, options, &grad);
  if (!result.ok()) return result;
  result->grad.assign(grad.begin(), grad.end());
  return result;
}

bool IsAnswerEnergyKind(EmbeddingLossKind k) {
  return k == EmbeddingLossKind::kMarginHinge ||
         k == EmbeddingLossKind::kMarginLog ||
         k == EmbeddingLossKind::kMarginSquareSquare ||
         k == EmbeddingLossKind::kNll || k == EmbeddingLossKind::kEnergy ||
         k == EmbeddingLossKind::kPerceptron ||
         k == EmbeddingLossKind::kGeneralHinge;
}

EbmLossKind ToEbmLossKind(EmbeddingLossKind k) {
  switch (k) {
    case EmbeddingLossKind::kMarginHinge:
      return EbmLossKind::kHinge;
    case EmbeddingLossKind::kMarginLog:
      return EbmLossKind::kLog;
    case EmbeddingLossKind::kMarginSquareSquare:
      return EbmLossKind::kSquareSquare;
    case EmbeddingLossKind::kNll:
      return EbmLossKind::kNll;
    case EmbeddingLossKind::kPerceptron:
      return EbmLossKind::kPerceptron;
    default:
      return EbmLossKind::kEnergy;
  }
}

}  // namespace embedsearch
