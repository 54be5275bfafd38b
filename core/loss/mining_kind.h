// The mining strategies by name, apart from mining.h so that
// embedding_loss.h (the trainer's header) does not pull in Eigen.
#ifndef EMBEDSEARCH_CORE_LOSS_MINING_KIND_H_
#define EMBEDSEARCH_CORE_LOSS_MINING_KIND_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedsearch {

enum class Mining {
  kAll,        // every valid triplet (a, p, n): a != p, same label; n other
  kBatchHard,  // per anchor: hardest positive (max dist), most offending
               // negative (min dist) (Hermans et al. 2017)
  kSemiHard,   // per positive pair (a, p): the closest negative farther than
               // p (dist(a,n) > dist(a,p)); if none, the farthest negative
               // (TensorFlow's triplet_semihard_loss; FaceNet)
};

// "all", "batch-hard", "semi-hard".
absl::StatusOr<Mining> ParseMining(absl::string_view name);
absl::string_view MiningName(Mining mining);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_LOSS_MINING_KIND_H_
