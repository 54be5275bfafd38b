// embedsearch-catalog: administers a shared PostgreSQL catalog.
//
//   embedsearch-catalog publish --bundle DIR [--catalog DSN]
//                               [--skip_if_published]
//       copies the bundle's gallery into an empty PostgreSQL catalog
//   embedsearch-catalog status [--catalog DSN]
//       prints its schema, model version, size and newest change sequence
//
// The DSN falls back to $EMBEDSEARCH_CATALOG; give the password through
// PGPASSWORD or ~/.pgpass (never printed).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "core/index/pg_catalog.h"
#include "core/index/pg_publish.h"
#include "core/util/file.h"
#include "embedsearch/v1/bundle.pb.h"

ABSL_FLAG(std::string, bundle, "", "Bundle directory to publish.");
ABSL_FLAG(bool, skip_if_published, false,
          "publish: exit 0 without copying when the catalog already holds a "
          "gallery of the bundle's model version (for deploy jobs that run "
          "at every start).");
ABSL_FLAG(std::string, catalog, "",
          "PostgreSQL connection string; falls back to $EMBEDSEARCH_CATALOG.");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "embedsearch-catalog: %s\n", status.ToString().c_str());
  return 1;
}

// The model version of the gallery in the catalog ("" when none).
absl::StatusOr<std::string> PublishedVersion(const std::string& dsn) {
  auto catalog = embedsearch::PgCatalog::Open(dsn, 0);
  if (absl::IsNotFound(catalog.status())) return std::string();
  if (!catalog.ok()) return catalog.status();
  auto count = (*catalog)->Count();
  if (!count.ok()) return count.status();
  return *count > 0 ? (*catalog)->model_version() : std::string();
}

absl::StatusOr<std::string> BundleVersion(const std::string& dir) {
  auto bytes = embedsearch::ReadFile(dir + "/manifest.pb");
  if (!bytes.ok()) return bytes.status();
  embedsearch::v1::BundleManifest manifest;
  if (!manifest.ParseFromString(*bytes)) {
    return absl::DataLossError(dir + "/manifest.pb: not a BundleManifest");
  }
  return manifest.model_version();
}

int Publish(const std::string& dsn) {
  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  if (bundle.empty()) {
    std::fprintf(stderr, "embedsearch-catalog publish needs --bundle DIR\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_skip_if_published)) {
    absl::StatusOr<std::string> version = PublishedVersion(dsn);
    if (!version.ok()) return Fail(version.status());
    absl::StatusOr<std::string> wanted = BundleVersion(bundle);
    if (!wanted.ok()) return Fail(wanted.status());
    if (!version->empty() && *version == *wanted) {
      std::printf("already published: model version %s\n", version->c_str());
      return 0;
    }
  }
  absl::StatusOr<embedsearch::PublishResult> published =
      embedsearch::PublishBundle(bundle, dsn);
  if (!published.ok()) return Fail(published.status());
  std::printf("published %lld images of model version %s to %s\n",
              static_cast<long long>(published->items),
              published->model_version.c_str(), published->catalog.c_str());
  return 0;
}

int Status(const std::string& dsn) {
  auto catalog = embedsearch::PgCatalog::Open(dsn, 0);
  if (!catalog.ok()) return Fail(catalog.status());
  auto count = (*catalog)->Count();
  if (!count.ok()) return Fail(count.status());
  auto sequence = (*catalog)->LatestSequence();
  if (!sequence.ok()) return Fail(sequence.status());
  std::printf("catalog          %s\n", (*catalog)->description().c_str());
  std::printf("schema version   %d\n", embedsearch::kPgSchemaVersion);
  std::printf("model version    %s\n", (*catalog)->model_version().c_str());
  std::printf("dim              %d\n", (*catalog)->dim());
  std::printf("images           %lld\n", static_cast<long long>(*count));
  std::printf("change sequence  %lld\n", static_cast<long long>(*sequence));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Administers a shared PostgreSQL catalog.\n"
      "  embedsearch-catalog publish --bundle=DIR [--catalog=DSN]\n"
      "  embedsearch-catalog status [--catalog=DSN]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  std::string dsn = absl::GetFlag(FLAGS_catalog);
  if (dsn.empty()) {
    if (const char* env = std::getenv("EMBEDSEARCH_CATALOG")) dsn = env;
  }
  if (args.size() != 2 || dsn.empty()) {
    std::fprintf(stderr, "%s\n", absl::ProgramUsageMessage().data());
    return 2;
  }
  const std::string command = args[1];
  if (command == "publish") return Publish(dsn);
  if (command == "status") return Status(dsn);
  std::fprintf(stderr, "unknown command \"%s\"\n%s\n", command.c_str(),
               absl::ProgramUsageMessage().data());
  return 2;
}
