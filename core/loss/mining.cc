#include "core/loss/mining.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace embedsearch {
namespace {

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

std::vector<Triplet> MineTriplets(const RowMatrix& dist, const int32_t* labels,
                                  Mining mining) {
  const int n = static_cast<int>(dist.rows());
  std::vector<Triplet> out;
  for (int a = 0; a < n; ++a) {
    switch (mining) {
      case Mining::kAll:
        for (int p = 0; p < n; ++p) {
          if (p == a || labels[p] != labels[a]) continue;
          for (int q = 0; q < n; ++q) {
            if (labels[q] != labels[a]) out.push_back({a, p, q});
          }
        }
        break;
      case Mining::kBatchHard: {
        int hp = -1, hn = -1;
        for (int j = 0; j < n; ++j) {
          if (j == a) continue;
          if (labels[j] == labels[a]) {
            if (hp < 0 || dist(a, j) > dist(a, hp)) hp = j;
          } else if (hn < 0 || dist(a, j) < dist(a, hn)) {
            hn = j;
          }
        }
        if (hp >= 0 && hn >= 0) out.push_back({a, hp, hn});
        break;
      }
      case Mining::kSemiHard:
        for (int p = 0; p < n; ++p) {
          if (p == a || labels[p] != labels[a]) continue;
          int semi = -1, far = -1;
          for (int q = 0; q < n; ++q) {
            if (labels[q] == labels[a]) continue;
            if (dist(a, q) > dist(a, p) &&
                (semi < 0 || dist(a, q) < dist(a, semi))) {
              semi = q;
            }
            if (far < 0 || dist(a, q) > dist(a, far)) far = q;
          }
          if (far < 0) break;  // no negative for this anchor
          out.push_back({a, p, semi >= 0 ? semi : far});
        }
        break;
    }
  }
  return out;
}

std::vector<LabeledPair> AllPairs(const int32_t* labels, int n) {
  std::vector<LabeledPair> out;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      out.push_back({i, j, labels[i] == labels[j] ? 1.0 : -1.0});
    }
  }
  return out;
}

std::vector<LabeledPair> PairsFromTriplets(const std::vector<Triplet>& t) {
  std::vector<LabeledPair> out;
  out.reserve(2 * t.size());
  for (const Triplet& x : t) {
    out.push_back({x.anchor, x.positive, 1.0});
    out.push_back({x.anchor, x.negative, -1.0});
  }
  return out;
}

}  // namespace embedsearch
