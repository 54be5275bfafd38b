// embedsearch-catalog: administers a shared PostgreSQL catalog.
//
//   embedsearch-catalog publish --bundle DIR [--catalog DSN]
//                               [--skip_if_published]
//       copies the bundle's gallery into an empty PostgreSQL catalog; warns
//       (stderr) for every other generation that servers use or wrote to:
//       those writes are not carried into the new one
//   embedsearch-catalog generations [--catalog DSN]
//       lists the published generations (model versions) with their size,
//       newest change sequence, changes made through servers since publish
//       and how many server connections use them
//   embedsearch-catalog drop --model_version V [--force] [--catalog DSN]
//       drops a generation no server uses any more
//
// The DSN falls back to $EMBEDSEARCH_CATALOG; give the password through
// PGPASSWORD or ~/.pgpass (never printed).
#include <cstdint>
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
ABSL_FLAG(std::string, model_version, "", "drop: the generation to drop.");
ABSL_FLAG(bool, force, false,
          "drop: even while servers are connected to it (they fail).");
ABSL_FLAG(std::string, catalog, "",
          "PostgreSQL connection string; falls back to $EMBEDSEARCH_CATALOG.");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "embedsearch-catalog: %s\n", status.ToString().c_str());
  return 1;
}

// Whether a generation of `version` is published.
absl::StatusOr<bool> IsPublished(const std::string& dsn,
                                 const std::string& version) {
  auto generations = embedsearch::ListPgGenerations(dsn);
  if (!generations.ok()) return generations.status();
  for (const auto& g : *generations) {
    if (g.model_version == version) return true;
  }
  return false;
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

// Another generation, at its newest change before the publish.
struct OtherGeneration {
  embedsearch::PgGeneration generation;
  int64_t written = 0;  // Changes through servers since it was published.
  int64_t sequence = 0;
};

// The generations other than `version` that servers use or wrote to:
// publish copies the bundle, so their writes are not in `version`.
absl::StatusOr<std::vector<OtherGeneration>> WrittenOrServed(
    const std::string& dsn, const std::string& version) {
  auto generations = embedsearch::ListPgGenerations(dsn);
  if (!generations.ok()) return generations.status();
  std::vector<OtherGeneration> others;
  for (const auto& g : *generations) {
    if (g.model_version == version) continue;
    auto written = embedsearch::CountPgChangesSincePublished(dsn, g);
    if (!written.ok()) return written.status();
    if (g.connections == 0 && *written == 0) continue;
    auto catalog = embedsearch::PgCatalog::Open(dsn, 0, g.model_version);
    if (!catalog.ok()) return catalog.status();
    auto sequence = (*catalog)->LatestSequence();
    if (!sequence.ok()) return sequence.status();
    others.push_back({g, *written, *sequence});
  }
  return others;
}

// Names what is not carried into `version`, what to do and where to find
// it (docs/deploy.md, "Model versions: generations").
void WarnNotCarriedOver(const std::vector<OtherGeneration>& others,
                        const std::string& version) {
  std::fflush(stdout);  // After the "published" line, also when piped.
  for (const OtherGeneration& o : others) {
    const embedsearch::PgGeneration& g = o.generation;
    const char* old_version = g.model_version.c_str();
    std::fprintf(
        stderr,
        "embedsearch-catalog: warning: generation %s (%lld server "
        "connections now) holds %lld adds/removes made through servers since "
        "it was published. They, and writes to %s after change %lld (through "
        "replicas not yet reloaded with %s), are NOT carried into %s. Pause "
        "writes until every replica serves %s, then re-add what should stay; "
        "the changes are: %s\n",
        old_version, static_cast<long long>(g.connections),
        static_cast<long long>(o.written), old_version,
        static_cast<long long>(o.sequence), version.c_str(), version.c_str(),
        version.c_str(),
        embedsearch::PgChangesSincePublishedQuery(g, "seq, op, image_id").c_str());
  }
}

int Publish(const std::string& dsn) {
  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  if (bundle.empty()) {
    std::fprintf(stderr, "embedsearch-catalog publish needs --bundle DIR\n");
    return 2;
  }
  absl::StatusOr<std::string> version = BundleVersion(bundle);
  if (!version.ok()) return Fail(version.status());
  if (absl::GetFlag(FLAGS_skip_if_published)) {
    absl::StatusOr<bool> published = IsPublished(dsn, *version);
    if (!published.ok()) return Fail(published.status());
    if (*published) {
      std::printf("already published: model version %s\n", version->c_str());
      return 0;
    }
  }
  // Read before the copy: writes during it are not carried over either.
  absl::StatusOr<std::vector<OtherGeneration>> others =
      WrittenOrServed(dsn, *version);
  if (!others.ok()) return Fail(others.status());
  absl::StatusOr<embedsearch::PublishResult> published =
      embedsearch::PublishBundle(bundle, dsn);
  if (!published.ok()) return Fail(published.status());
  std::printf("published %lld images of model version %s to %s\n",
              static_cast<long long>(published->items),
              published->model_version.c_str(), published->catalog.c_str());
  WarnNotCarriedOver(*others, *version);
  return 0;
}

int Generations(const std::string& dsn) {
  auto generations = embedsearch::ListPgGenerations(dsn);
  if (!generations.ok()) return Fail(generations.status());
  std::printf("%-24s %-22s %12s %12s %14s  %s\n", "model version",
              "published", "images", "sequence", "online changes",
              "connections");
  for (const auto& g : *generations) {
    auto catalog = embedsearch::PgCatalog::Open(dsn, 0, g.model_version);
    if (!catalog.ok()) return Fail(catalog.status());
    auto count = (*catalog)->Count();
    if (!count.ok()) return Fail(count.status());
    auto sequence = (*catalog)->LatestSequence();
    if (!sequence.ok()) return Fail(sequence.status());
    auto written = embedsearch::CountPgChangesSincePublished(dsn, g);
    if (!written.ok()) return Fail(written.status());
    std::printf("%-24s %-22s %12lld %12lld %14lld  %lld\n",
                g.model_version.c_str(), g.published_at.c_str(),
                static_cast<long long>(*count),
                static_cast<long long>(*sequence),
                static_cast<long long>(*written),
                static_cast<long long>(g.connections));
  }
  return 0;
}

int Drop(const std::string& dsn) {
  const std::string version = absl::GetFlag(FLAGS_model_version);
  if (version.empty()) {
    std::fprintf(stderr, "embedsearch-catalog drop needs --model_version\n");
    return 2;
  }
  absl::Status dropped =
      embedsearch::DropPgGeneration(dsn, version, absl::GetFlag(FLAGS_force));
  if (!dropped.ok()) return Fail(dropped);
  std::printf("dropped generation %s\n", version.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Administers a shared PostgreSQL catalog.\n"
      "  embedsearch-catalog publish --bundle=DIR [--catalog=DSN]\n"
      "  embedsearch-catalog generations [--catalog=DSN]\n"
      "  embedsearch-catalog drop --model_version=V [--force] [--catalog=DSN]");
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
  if (command == "generations") return Generations(dsn);
  if (command == "drop") return Drop(dsn);
  std::fprintf(stderr, "unknown command \"%s\"\n%s\n", command.c_str(),
               absl::ProgramUsageMessage().data());
  return 2;
}
