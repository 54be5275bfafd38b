#include "trainer/holdout.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/index/sha256.h"
#include "core/util/file.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

// The first 64 bits of SHA-256("<seed>:<name>"): a key that depends on the
// name and the seed only.
uint64_t NameKey(uint64_t seed, const std::string& name) {
  const std::string hex = Sha256Hex(absl::StrCat(seed, ":", name));
  uint64_t key = 0;
  (void)absl::SimpleHexAtoi(hex.substr(0, 16), &key);
  return key;
}

// `held_out` names (a subset of `class_names`) as a split.
absl::StatusOr<HoldoutSplit> MakeSplit(
    const std::vector<std::string>& class_names,
    const std::set<std::string>& held_out) {
  HoldoutSplit split;
  for (const std::string& name :
       std::set<std::string>(class_names.begin(), class_names.end())) {
    (held_out.count(name) ? split.held_out : split.seen).push_back(name);
  }
  if (split.held_out.empty() || split.seen.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--holdout_classes: the split must leave classes on both sides; it "
        "holds out %d of %d classes",
        split.held_out.size(), split.seen.size() + split.held_out.size()));
  }
  return split;
}

// Indices of `d`'s images whose label name is (or is not) in `names`.
std::vector<size_t> ImagesOf(const Dataset& d,
                             const std::set<std::string>& names, bool in) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < d.size(); ++i) {
    if ((names.count(d.label_names[d.labels[i]]) > 0) == in) idx.push_back(i);
  }
  return idx;
}

}  // namespace

absl::StatusOr<HoldoutSplit> SplitClassesByFraction(
    const std::vector<std::string>& class_names, double fraction,
    uint64_t seed) {
  if (!(fraction > 0 && fraction < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--holdout_classes: a fraction must be in (0, 1), got ", fraction));
  }
  const std::set<std::string> unique(class_names.begin(), class_names.end());
  std::vector<std::pair<uint64_t, std::string>> keyed;
  for (const std::string& name : unique)
    keyed.emplace_back(NameKey(seed, name), name);
  std::sort(keyed.begin(), keyed.end());
  const size_t count =
      static_cast<size_t>(std::llround(fraction * keyed.size()));
  std::set<std::string> held_out;
  for (size_t i = 0; i < count; ++i) held_out.insert(keyed[i].second);
  ASSIGN_OR_RETURN(HoldoutSplit split, MakeSplit(class_names, held_out));
  split.seed = seed;
  return split;
}

absl::StatusOr<HoldoutSplit> SplitClassesByList(
    const std::vector<std::string>& class_names,
    const std::vector<std::string>& listed) {
  const std::set<std::string> known(class_names.begin(), class_names.end());
  for (const std::string& name : listed) {
    if (known.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--holdout_classes: \"", name, "\" is not a class of the data"));
    }
  }
  return MakeSplit(class_names,
                   std::set<std::string>(listed.begin(), listed.end()));
}

absl::StatusOr<HoldoutSplit> ChooseHeldOutClasses(
    const std::vector<std::string>& class_names, const std::string& spec,
    uint64_t seed) {
  HoldoutSplit split;
  if (!spec.empty()) {
    double fraction = 0;
    if (absl::SimpleAtod(spec, &fraction)) {
      ASSIGN_OR_RETURN(split,
                       SplitClassesByFraction(class_names, fraction, seed));
    } else {
      absl::StatusOr<std::string> text = ReadFile(spec, size_t{64} << 20);
      if (!text.ok()) {
        return absl::Status(
            text.status().code(),
            absl::StrCat("--holdout_classes: neither a fraction "
                         "nor a readable file: ",
                         text.status().message()));
      }
      std::vector<std::string> listed;
      for (absl::string_view line : absl::StrSplit(*text, '\n')) {
        line = absl::StripAsciiWhitespace(line);
        if (!line.empty() && line[0] != '#') listed.emplace_back(line);
      }
      ASSIGN_OR_RETURN(split, SplitClassesByList(class_names, listed));
      split.seed = seed;
    }
  }
  split.spec = spec;
  if (!split.active()) {
    split.seen.assign(class_names.begin(), class_names.end());
    std::sort(split.seen.begin(), split.seen.end());
  }
  return split;
}

v1::ClassSplit HoldoutSplitToProto(const HoldoutSplit& split) {
  v1::ClassSplit proto;
  proto.set_spec(split.spec);
  proto.set_seed(split.seed);
  for (const std::string& name : split.seen) proto.add_seen_classes(name);
  for (const std::string& name : split.held_out)
    proto.add_held_out_classes(name);
  return proto;
}

HoldoutSplit HoldoutSplitFromProto(const v1::ClassSplit& proto) {
  HoldoutSplit split;
  split.spec = proto.spec();
  split.seed = proto.seed();
  split.seen.assign(proto.seen_classes().begin(), proto.seen_classes().end());
  split.held_out.assign(proto.held_out_classes().begin(),
                        proto.held_out_classes().end());
  return split;
}

absl::StatusOr<HeldOutClasses> SplitOffHeldOutClasses(
    const TrainerOptions& options, TrainingData* data) {
  HeldOutClasses result;
  const std::vector<std::string>& names = data->gallery_is_train
                                              ? data->train.label_names
                                              : data->gallery.label_names;
  ASSIGN_OR_RETURN(
      result.split,
      ChooseHeldOutClasses(names, options.holdout_classes, options.seed));
  if (!result.split.active()) return result;
  const std::set<std::string> held(result.split.held_out.begin(),
                                   result.split.held_out.end());
  if (data->gallery_is_train) {
    // Fashion-MNIST: the held-out classes' test images are the held-out
    // queries; the gallery is the whole training file.
    result.images = data->test.Subset(ImagesOf(data->test, held, true));
    data->gallery = data->train;
    data->gallery_is_train = false;
  } else {
    result.images = data->gallery.Subset(ImagesOf(data->gallery, held, true));
  }
  data->train = data->train.Subset(ImagesOf(data->train, held, false));
  data->test = data->test.Subset(ImagesOf(data->test, held, false));
  if (result.images.size() < 2) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--holdout_classes: the %d held-out classes have %d images; "
        "leave-one-out retrieval needs at least 2",
        result.split.held_out.size(), result.images.size()));
  }
  return result;
}

absl::Status WriteHeldOutClassList(const HoldoutSplit& split,
                                   const std::string& work_dir) {
  if (!split.active()) return absl::OkStatus();
  std::string text = absl::StrFormat(
      "# held-out classes of --holdout_classes %s --seed %d (%d of %d)\n",
      split.spec, split.seed, split.held_out.size(),
      split.held_out.size() + split.seen.size());
  for (const std::string& name : split.held_out)
    absl::StrAppend(&text, name, "\n");
  return WriteFileAtomically(absl::StrCat(work_dir, "/held_out_classes.txt"),
                             text);
}

std::string DescribeHeldOutClasses(const HeldOutClasses& held_out,
                                   const TrainingData& data) {
  const HoldoutSplit& s = held_out.split;
  return absl::StrFormat(
      "held-out classes (--holdout_classes %s): %d of %d classes, %d images "
      "(leave-one-out retrieval each evaluation); training on the other %d "
      "classes (%d images, %d test queries); gallery %d images",
      s.spec, s.held_out.size(), s.held_out.size() + s.seen.size(),
      held_out.images.size(), s.seen.size(), data.train.size(),
      data.test.size(),
      data.gallery_is_train ? data.train.size() : data.gallery.size());
}

std::string DescribeExcludedClasses(const std::vector<int32_t>& labels,
                                    const Dataset& train) {
  if (labels.empty()) return "";
  constexpr size_t kNamed = 10;
  std::vector<std::string> names;
  for (size_t i = 0; i < std::min(labels.size(), kNamed); ++i) {
    names.push_back(absl::StrCat("\"", train.label_names[labels[i]], "\""));
  }
  if (labels.size() > kNamed) names.push_back("...");
  return absl::StrFormat(
      "kept out of training (fewer than 2 training images: no positive "
      "pair; their images stay in the gallery): %d %s (%s)",
      labels.size(), labels.size() == 1 ? "class" : "classes",
      absl::StrJoin(names, ", "));
}

absl::Status EvaluateHeldOutClasses(const HeldOutClasses& held_out,
                                    const Encoder& encoder, int threads,
                                    EpochRecord* record) {
  if (!held_out.split.active()) return absl::OkStatus();
  const std::vector<float> emb =
      EncodeDataset(encoder, held_out.images, threads);
  const std::vector<int32_t> labels(held_out.images.labels.begin(),
                                    held_out.images.labels.end());
  ASSIGN_OR_RETURN(record->held_out,
                   EvaluateLeaveOneOut(emb.data(), labels, encoder.dim(),
                                       {.threads = threads}));
  record->held_out_evaluated = true;
  return absl::OkStatus();
}


}  // namespace embedsearch
