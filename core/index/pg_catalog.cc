#include "core/index/pg_catalog.h"

#include <endian.h>
#include <libpq-fe.h>
#include <sys/select.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

// pg_advisory_xact_lock keys: one for schema creation/migration, one that
// serializes writers (so change sequences are handed out in commit order).
constexpr int64_t kMigrateLock = 7413620001;
constexpr int64_t kWriteLock = 7413620002;
constexpr char kDefaultSchema[] = "public";

// Schema version 1, created in one transaction.
constexpr const char* kSchemaV1[] = {
    "CREATE TABLE embedsearch_meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE SEQUENCE embedsearch_label_numbers MINVALUE 0 START 0",
    "CREATE TABLE embedsearch_labels (label integer PRIMARY KEY, "
    "name text NOT NULL UNIQUE)",
    "CREATE SEQUENCE embedsearch_image_ids",
    "CREATE TABLE embedsearch_images (id bigint PRIMARY KEY, "
    "label integer NOT NULL REFERENCES embedsearch_labels, "
    "source text NOT NULL, image_png bytea NOT NULL, "
    "embedding bytea NOT NULL, model_version text NOT NULL)",
    "CREATE SEQUENCE embedsearch_change_seq",
    "CREATE TABLE embedsearch_changes (seq bigint PRIMARY KEY, "
    "op \"char\" NOT NULL CHECK (op IN ('a', 'r')), image_id bigint NOT NULL, "
    "committed_at timestamptz NOT NULL DEFAULT clock_timestamp())",
};

constexpr char kItemColumns[] =
    "i.id, i.label, coalesce(l.name, ''), i.source, "
    "CASE WHEN $1::boolean THEN i.image_png ELSE ''::bytea END, i.embedding, "
    "i.model_version FROM embedsearch_images i "
    "LEFT JOIN embedsearch_labels l ON l.label = i.label";

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// Binary-format result readers (network byte order).
int64_t Int64At(const PGresult* r, int row, int col) {
  uint64_t v;
  std::memcpy(&v, PQgetvalue(r, row, col), 8);
  return static_cast<int64_t>(be64toh(v));
}
int32_t Int32At(const PGresult* r, int row, int col) {
  uint32_t v;
  std::memcpy(&v, PQgetvalue(r, row, col), 4);
  return static_cast<int32_t>(be32toh(v));
}
double Float64At(const PGresult* r, int row, int col) {
  uint64_t v;
  std::memcpy(&v, PQgetvalue(r, row, col), 8);
  v = be64toh(v);
  double d;
  std::memcpy(&d, &v, 8);
  return d;
}
std::string BytesAt(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col),
                     static_cast<size_t>(PQgetlength(r, row, col)));
}

std::string IdArray(const std::vector<int64_t>& ids) {
  return absl::StrCat("{", absl::StrJoin(ids, ","), "}");
}

std::string EncodeEmbedding(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()),
                     v.size() * sizeof(float));
}

std::vector<float> DecodeEmbedding(const std::string& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// A query parameter: text unless `binary` (bytea).
struct Param {
  std::string value;
  bool binary = false;
};

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};

// One libpq connection, (re)opened on demand. Not thread-safe.
class Connection {
 public:
  // `schema`: the search_path of every session; `application_name`: what
  // pg_stat_activity shows unless the DSN names one.
  Connection(std::string dsn, std::string description, std::string schema,
             std::string application_name)
      : dsn_(std::move(dsn)),
        description_(std::move(description)),
        schema_(std::move(schema)),
        application_name_(std::move(application_name)) {}

  absl::Status Ensure() {
    if (conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK) {
      return absl::OkStatus();
    }
    // connect_timeout first so that one in the DSN wins.
    const char* keys[] = {"connect_timeout", "fallback_application_name",
                          "dbname", nullptr};
    const char* values[] = {"5", application_name_.c_str(), dsn_.c_str(),
                            nullptr};
    conn_.reset(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
    if (conn_ == nullptr || PQstatus(conn_.get()) != CONNECTION_OK) {
      std::string why = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
      conn_.reset();
      return Unreachable(why);
    }
    // NOTICEs ("relation ... already exists, skipping") are not ours to print.
    PQsetNoticeProcessor(
        conn_.get(), [](void*, const char*) {}, nullptr);
    Result set(
        PQexec(conn_.get(),
               absl::StrCat("SET search_path TO \"", schema_, "\"").c_str()));
    if (PQresultStatus(set.get()) != PGRES_COMMAND_OK) {
      std::string why = PQerrorMessage(conn_.get());
      conn_.reset();
      return Unreachable(why);
    }
    return absl::OkStatus();
  }

  absl::Status Unreachable(absl::string_view why) const {
    std::string trimmed(why);
    while (!trimmed.empty() &&
           (trimmed.back() == '\n' || trimmed.back() == ' ')) {
      trimmed.pop_back();
    }
    return absl::UnavailableError(absl::StrCat("the PostgreSQL catalog (",
                                               description_,
                                               ") is unreachable: ", trimmed));
  }

  // Runs `sql` with binary results. Maps failures to status codes.
  absl::StatusOr<Result> Exec(const std::string& sql,
                              const std::vector<Param>& params = {}) {
    RETURN_IF_ERROR(Ensure());
    // A connection that looked fine may have been closed by a server
    // restart; libpq notices only now. A statement that failed that way
    // outside a transaction did nothing, so it is sent once more on a new
    // connection (inside a transaction the caller's transaction is lost).
    const bool idle = PQtransactionStatus(conn_.get()) == PQTRANS_IDLE;
    absl::StatusOr<Result> r = ExecOnce(sql, params);
    if (idle && conn_ == nullptr && absl::IsUnavailable(r.status())) {
      RETURN_IF_ERROR(Ensure());
      r = ExecOnce(sql, params);
    }
    return r;
  }

  absl::StatusOr<Result> ExecOnce(const std::string& sql,
                                  const std::vector<Param>& params) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const Param& p : params) {
      values.push_back(p.value.data());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    Result r(PQexecParams(conn_.get(), sql.c_str(),
                          static_cast<int>(params.size()), nullptr,
                          values.data(), lengths.data(), formats.data(),
                          /*resultFormat=*/1));
    const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    return Failure(r.get());
  }

  absl::Status Run(const std::string& sql,
                   const std::vector<Param>& params = {}) {
    return Exec(sql, params).status();
  }

  // Best effort after a failed transaction (the connection may be gone).
  void Rollback() {
    if (conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK) {
      Result r(PQexec(conn_.get(), "ROLLBACK"));
    }
  }

  PGconn* raw() { return conn_.get(); }
  void Drop() { conn_.reset(); }

 private:
  absl::Status Failure(const PGresult* r) {
    std::string message = r ? PQresultErrorMessage(r) : "";
    if (message.empty()) message = PQerrorMessage(conn_.get());
    while (!message.empty() && message.back() == '\n') message.pop_back();
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const std::string sqlstate = state ? state : "";
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      conn_.reset();
      return Unreachable(message);
    }
    // Class 08: connection exception; 57P0x: server shutting down /
    // starting up; 53: insufficient resources.
    if (absl::StartsWith(sqlstate, "08") || absl::StartsWith(sqlstate, "57P") ||
        absl::StartsWith(sqlstate, "53")) {
      return Unreachable(message);
    }
    if (sqlstate == "23505") return absl::AlreadyExistsError(message);
    return absl::InternalError(
        absl::StrCat("PostgreSQL catalog (", description_, "): ", message));
  }

  std::string dsn_;
  std::string description_;
  std::string schema_;
  std::string application_name_;
  std::unique_ptr<PGconn, ConnDeleter> conn_;
};

// One transaction on `conn`: BEGIN, body, COMMIT; ROLLBACK on error.
template <typename Body>
absl::Status InTransaction(Connection& conn, const std::string& begin,
                           Body body) {
  RETURN_IF_ERROR(conn.Run(begin));
  absl::Status s = body();
  if (s.ok()) s = conn.Run("COMMIT");
  if (!s.ok()) conn.Rollback();
  return s;
}

absl::Status CheckEmbedding(const CatalogItem& item, size_t index, int dim) {
  if (item.embedding.size() != static_cast<size_t>(dim)) {
    return absl::InvalidArgumentError(
        absl::StrCat("item ", index, " has a ", item.embedding.size(),
                     "-d embedding; the catalog holds ", dim, "-d embeddings"));
  }
  for (float v : item.embedding) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("item ", index, " has a non-finite embedding value"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string PgGenerationSchema(const std::string& model_version) {
  std::string schema = "embedsearch_g_";
  for (char c : model_version) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    const bool upper = c >= 'A' && c <= 'Z';
    schema.push_back(keep ? c : upper ? static_cast<char>(c - 'A' + 'a') : '_');
  }
  return schema.substr(0, 63);  // PostgreSQL's identifier limit
}

namespace {

constexpr char kRegistryDdl[] =
    "CREATE TABLE IF NOT EXISTS public.embedsearch_generations "
    "(model_version text PRIMARY KEY, schema_name text NOT NULL UNIQUE, "
    "published_at timestamptz NOT NULL DEFAULT now())";

// An administrative connection in the default schema.
absl::StatusOr<std::unique_ptr<Connection>> AdminConnection(
    const std::string& dsn) {
  ASSIGN_OR_RETURN(std::string description, DescribePostgresDsn(dsn));
  auto conn = std::make_unique<Connection>(dsn, description, kDefaultSchema,
                                           "embedsearch-admin");
  RETURN_IF_ERROR(conn->Run(kRegistryDdl));
  return conn;
}

}  // namespace

absl::StatusOr<std::vector<PgGeneration>> ListPgGenerations(
    const std::string& dsn) {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, AdminConnection(dsn));
  ASSIGN_OR_RETURN(
      Result r,
      conn->Exec(
          "SELECT g.model_version, g.schema_name, "
          "to_char(g.published_at AT TIME ZONE 'UTC', "
          "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
          "(SELECT count(*) FROM pg_stat_activity a WHERE a.application_name = "
          "'embedsearch ' || g.model_version)::int8 "
          "FROM public.embedsearch_generations g ORDER BY g.published_at"));
  std::vector<PgGeneration> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    PgGeneration g;
    g.model_version = BytesAt(r.get(), i, 0);
    g.schema = BytesAt(r.get(), i, 1);
    g.published_at = BytesAt(r.get(), i, 2);
    g.connections = Int64At(r.get(), i, 3);
    out.push_back(std::move(g));
  }
  return out;
}

std::string PgChangesSincePublishedQuery(const PgGeneration& generation,
                                         absl::string_view columns) {
  // The copy committed its changes before the registration's now().
  return absl::StrCat("SELECT ", columns, " FROM \"", generation.schema,
                      "\".embedsearch_changes WHERE committed_at > "
                      "(SELECT published_at FROM public.embedsearch_generations"
                      " WHERE model_version = '",
                      absl::StrReplaceAll(generation.model_version, {{"'", "''"}}), "')");
}

absl::StatusOr<int64_t> CountPgChangesSincePublished(
    const std::string& dsn, const PgGeneration& generation) {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, AdminConnection(dsn));
  ASSIGN_OR_RETURN(Result r,
                   conn->Exec(PgChangesSincePublishedQuery(generation, "count(*)::int8")));
  return Int64At(r.get(), 0, 0);
}

absl::Status DropPgGeneration(const std::string& dsn,
                              const std::string& model_version, bool force) {
  ASSIGN_OR_RETURN(std::vector<PgGeneration> generations,
                   ListPgGenerations(dsn));
  for (const PgGeneration& g : generations) {
    if (g.model_version != model_version) continue;
    if (g.connections > 0 && !force) {
      return absl::FailedPreconditionError(absl::StrCat(
          "generation ", model_version, " still has ", g.connections,
          " connections from servers serving it (two per replica): Reload "
          "them onto another generation first"));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, AdminConnection(dsn));
    return InTransaction(*conn, "BEGIN", [&]() -> absl::Status {
      RETURN_IF_ERROR(conn->Run(
          "DELETE FROM public.embedsearch_generations WHERE model_version = $1",
          {{model_version}}));
      return conn->Run(absl::StrCat("DROP SCHEMA \"", g.schema, "\" CASCADE"));
    });
  }
  return absl::NotFoundError(
      absl::StrCat("no published generation of model version ", model_version));
}

bool IsPostgresDsn(const std::string& dsn) {
  if (absl::StartsWith(dsn, "postgresql://") ||
      absl::StartsWith(dsn, "postgres://")) {
    return true;
  }
  return absl::StrContains(dsn, "host=") || absl::StrContains(dsn, "dbname=") ||
         absl::StrContains(dsn, "service=");
}

absl::StatusOr<std::string> DescribePostgresDsn(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    if (error != nullptr) PQfreemem(error);
    return absl::InvalidArgumentError(
        "the PostgreSQL connection string could not be parsed (not repeated "
        "here: it may hold a password)");
  }
  std::vector<std::string> parts;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    const std::string key = o->keyword;
    if (o->val == nullptr || *o->val == '\0') continue;
    if (key == "host" || key == "hostaddr" || key == "port" ||
        key == "dbname" || key == "user") {
      parts.push_back(absl::StrCat(key, "=", o->val));
    }
  }
  PQconninfoFree(options);
  return absl::StrCat("postgresql ", absl::StrJoin(parts, " "));
}

struct PgCatalog::Impl {
  struct Cached {
    int32_t label = 0;
    std::string source;
  };

  Impl(const std::string& dsn, const std::string& description_in,
       const std::string& generation_in)
      : description(description_in),
        generation(generation_in),
        schema(generation_in.empty() ? kDefaultSchema
                                     : PgGenerationSchema(generation_in)),
        channel(absl::StrCat(schema, "_changes")),
        conn(dsn, description_in, schema, ApplicationName(generation_in)),
        listen_conn(dsn, description_in, schema,
                    ApplicationName(generation_in)) {}

  static std::string ApplicationName(const std::string& generation) {
    return generation.empty() ? "embedsearch"
                              : absl::StrCat("embedsearch ", generation);
  }

  const std::string description;
  const std::string generation;  // "" for the default schema
  const std::string schema;
  const std::string channel;
  int dim = 0;

  mutable std::mutex mu;
  mutable Connection conn ABSL_GUARDED_BY(mu);
  std::string model_version ABSL_GUARDED_BY(mu);

  // Follower-only (WaitForChanges).
  Connection listen_conn;
  bool listening = false;

  // In-memory copy of every item's label and source (after Snapshot).
  mutable std::mutex cache_mu;
  bool cache_ready ABSL_GUARDED_BY(cache_mu) = false;
  absl::flat_hash_map<int64_t, Cached> cache ABSL_GUARDED_BY(cache_mu);
  std::vector<std::string> label_names ABSL_GUARDED_BY(cache_mu);

  void CacheLabel(int32_t label, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cache_mu) {
    if (label < 0 || name.empty()) return;
    if (label_names.size() <= static_cast<size_t>(label)) {
      label_names.resize(label + 1);
    }
    label_names[label] = name;
  }

  void CacheAdd(const CatalogItem& item) {
    std::unique_lock lock(cache_mu);
    if (!cache_ready) return;
    CacheLabel(item.label, item.label_name);
    cache[item.id] = Cached{item.label, item.source};
  }

  void CacheRemove(int64_t id) {
    std::unique_lock lock(cache_mu);
    if (cache_ready) cache.erase(id);
  }

  static CatalogItem ItemAt(const PGresult* r, int row) {
    CatalogItem item;
    item.id = Int64At(r, row, 0);
    item.label = Int32At(r, row, 1);
    item.label_name = BytesAt(r, row, 2);
    item.source = BytesAt(r, row, 3);
    item.image_png = BytesAt(r, row, 4);
    item.embedding = DecodeEmbedding(BytesAt(r, row, 5));
    item.model_version = BytesAt(r, row, 6);
    return item;
  }

  absl::Status Migrate(int wanted_dim) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return InTransaction(conn, "BEGIN", [&]() -> absl::Status {
      RETURN_IF_ERROR(conn.Run(
          absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrateLock, ")")));
      RETURN_IF_ERROR(conn.Run(
          absl::StrCat("CREATE SCHEMA IF NOT EXISTS \"", schema, "\"")));
      RETURN_IF_ERROR(conn.Run(kRegistryDdl));
      RETURN_IF_ERROR(
          conn.Run("CREATE TABLE IF NOT EXISTS embedsearch_schema "
                   "(version integer NOT NULL)"));
      ASSIGN_OR_RETURN(Result v, conn.Exec("SELECT coalesce(max(version), "
                                           "0)::int4 FROM embedsearch_schema"));
      const int version = Int32At(v.get(), 0, 0);
      if (version > kPgSchemaVersion) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the PostgreSQL catalog (", description, ") has schema version ",
            version, "; this build knows versions up to ", kPgSchemaVersion,
            ": upgrade embedsearch before serving it"));
      }
      if (version == 0) {
        for (const char* ddl : kSchemaV1) RETURN_IF_ERROR(conn.Run(ddl));
        RETURN_IF_ERROR(conn.Run(absl::StrCat(
            "INSERT INTO embedsearch_schema VALUES (", kPgSchemaVersion, ")")));
      }
      // Later versions migrate here, one step per version.
      return LoadMeta(wanted_dim);
    });
  }

  absl::Status LoadMeta(int wanted_dim) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ASSIGN_OR_RETURN(Result meta,
                     conn.Exec("SELECT key, value FROM embedsearch_meta"));
    std::string stored_dim;
    for (int i = 0; i < PQntuples(meta.get()); ++i) {
      const std::string key = BytesAt(meta.get(), i, 0);
      if (key == "dim") stored_dim = BytesAt(meta.get(), i, 1);
      if (key == "model_version") model_version = BytesAt(meta.get(), i, 1);
    }
    if (stored_dim.empty()) {
      if (wanted_dim <= 0) {
        return absl::NotFoundError(
            absl::StrCat("the PostgreSQL catalog (", description,
                         ") is empty: publish a bundle into it first"));
      }
      dim = wanted_dim;
      return conn.Run("INSERT INTO embedsearch_meta VALUES ('dim', $1)",
                      {{absl::StrCat(dim)}});
    }
    if (!absl::SimpleAtoi(stored_dim, &dim) || dim <= 0) {
      return absl::DataLossError(
          absl::StrCat("the PostgreSQL catalog (", description,
                       ") has an invalid dim \"", stored_dim, "\""));
    }
    if (wanted_dim > 0 && wanted_dim != dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("the PostgreSQL catalog (", description, ") holds ", dim,
                       "-d embeddings, not ", wanted_dim, "-d"));
    }
    return absl::OkStatus();
  }

  // Label numbers by name, inside the write transaction.
  absl::Status ResolveLabels(std::vector<CatalogItem>& items)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ASSIGN_OR_RETURN(Result r,
                     conn.Exec("SELECT label, name FROM embedsearch_labels"));
    absl::flat_hash_map<std::string, int32_t> by_name;
    absl::flat_hash_map<int32_t, std::string> by_number;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      by_name[BytesAt(r.get(), i, 1)] = Int32At(r.get(), i, 0);
      by_number[Int32At(r.get(), i, 0)] = BytesAt(r.get(), i, 1);
    }
    for (CatalogItem& item : items) {
      if (item.label_name.empty()) {
        auto it = by_number.find(item.label);
        if (it == by_number.end()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "label ", item.label, " has no name; give a label_name"));
        }
        item.label_name = it->second;
        continue;
      }
      auto it = by_name.find(item.label_name);
      if (it == by_name.end()) {
        ASSIGN_OR_RETURN(
            Result added,
            conn.Exec(
                "INSERT INTO embedsearch_labels VALUES "
                "(nextval('embedsearch_label_numbers'), $1) RETURNING label",
                {{item.label_name}}));
        it = by_name.emplace(item.label_name, Int32At(added.get(), 0, 0)).first;
      }
      item.label = it->second;
    }
    return absl::OkStatus();
  }

  absl::Status AssignIds(std::vector<CatalogItem>& items)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    int64_t missing = 0, largest_explicit = 0;
    for (const CatalogItem& item : items) {
      if (item.id == 0) ++missing;
      largest_explicit = std::max(largest_explicit, item.id);
    }
    if (largest_explicit > 0) {
      // Explicit ids (a published bundle's): the sequence continues above.
      RETURN_IF_ERROR(conn.Run(
          "SELECT setval('embedsearch_image_ids', $1::bigint) FROM "
          "embedsearch_image_ids WHERE $1::bigint > CASE WHEN is_called THEN "
          "last_value ELSE last_value - 1 END",
          {{absl::StrCat(largest_explicit)}}));
    }
    if (missing == 0) return absl::OkStatus();
    ASSIGN_OR_RETURN(Result r,
                     conn.Exec("SELECT nextval('embedsearch_image_ids') FROM "
                               "generate_series(1, $1::int)",
                               {{absl::StrCat(missing)}}));
    int row = 0;
    for (CatalogItem& item : items) {
      if (item.id == 0) item.id = Int64At(r.get(), row++, 0);
    }
    return absl::OkStatus();
  }

  absl::Status LogChanges(char op, const std::vector<int64_t>& ids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (ids.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(conn.Run(
        absl::StrCat("INSERT INTO embedsearch_changes (seq, op, image_id) "
                     "SELECT nextval('embedsearch_change_seq'), '",
                     std::string(1, op), "', x FROM unnest($1::bigint[]) AS x"),
        {{IdArray(ids)}}));
    return conn.Run(absl::StrCat("NOTIFY \"", channel, "\""));
  }

  absl::Status LockWriters() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return conn.Run(
        absl::StrCat("SELECT pg_advisory_xact_lock(", kWriteLock, ")"));
  }
};

PgCatalog::PgCatalog() = default;
PgCatalog::~PgCatalog() = default;

absl::StatusOr<std::unique_ptr<PgCatalog>> PgCatalog::Open(
    const std::string& dsn, int dim, const std::string& generation) {
  ASSIGN_OR_RETURN(std::string description, DescribePostgresDsn(dsn));
  std::unique_ptr<PgCatalog> catalog(new PgCatalog());
  catalog->impl_ = std::make_unique<Impl>(dsn, description, generation);
  Impl& m = *catalog->impl_;
  std::unique_lock lock(m.mu);
  RETURN_IF_ERROR(m.Migrate(dim));
  return catalog;
}

std::string PgCatalog::model_version() const {
  std::unique_lock lock(impl_->mu);
  return impl_->model_version;
}

absl::Status PgCatalog::SetModelVersion(const std::string& version) {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  return InTransaction(m.conn, "BEGIN", [&]() -> absl::Status {
    RETURN_IF_ERROR(m.LockWriters());
    ASSIGN_OR_RETURN(
        Result r,
        m.conn.Exec(
            "SELECT value FROM embedsearch_meta WHERE key = 'model_version'"));
    const std::string stored =
        PQntuples(r.get()) > 0 ? BytesAt(r.get(), 0, 0) : "";
    if (stored == version) return absl::OkStatus();
    ASSIGN_OR_RETURN(
        Result count,
        m.conn.Exec("SELECT count(*)::int8 FROM embedsearch_images"));
    if (!stored.empty() && Int64At(count.get(), 0, 0) > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the PostgreSQL catalog (", m.description,
          ") holds embeddings of model version ", stored, ", not ", version));
    }
    RETURN_IF_ERROR(
        m.conn.Run("INSERT INTO embedsearch_meta VALUES ('model_version', $1) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                   {{version}}));
    m.model_version = version;
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<int64_t>> PgCatalog::Add(
    std::vector<CatalogItem> items) {
  Impl& m = *impl_;
  for (size_t i = 0; i < items.size(); ++i) {
    RETURN_IF_ERROR(CheckEmbedding(items[i], i, m.dim));
  }
  std::unique_lock lock(m.mu);
  for (const CatalogItem& item : items) {
    if (!m.model_version.empty() && !item.model_version.empty() &&
        item.model_version != m.model_version) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the PostgreSQL catalog (", m.description,
          ") holds embeddings of model version ", m.model_version,
          "; refusing one made by model version ", item.model_version));
    }
  }
  std::vector<int64_t> ids;
  absl::Status s = InTransaction(m.conn, "BEGIN", [&]() -> absl::Status {
    RETURN_IF_ERROR(m.LockWriters());
    RETURN_IF_ERROR(m.ResolveLabels(items));
    RETURN_IF_ERROR(m.AssignIds(items));
    for (const CatalogItem& item : items) {
      const std::string& version =
          item.model_version.empty() ? m.model_version : item.model_version;
      RETURN_IF_ERROR(
          m.conn.Run("INSERT INTO embedsearch_images VALUES "
                     "($1::bigint, $2::int, $3, $4, $5, $6)",
                     {{absl::StrCat(item.id)},
                      {absl::StrCat(item.label)},
                      {item.source},
                      {item.image_png, true},
                      {EncodeEmbedding(item.embedding), true},
                      {version}}));
      ids.push_back(item.id);
    }
    return m.LogChanges('a', ids);
  });
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(
        "an explicit id of this batch exists already; nothing was added");
  }
  RETURN_IF_ERROR(s);
  for (const CatalogItem& item : items) m.CacheAdd(item);
  return ids;
}

absl::Status PgCatalog::DefineLabels(const std::vector<std::string>& names) {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  absl::Status s = InTransaction(m.conn, "BEGIN", [&]() -> absl::Status {
    RETURN_IF_ERROR(m.LockWriters());
    for (size_t i = 0; i < names.size(); ++i) {
      ASSIGN_OR_RETURN(
          Result r,
          m.conn.Exec(
              "SELECT name FROM embedsearch_labels WHERE label = $1::int",
              {{absl::StrCat(i)}}));
      if (PQntuples(r.get()) > 0) {
        if (BytesAt(r.get(), 0, 0) != names[i]) {
          return absl::InvalidArgumentError(
              absl::StrCat("label ", i, " is named \"", BytesAt(r.get(), 0, 0),
                           "\" already, not \"", names[i], "\""));
        }
        continue;
      }
      RETURN_IF_ERROR(
          m.conn.Run("INSERT INTO embedsearch_labels VALUES ($1::int, $2)",
                     {{absl::StrCat(i)}, {names[i]}}));
    }
    if (names.empty()) return absl::OkStatus();
    return m.conn.Run(
        "SELECT setval('embedsearch_label_numbers', max(label)) FROM "
        "embedsearch_labels");
  });
  if (absl::IsAlreadyExists(s)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a label name is used by another label number: ", s.message()));
  }
  return s;
}

absl::StatusOr<int64_t> PgCatalog::Remove(const std::vector<int64_t>& ids) {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  std::vector<int64_t> removed;
  RETURN_IF_ERROR(InTransaction(m.conn, "BEGIN", [&]() -> absl::Status {
    RETURN_IF_ERROR(m.LockWriters());
    ASSIGN_OR_RETURN(
        Result r,
        m.conn.Exec(
            "DELETE FROM embedsearch_images WHERE id = ANY($1::bigint[]) "
            "RETURNING id",
            {{IdArray(ids)}}));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      removed.push_back(Int64At(r.get(), i, 0));
    }
    return m.LogChanges('r', removed);
  }));
  for (int64_t id : removed) m.CacheRemove(id);
  return static_cast<int64_t>(removed.size());
}

absl::StatusOr<CatalogItem> PgCatalog::Get(int64_t id, bool with_image) const {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  ASSIGN_OR_RETURN(
      Result r,
      m.conn.Exec(
          absl::StrCat("SELECT ", kItemColumns, " WHERE i.id = $2::bigint"),
          {{with_image ? "true" : "false"}, {absl::StrCat(id)}}));
  if (PQntuples(r.get()) == 0) {
    return absl::NotFoundError(absl::StrCat("no item with id ", id));
  }
  return Impl::ItemAt(r.get(), 0);
}

absl::StatusOr<std::vector<CatalogItem>> PgCatalog::GetMany(
    const std::vector<int64_t>& ids, bool with_image) const {
  Impl& m = *impl_;
  std::vector<CatalogItem> out(ids.size());
  if (!with_image) {
    std::unique_lock lock(m.cache_mu);
    if (m.cache_ready) {
      for (size_t i = 0; i < ids.size(); ++i) {
        auto it = m.cache.find(ids[i]);
        if (it == m.cache.end()) continue;
        out[i].id = ids[i];
        out[i].label = it->second.label;
        out[i].source = it->second.source;
        if (static_cast<size_t>(it->second.label) < m.label_names.size()) {
          out[i].label_name = m.label_names[it->second.label];
        }
      }
      return out;
    }
  }
  std::unique_lock lock(m.mu);
  ASSIGN_OR_RETURN(
      Result r, m.conn.Exec(absl::StrCat("SELECT ", kItemColumns,
                                         " WHERE i.id = ANY($2::bigint[])"),
                            {{with_image ? "true" : "false"}, {IdArray(ids)}}));
  absl::flat_hash_map<int64_t, int> row_of;
  for (int i = 0; i < PQntuples(r.get()); ++i)
    row_of[Int64At(r.get(), i, 0)] = i;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = row_of.find(ids[i]);
    if (it == row_of.end()) continue;
    out[i] = Impl::ItemAt(r.get(), it->second);
    out[i].embedding.clear();
  }
  return out;
}

absl::StatusOr<int64_t> PgCatalog::Count() const {
  std::unique_lock lock(impl_->mu);
  ASSIGN_OR_RETURN(
      Result r,
      impl_->conn.Exec("SELECT count(*)::int8 FROM embedsearch_images"));
  return Int64At(r.get(), 0, 0);
}

absl::StatusOr<std::vector<int64_t>> PgCatalog::Ids() const {
  std::unique_lock lock(impl_->mu);
  ASSIGN_OR_RETURN(
      Result r,
      impl_->conn.Exec("SELECT id FROM embedsearch_images ORDER BY id"));
  std::vector<int64_t> ids(PQntuples(r.get()));
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = Int64At(r.get(), static_cast<int>(i), 0);
  }
  return ids;
}

absl::StatusOr<std::vector<std::string>> PgCatalog::LabelNames() const {
  Impl& m = *impl_;
  std::vector<std::string> names;
  {
    std::unique_lock lock(m.mu);
    ASSIGN_OR_RETURN(
        Result r,
        m.conn.Exec(
            "SELECT label, name FROM embedsearch_labels WHERE label >= 0 "
            "ORDER BY label"));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const int32_t label = Int32At(r.get(), i, 0);
      if (names.size() <= static_cast<size_t>(label)) names.resize(label + 1);
      names[label] = BytesAt(r.get(), i, 1);
    }
  }
  std::unique_lock lock(m.cache_mu);
  for (size_t i = 0; i < names.size(); ++i) {
    m.CacheLabel(static_cast<int32_t>(i), names[i]);
  }
  return names;
}

absl::Status PgCatalog::ForEach(
    const std::function<void(const CatalogItem&)>& fn, bool with_image) const {
  std::unique_lock lock(impl_->mu);
  ASSIGN_OR_RETURN(
      Result r,
      impl_->conn.Exec(absl::StrCat("SELECT ", kItemColumns, " ORDER BY i.id"),
                       {{with_image ? "true" : "false"}}));
  for (int i = 0; i < PQntuples(r.get()); ++i) fn(Impl::ItemAt(r.get(), i));
  return absl::OkStatus();
}

absl::Status PgCatalog::CheckIntegrity() const {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  ASSIGN_OR_RETURN(
      Result r,
      m.conn.Exec(
          "SELECT count(*)::int8 FROM embedsearch_images i LEFT JOIN "
          "embedsearch_labels l ON l.label = i.label WHERE l.label IS NULL OR "
          "length(i.embedding) <> $1::int",
          {{absl::StrCat(m.dim * static_cast<int>(sizeof(float)))}}));
  if (const int64_t bad = Int64At(r.get(), 0, 0); bad > 0) {
    return absl::DataLossError(absl::StrCat(
        "the PostgreSQL catalog (", m.description, ") has ", bad,
        " images without a label or with an embedding that is not ", m.dim,
        "-d"));
  }
  return absl::OkStatus();
}

absl::Status PgCatalog::RegisterGeneration() {
  Impl& m = *impl_;
  if (m.generation.empty()) {
    return absl::FailedPreconditionError(
        "this catalog was opened without a generation");
  }
  std::unique_lock lock(m.mu);
  absl::Status s = m.conn.Run(
      "INSERT INTO public.embedsearch_generations (model_version, schema_name) "
      "VALUES ($1, $2) ON CONFLICT (model_version) DO NOTHING",
      {{m.generation}, {m.schema}});
  if (absl::IsAlreadyExists(s)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "schema ", m.schema, " belongs to another model version's generation"));
  }
  return s;
}

int PgCatalog::dim() const { return impl_->dim; }
std::string PgCatalog::description() const { return impl_->description; }

absl::StatusOr<int64_t> PgCatalog::Snapshot(
    const std::function<void(const CatalogItem&)>& fn) {
  Impl& m = *impl_;
  int64_t sequence = 0;
  absl::flat_hash_map<int64_t, Impl::Cached> cache;
  std::vector<std::pair<int32_t, std::string>> labels;
  {
    std::unique_lock lock(m.mu);
    RETURN_IF_ERROR(InTransaction(
        m.conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        [&]() -> absl::Status {
          ASSIGN_OR_RETURN(Result seq,
                           m.conn.Exec("SELECT coalesce(max(seq), 0)::int8 "
                                       "FROM embedsearch_changes"));
          sequence = Int64At(seq.get(), 0, 0);
          ASSIGN_OR_RETURN(
              Result names,
              m.conn.Exec("SELECT label, name FROM embedsearch_labels"));
          for (int i = 0; i < PQntuples(names.get()); ++i) {
            labels.emplace_back(Int32At(names.get(), i, 0),
                                BytesAt(names.get(), i, 1));
          }
          ASSIGN_OR_RETURN(Result r,
                           m.conn.Exec(absl::StrCat("SELECT ", kItemColumns,
                                                    " ORDER BY i.id"),
                                       {{"false"}}));
          for (int i = 0; i < PQntuples(r.get()); ++i) {
            CatalogItem item = Impl::ItemAt(r.get(), i);
            cache[item.id] = Impl::Cached{item.label, item.source};
            fn(item);
          }
          return absl::OkStatus();
        }));
  }
  std::unique_lock lock(m.cache_mu);
  m.cache = std::move(cache);
  for (const auto& [label, name] : labels) m.CacheLabel(label, name);
  m.cache_ready = true;
  return sequence;
}

absl::StatusOr<std::vector<CatalogChange>> PgCatalog::ChangesAfter(
    int64_t after, int limit) {
  Impl& m = *impl_;
  std::vector<CatalogChange> changes;
  {
    std::unique_lock lock(m.mu);
    ASSIGN_OR_RETURN(
        Result r,
        m.conn.Exec(
            "SELECT c.seq, c.op = 'r', c.image_id, "
            "extract(epoch FROM c.committed_at)::float8, i.id IS NOT NULL, "
            "coalesce(i.label, 0)::int4, coalesce(l.name, ''), "
            "coalesce(i.source, ''), coalesce(i.embedding, ''::bytea) "
            "FROM embedsearch_changes c "
            "LEFT JOIN embedsearch_images i ON c.op = 'a' AND i.id = "
            "c.image_id "
            "LEFT JOIN embedsearch_labels l ON l.label = i.label "
            "WHERE c.seq > $1::bigint ORDER BY c.seq LIMIT $2::int",
            {{absl::StrCat(after)}, {absl::StrCat(limit)}}));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      CatalogChange c;
      c.sequence = Int64At(r.get(), i, 0);
      c.removed = *PQgetvalue(r.get(), i, 1) != 0;
      c.id = Int64At(r.get(), i, 2);
      c.committed_at = absl::FromUnixMicros(
          static_cast<int64_t>(Float64At(r.get(), i, 3) * 1e6));
      if (!c.removed && *PQgetvalue(r.get(), i, 4) != 0) {
        c.item.id = c.id;
        c.item.label = Int32At(r.get(), i, 5);
        c.item.label_name = BytesAt(r.get(), i, 6);
        c.item.source = BytesAt(r.get(), i, 7);
        c.item.embedding = DecodeEmbedding(BytesAt(r.get(), i, 8));
      }
      changes.push_back(std::move(c));
    }
  }
  for (const CatalogChange& c : changes) {
    if (c.removed) {
      m.CacheRemove(c.id);
    } else if (c.item.id != 0) {
      m.CacheAdd(c.item);
    }
  }
  return changes;
}

absl::StatusOr<int64_t> PgCatalog::LatestSequence() {
  std::unique_lock lock(impl_->mu);
  ASSIGN_OR_RETURN(
      Result r,
      impl_->conn.Exec(
          "SELECT coalesce(max(seq), 0)::int8 FROM embedsearch_changes"));
  return Int64At(r.get(), 0, 0);
}

void PgCatalog::WaitForChanges(absl::Duration timeout) {
  Impl& m = *impl_;
  Connection& c = m.listen_conn;
  if (!m.listening) {
    if (!c.Run(absl::StrCat("LISTEN \"", m.channel, "\"")).ok()) {
      c.Drop();
      absl::SleepFor(timeout);  // PostgreSQL is away: poll at this pace.
      return;
    }
    m.listening = true;
  }
  PGconn* conn = c.raw();
  const int fd = PQsocket(conn);
  fd_set fds;
  FD_ZERO(&fds);
  FD_SET(fd, &fds);
  timeval tv = absl::ToTimeval(timeout);
  if (::select(fd + 1, &fds, nullptr, nullptr, &tv) < 0) return;
  if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK) {
    c.Drop();
    m.listening = false;
    return;
  }
  while (PGnotify* n = PQnotifies(conn)) PQfreemem(n);
}

}  // namespace embedsearch
