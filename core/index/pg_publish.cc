#include "core/index/pg_publish.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/index/bundle.h"
#include "core/index/pg_catalog.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

constexpr size_t kPublishBatch = 1000;

}  // namespace

absl::StatusOr<PublishResult> PublishBundle(const std::string& bundle_dir,
                                            const std::string& dsn) {
  ASSIGN_OR_RETURN(std::unique_ptr<Bundle> bundle, Bundle::Load(bundle_dir));
  const std::string& version = bundle->model_version();
  ASSIGN_OR_RETURN(
      std::unique_ptr<Catalog> source,
      Catalog::OpenReadOnly(absl::StrCat(bundle_dir, "/", kCatalogFile)));
  ASSIGN_OR_RETURN(std::unique_ptr<PgCatalog> target,
                   PgCatalog::Open(dsn, source->dim(), version));
  ASSIGN_OR_RETURN(int64_t existing, target->Count());
  if (existing > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the PostgreSQL catalog (", target->description(),
                     ") holds ", existing, " items of model version ", version,
                     " already (a generation is published once; drop it with "
                     "`embedsearch-catalog drop` to publish it again)"));
  }
  RETURN_IF_ERROR(target->SetModelVersion(version));
  ASSIGN_OR_RETURN(std::vector<std::string> labels, source->LabelNames());
  RETURN_IF_ERROR(target->DefineLabels(labels));

  PublishResult result;
  result.model_version = version;
  result.catalog = target->description();
  std::vector<CatalogItem> batch;
  absl::Status copied = absl::OkStatus();
  auto flush = [&] {
    if (batch.empty() || !copied.ok()) return;
    result.items += static_cast<int64_t>(batch.size());
    copied = target->Add(std::exchange(batch, {})).status();
  };
  RETURN_IF_ERROR(source->ForEach(
      [&](const CatalogItem& item) {
        batch.push_back(item);
        batch.back().model_version = version;
        if (batch.size() >= kPublishBatch) flush();
      },
      /*with_image=*/true));
  flush();
  RETURN_IF_ERROR(copied);
  // Last: replicas serve only registered (complete) generations.
  RETURN_IF_ERROR(target->RegisterGeneration());
  return result;
}

}  // namespace embedsearch
