#include "core/loss/embedding_loss.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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
};

struct MiningNameEntry {
  Mining mining;
  absl::string_view name;
};
constexpr MiningNameEntry kMiningNames[] = {
    {Mining::kAll, "all"},
    {Mining::kBatchHard, "batch-hard"},
    {Mining::kSemiHard, "semi-hard"},
};

}  // namespace

absl::StatusOr<EmbeddingLossKind> ParseEmbeddingLossKind(
    absl::string_view name) {
  for (const auto& e : kKindNames) {
    if (e.name == name) return e.kind;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown embedding loss '", name,
      "'; expected one of triplet, cosine, hinge-embedding, hinge, log, "
      "square-square, nll, energy, perceptron"));
}

absl::string_view EmbeddingLossKindName(EmbeddingLossKind kind) {
  for (const auto& e : kKindNames) {
    if (e.kind == kind) return e.name;
  }
  return "unknown";
}

absl::StatusOr<Mining> ParseMining(absl::string_view name) {
  for (const auto& e : kMiningNames) {
    if (e.name == name) return e.mining;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown mining '", name,
                   "'; expected one of all, batch-hard, semi-hard"));
}

absl::string_view MiningName(Mining mining) {
  for (const auto& e : kMiningNames) {
    if (e.mining == mining) return e.name;
  }
  return "unknown";
}

absl::StatusOr<EmbeddingLossResult> ComputeEmbeddingLoss(
    const float* /*embeddings*/, int /*n*/, int /*dim*/,
    const int32_t* /*labels*/, const EmbeddingLossOptions& /*options*/) {
  return absl::UnimplementedError("ComputeEmbeddingLoss: work in progress");
}

}  // namespace embedsearch
