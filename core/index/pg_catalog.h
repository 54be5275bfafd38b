// The gallery's catalog in PostgreSQL, shared by every server replica, and
// the change feed the replicas follow (catalog_store.h has the contract).
//
// Schema (table embedsearch_schema holds its version, kPgSchemaVersion;
// Open creates it in an empty database and refuses a newer one):
//   embedsearch_meta(key PRIMARY KEY, value)  -- "dim", "model_version"
//   embedsearch_labels(label PRIMARY KEY, name UNIQUE)
//   embedsearch_images(id PRIMARY KEY, label, source, image_png bytea,
//                      embedding bytea (dim little-endian floats),
//                      model_version)
//   embedsearch_changes(seq PRIMARY KEY, op 'a'|'r', image_id,
//                       committed_at)
//   sequences embedsearch_image_ids, embedsearch_label_numbers,
//             embedsearch_change_seq
// Generations: one database holds one generation per model version, each
// its own PostgreSQL schema (PgGenerationSchema) with the tables above, and
// public.embedsearch_generations lists the published ones. Replicas serve
// the generation of their bundle's model version; Reload onto a bundle of
// another published model version switches generation (the old one keeps
// answering until the swap). Writes go to the generation a replica serves
// and are not copied into other generations. A generation nobody serves is
// dropped with DropPgGeneration. Open with an empty generation uses the
// "public" schema (tests, single-generation tools).
// Ids come from a sequence and are never reused; a new label name gets its
// number from a sequence (the name is UNIQUE). Every Add/Remove runs in one
// transaction that first takes one advisory lock (writers are serialized,
// so change sequence order is commit order with no gaps), writes its rows
// and its change rows, and sends NOTIFY embedsearch_changes. OK means
// PostgreSQL committed it.
//
// Connection: a libpq connection string or URI ("postgresql://user@host/db",
// "host=... dbname=..."). Put the password in PGPASSWORD or ~/.pgpass
// rather than in the string; description() never shows it either way.
// A lost connection is re-opened on the next call; while PostgreSQL cannot
// be reached, calls fail with Unavailable (Add/Remove: nothing written) —
// except GetMany without images, which is answered from an in-memory copy
// of every item's label and source once the feed's Snapshot has loaded it
// (so searches keep working from memory).
//
// Thread safety: all methods may be called concurrently (one query
// connection under a mutex; WaitForChanges uses its own connection).
#ifndef EMBEDSEARCH_CORE_INDEX_PG_CATALOG_H_
#define EMBEDSEARCH_CORE_INDEX_PG_CATALOG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/index/catalog_store.h"

namespace embedsearch {

inline constexpr int kPgSchemaVersion = 1;

// True for "postgresql://..." / "postgres://..." and key=value strings with
// a host, dbname or service key: what --catalog treats as PostgreSQL.
bool IsPostgresDsn(const std::string& dsn);

// The connection string without its password, for logs: "postgresql
// host=h port=p dbname=d user=u". InvalidArgument when libpq cannot parse
// it (the message never repeats the string).
absl::StatusOr<std::string> DescribePostgresDsn(const std::string& dsn);

// "embedsearch_g_" + the model version in lower case, other characters as
// "_", cut at 63 characters.
std::string PgGenerationSchema(const std::string& model_version);

struct PgGeneration {
  std::string model_version;
  std::string schema;
  std::string published_at;  // RFC 3339, UTC
  // Sessions whose application_name is "embedsearch <model_version>": each
  // serving replica holds two.
  int64_t connections = 0;
};

// Published generations, oldest first.
absl::StatusOr<std::vector<PgGeneration>> ListPgGenerations(
    const std::string& dsn);
// Adds and removes committed to `generation` after publish registered it:
// the writes made through servers (AddImages/RemoveImages), which a later
// generation, published from a bundle, does not have. Scans the
// generation's change log. Unavailable when PostgreSQL cannot be reached.
absl::StatusOr<int64_t> CountPgChangesSincePublished(
    const std::string& dsn, const PgGeneration& generation);
// The SQL text that selects `columns` (e.g. "seq, op, image_id") of those
// changes, with the model version as a literal so that it runs as printed
// (embedsearch-catalog publish shows it in its warning).
std::string PgChangesSincePublishedQuery(const PgGeneration& generation,
                                         absl::string_view columns);
// Drops a generation's schema and registration. FailedPrecondition while
// servers are connected to it (unless `force`), NotFound for an unknown one.
absl::Status DropPgGeneration(const std::string& dsn,
                              const std::string& model_version,
                              bool force = false);

class PgCatalog : public CatalogStore, public ChangeFeed {
 public:
  // Connects, creates or migrates the schema (FailedPrecondition, naming
  // both versions, when the database's schema is newer than this build),
  // stores `dim` in a fresh catalog and checks it otherwise
  // (InvalidArgument). `dim` 0: take the stored one (NotFound when the
  // catalog has none yet). Unavailable when PostgreSQL cannot be reached.
  // `generation` (a model version) selects its schema; "" the default one.
  static absl::StatusOr<std::unique_ptr<PgCatalog>> Open(
      const std::string& dsn, int dim, const std::string& generation = "");
  ~PgCatalog() override;
  PgCatalog(const PgCatalog&) = delete;
  PgCatalog& operator=(const PgCatalog&) = delete;

  // The model version whose embeddings the catalog holds ("" when none was
  // set yet). Items added with another model_version are refused
  // (FailedPrecondition, naming both).
  std::string model_version() const;
  // Sets the model version of a catalog that holds no items yet or already
  // has this version (FailedPrecondition otherwise, naming both).
  absl::Status SetModelVersion(const std::string& version);

  // Lists this catalog's generation as published (publish's last step).
  absl::Status RegisterGeneration();

  // CatalogStore.
  absl::StatusOr<std::vector<int64_t>> Add(
      std::vector<CatalogItem> items) override;
  absl::Status DefineLabels(const std::vector<std::string>& names) override;
  absl::StatusOr<int64_t> Remove(const std::vector<int64_t>& ids) override;
  absl::StatusOr<CatalogItem> Get(int64_t id,
                                  bool with_image = true) const override;
  absl::StatusOr<std::vector<CatalogItem>> GetMany(
      const std::vector<int64_t>& ids, bool with_image) const override;
  absl::StatusOr<int64_t> Count() const override;
  absl::StatusOr<std::vector<int64_t>> Ids() const override;
  absl::StatusOr<std::vector<std::string>> LabelNames() const override;
  absl::Status ForEach(const std::function<void(const CatalogItem&)>& fn,
                       bool with_image = false) const override;
  // Schema version and tables, dim, and that every image's label exists
  // and its embedding has dim floats.
  absl::Status CheckIntegrity() const override;
  int dim() const override;
  std::string description() const override;
  ChangeFeed* change_feed() override { return this; }

  // ChangeFeed. Snapshot also fills the in-memory label/source copy that
  // GetMany uses; ChangesAfter keeps it current.
  absl::StatusOr<int64_t> Snapshot(
      const std::function<void(const CatalogItem&)>& fn) override;
  absl::StatusOr<std::vector<CatalogChange>> ChangesAfter(int64_t after,
                                                          int limit) override;
  absl::StatusOr<int64_t> LatestSequence() override;
  void WaitForChanges(absl::Duration timeout) override;

 private:
  PgCatalog();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_INDEX_PG_CATALOG_H_
