// embedsearch-catalog: administers a shared PostgreSQL catalog.
//
//   embedsearch-catalog publish --bundle DIR [--catalog DSN]
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

ABSL_FLAG(std::string, bundle, "", "Bundle directory to publish.");
ABSL_FLAG(std::string, catalog, "",
          "PostgreSQL connection string; falls back to $EMBEDSEARCH_CATALOG.");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "embedsearch-catalog: %s\n", status.ToString().c_str());
  return 1;
}

int Publish(const std::string& dsn) {
  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  if (bundle.empty()) {
    std::fprintf(stderr, "embedsearch-catalog publish needs --bundle DIR\n");
    return 2;
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
