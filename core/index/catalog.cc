#include "core/index/catalog.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

static_assert(sizeof(float) == 4, "embeddings are stored as 32-bit floats");

constexpr int kBusyTimeoutMs = 10000;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels(label INTEGER PRIMARY KEY,
                                  name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS items(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  label INTEGER NOT NULL,
  source TEXT NOT NULL,
  image_png BLOB NOT NULL,
  embedding BLOB NOT NULL,
  model_version TEXT NOT NULL);
)sql";

// Owns one SQLite handle and releases it with `Release` (both accept null).
template <typename Handle, int (*Release)(Handle*)>
class Owned {
 public:
  Owned() = default;
  ~Owned() { Release(handle_); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  Handle** out() { return &handle_; }
  Handle* get() const { return handle_; }

 private:
  Handle* handle_ = nullptr;
};

// A prepared statement (Use resets it after each use).
using Stmt = Owned<sqlite3_stmt, sqlite3_finalize>;
// The connection. Catalog::Impl declares it before the statements, so they
// are finalized first (members go in reverse order): sqlite3_close fails
// while any statement is unfinalized, and the WAL is then never checkpointed
// into the file.
using Connection = Owned<sqlite3, sqlite3_close>;

// Resets and unbinds on destruction.
struct Use {
  explicit Use(sqlite3_stmt* s) : stmt(s) {}
  ~Use() {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
  sqlite3_stmt* stmt;
};

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what,
                         const std::string& path) {
  std::string msg = absl::StrCat(path, ": ", what, ": ",
                                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_CANTOPEN:
      return absl::NotFoundError(msg);
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return absl::PermissionDeniedError(msg);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// True when nobody may create files beside `path` (read-only mount or
// directory permissions) and no write-ahead log exists for it.
bool InReadOnlyDirWithoutWal(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return ::access(dir.c_str(), W_OK) != 0 &&
         ::access((path + "-wal").c_str(), F_OK) != 0;
}

// "file:<percent-encoded path>?immutable=1" (RFC 3986 path characters kept).
std::string ImmutableUri(const std::string& path) {
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (std::isalnum(c) || std::strchr("/-._~!$&'()*+,;=:@", c) != nullptr) {
      uri += static_cast<char>(c);
    } else {
      uri += absl::StrFormat("%%%02X", c);
    }
  }
  return uri + "?immutable=1";
}

std::string ColumnText(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  return t ? std::string(reinterpret_cast<const char*>(t),
                         sqlite3_column_bytes(s, col))
           : std::string();
}

std::string ColumnBlob(sqlite3_stmt* s, int col) {
  const void* b = sqlite3_column_blob(s, col);
  return b ? std::string(static_cast<const char*>(b),
                         sqlite3_column_bytes(s, col))
           : std::string();
}

}  // namespace

struct Catalog::Impl {
  std::string path;
  int dim = 0;
  bool read_only = false;
  mutable std::mutex mu;
  Connection db ABSL_GUARDED_BY(mu);
  // Prepared once; used only under mu. Declared after db: see Connection.
  Stmt begin, begin_read, commit, rollback, insert_auto, insert_id, delete_id, get_img,
      get_noimg, count, ids, label_by_name, name_by_label, max_label,
      insert_label, label_names, for_each_img, for_each_noimg;

  absl::Status Error(int rc, absl::string_view what) const
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return SqliteError(db.get(), rc, what, path);
  }

  absl::Status Exec(const char* sql) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    char* err = nullptr;
    int rc = sqlite3_exec(db.get(), sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      return SqliteError(nullptr, rc, absl::StrCat(sql, ": ", msg), path);
    }
    return absl::OkStatus();
  }

  absl::Status Prepare(Stmt* stmt, const char* sql)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    int rc = sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT,
                                stmt->out(), nullptr);
    if (rc != SQLITE_OK) return Error(rc, absl::StrCat("prepare ", sql));
    return absl::OkStatus();
  }

  // Runs a statement that returns no rows.
  absl::Status Step(const Stmt& stmt, absl::string_view what)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Use use(stmt.get());
    int rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_DONE) return Error(rc, what);
    return absl::OkStatus();
  }

  // Single integer result (or `fallback` when no row / NULL).
  absl::StatusOr<int64_t> QueryInt(const char* sql, int64_t fallback)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Stmt s;
    RETURN_IF_ERROR(Prepare(&s, sql));
    int rc = sqlite3_step(s.get());
    if (rc == SQLITE_ROW) {
      if (sqlite3_column_type(s.get(), 0) == SQLITE_NULL) return fallback;
      return sqlite3_column_int64(s.get(), 0);
    }
    if (rc == SQLITE_DONE) return fallback;
    return Error(rc, sql);
  }

  absl::Status PrepareAll() {
    RETURN_IF_ERROR(Prepare(&begin, "BEGIN IMMEDIATE"));
    RETURN_IF_ERROR(Prepare(&begin_read, "BEGIN"));
    RETURN_IF_ERROR(Prepare(&commit, "COMMIT"));
    RETURN_IF_ERROR(Prepare(&rollback, "ROLLBACK"));
    RETURN_IF_ERROR(Prepare(&insert_auto,
                            "INSERT INTO items(label, source, image_png, "
                            "embedding, model_version) VALUES(?,?,?,?,?)"));
    RETURN_IF_ERROR(Prepare(&insert_id,
                            "INSERT INTO items(label, source, image_png, "
                            "embedding, model_version, id) "
                            "VALUES(?,?,?,?,?,?)"));
    RETURN_IF_ERROR(Prepare(&delete_id, "DELETE FROM items WHERE id = ?"));
    RETURN_IF_ERROR(Prepare(
        &get_img,
        "SELECT i.id, i.label, l.name, i.source, i.model_version, "
        "i.embedding, i.image_png FROM items i LEFT JOIN labels l "
        "ON l.label = i.label WHERE i.id = ?"));
    RETURN_IF_ERROR(Prepare(
        &get_noimg,
        "SELECT i.id, i.label, l.name, i.source, i.model_version, "
        "i.embedding FROM items i LEFT JOIN labels l "
        "ON l.label = i.label WHERE i.id = ?"));
    RETURN_IF_ERROR(Prepare(&count, "SELECT COUNT(*) FROM items"));
    RETURN_IF_ERROR(Prepare(&ids, "SELECT id FROM items ORDER BY id"));
    RETURN_IF_ERROR(
        Prepare(&label_by_name, "SELECT label FROM labels WHERE name = ?"));
    RETURN_IF_ERROR(
        Prepare(&name_by_label, "SELECT name FROM labels WHERE label = ?"));
    RETURN_IF_ERROR(Prepare(&max_label, "SELECT MAX(label) FROM labels"));
    RETURN_IF_ERROR(Prepare(&insert_label,
                            "INSERT INTO labels(label, name) VALUES(?, ?)"));
    RETURN_IF_ERROR(Prepare(&label_names,
                            "SELECT label, name FROM labels ORDER BY label"));
    RETURN_IF_ERROR(Prepare(
        &for_each_img,
        "SELECT i.id, i.label, l.name, i.source, i.model_version, "
        "i.embedding, i.image_png FROM items i LEFT JOIN labels l "
        "ON l.label = i.label ORDER BY i.id"));
    RETURN_IF_ERROR(Prepare(
        &for_each_noimg,
        "SELECT i.id, i.label, l.name, i.source, i.model_version, "
        "i.embedding FROM items i LEFT JOIN labels l "
        "ON l.label = i.label ORDER BY i.id"));
    return absl::OkStatus();
  }

  // Reads the row layout of get_*/for_each_* into `item`.
  CatalogItem ReadRow(sqlite3_stmt* s, bool with_image, bool with_embedding) {
    CatalogItem item;
    item.id = sqlite3_column_int64(s, 0);
    item.label = sqlite3_column_int(s, 1);
    item.label_name = ColumnText(s, 2);
    item.source = ColumnText(s, 3);
    item.model_version = ColumnText(s, 4);
    if (with_embedding) {
      int bytes = sqlite3_column_bytes(s, 5);
      item.embedding.resize(bytes / sizeof(float));
      if (bytes > 0) {
        std::memcpy(item.embedding.data(), sqlite3_column_blob(s, 5),
                    item.embedding.size() * sizeof(float));
      }
    }
    if (with_image) item.image_png = ColumnBlob(s, 6);
    return item;
  }

  // Label number for `name`, creating it when new. Inside a transaction.
  absl::StatusOr<int32_t> LabelFor(const std::string& name)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    {
      Use use(label_by_name.get());
      sqlite3_bind_text(label_by_name.get(), 1, name.data(), name.size(),
                        SQLITE_STATIC);
      int rc = sqlite3_step(label_by_name.get());
      if (rc == SQLITE_ROW) return sqlite3_column_int(label_by_name.get(), 0);
      if (rc != SQLITE_DONE) return Error(rc, "look up label");
    }
    int32_t next = 0;
    {
      Use use(max_label.get());
      int rc = sqlite3_step(max_label.get());
      if (rc != SQLITE_ROW) return Error(rc, "max label");
      if (sqlite3_column_type(max_label.get(), 0) != SQLITE_NULL) {
        next = sqlite3_column_int(max_label.get(), 0) + 1;
      }
    }
    RETURN_IF_ERROR(InsertLabel(next, name));
    return next;
  }

  absl::Status InsertLabel(int32_t label, const std::string& name)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Use use(insert_label.get());
    sqlite3_bind_int(insert_label.get(), 1, label);
    sqlite3_bind_text(insert_label.get(), 2, name.data(), name.size(),
                      SQLITE_STATIC);
    int rc = sqlite3_step(insert_label.get());
    if (rc != SQLITE_DONE) return Error(rc, "insert label");
    return absl::OkStatus();
  }

  // Name of `label`, NotFound when it has none.
  absl::StatusOr<std::string> NameOf(int32_t label)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Use use(name_by_label.get());
    sqlite3_bind_int(name_by_label.get(), 1, label);
    int rc = sqlite3_step(name_by_label.get());
    if (rc == SQLITE_ROW) return ColumnText(name_by_label.get(), 0);
    if (rc != SQLITE_DONE) return Error(rc, "look up label name");
    return absl::NotFoundError(absl::StrCat("label ", label, " has no name"));
  }

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT; rolls back on error.
  template <typename F>
  absl::Status Transaction(F body) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (read_only) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": catalog was opened read-only"));
    }
    RETURN_IF_ERROR(Step(begin, "begin transaction"));
    absl::Status status = body();
    if (status.ok()) status = Step(commit, "commit");
    if (!status.ok()) {
      // After a failed COMMIT SQLite may already have rolled back; a
      // second ROLLBACK then fails harmlessly.
      Use use(rollback.get());
      sqlite3_step(rollback.get());
    }
    return status;
  }

  // Runs `body`'s SELECTs inside one read transaction (a deferred BEGIN ...
  // COMMIT): autocommit statements would each take and drop SQLite's shared
  // lock (fcntl) and re-check the WAL (fstat); perf put those at 6% of the
  // server's CPU at concurrency 16 for a search's 10 rows, 1% with this. A
  // deferred BEGIN takes no lock until the first SELECT; if it fails, `body`
  // runs in autocommit mode. Statements must be reset when `body` returns
  // (Use does that).
  template <typename F>
  absl::Status ReadTransaction(F body) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    bool began;
    {
      Use use(begin_read.get());
      began = sqlite3_step(begin_read.get()) == SQLITE_DONE;
    }
    absl::Status status = body();
    if (began) {
      Use use(commit.get());
      sqlite3_step(commit.get());  // nothing was written: nothing to lose
    }
    return status;
  }

  absl::Status OpenDb(bool ro, int want_dim) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  // Schema checks shared by Open, OpenReadOnly and CheckIntegrity.
  absl::Status CheckSchema(int expected_dim) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    ASSIGN_OR_RETURN(int64_t version, QueryInt("PRAGMA user_version", 0));
    if (version > kCatalogSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": catalog schema version ", version,
          " is newer than this build understands (", kCatalogSchemaVersion,
          ")"));
    }
    if (version != kCatalogSchemaVersion) {
      return absl::DataLossError(absl::StrCat(
          path, ": not an embedsearch catalog (schema version ", version,
          ", expected ", kCatalogSchemaVersion, ")"));
    }
    ASSIGN_OR_RETURN(
        int64_t tables,
        QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                 "name IN ('meta', 'labels', 'items')",
                 0));
    if (tables != 3) {
      return absl::DataLossError(absl::StrCat(
          path, ": catalog is missing tables (found ", tables,
          " of meta, labels, items)"));
    }
    ASSIGN_OR_RETURN(
        int64_t stored_dim,
        QueryInt("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'dim'",
                 -1));
    if (stored_dim <= 0) {
      return absl::DataLossError(
          absl::StrCat(path, ": catalog has no embedding dim in its meta table"));
    }
    if (expected_dim > 0 && stored_dim != expected_dim) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": catalog holds ", stored_dim, "-d embeddings, expected ",
          expected_dim));
    }
    dim = static_cast<int>(stored_dim);
    return absl::OkStatus();
  }
};

Catalog::Catalog() : impl_(std::make_unique<Impl>()) {}
Catalog::~Catalog() = default;

absl::Status Catalog::Impl::OpenDb(bool ro, int want_dim) {
  read_only = ro;
  int flags = SQLITE_OPEN_NOMUTEX |
              (ro ? SQLITE_OPEN_READONLY
                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  std::string name = path;
  if (ro && InReadOnlyDirWithoutWal(path)) {
    // A WAL-mode database needs its -shm file even to read; in a directory
    // nobody can write, it cannot be created. With no -wal file there is
    // nothing beyond the main file to read, and nobody can change it while
    // the directory stays read-only: open it as immutable (no locks, no
    // -shm). A -wal file left by an unclean shutdown keeps the normal
    // path, which SQLite (>= 3.22) reads when its -shm exists too.
    name = ImmutableUri(path);
    flags |= SQLITE_OPEN_URI;
  }
  int rc = sqlite3_open_v2(name.c_str(), db.out(), flags, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "open");
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  sqlite3_extended_result_codes(db.get(), 1);
  if (!ro) {
    // journal_mode is persistent in the file; synchronous is per connection.
    // FULL in WAL mode fsyncs the WAL on every commit, which is what makes
    // an acknowledged Add survive power loss (NORMAL would only survive a
    // process crash).
    RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
    ASSIGN_OR_RETURN(int64_t version, QueryInt("PRAGMA user_version", 0));
    if (version == 0) {
      ASSIGN_OR_RETURN(
          int64_t tables,
          QueryInt("SELECT COUNT(*) FROM sqlite_master", 0));
      if (tables != 0) {
        return absl::DataLossError(absl::StrCat(
            path, ": a SQLite database but not an embedsearch catalog"));
      }
      if (want_dim <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("catalog dim must be positive, got ", want_dim));
      }
      std::string create = absl::StrCat(
          "BEGIN IMMEDIATE;", kSchema,
          "INSERT INTO meta(key, value) VALUES('dim', '", want_dim, "');",
          "PRAGMA user_version = ", kCatalogSchemaVersion, ";", "COMMIT;");
      absl::Status created = Exec(create.c_str());
      if (!created.ok()) {
        Exec("ROLLBACK").IgnoreError();
        return created;
      }
    }
  }
  RETURN_IF_ERROR(CheckSchema(want_dim));
  RETURN_IF_ERROR(PrepareAll());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::Open(const std::string& path,
                                                       int dim) {
  std::unique_ptr<Catalog> catalog(new Catalog());
  Impl* impl = catalog->impl_.get();
  impl->path = path;
  std::unique_lock lock(impl->mu);
  RETURN_IF_ERROR(impl->OpenDb(/*ro=*/false, dim));
  return catalog;
}

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::OpenReadOnly(
    const std::string& path, int expected_dim) {
  std::unique_ptr<Catalog> catalog(new Catalog());
  Impl* impl = catalog->impl_.get();
  impl->path = path;
  std::unique_lock lock(impl->mu);
  RETURN_IF_ERROR(impl->OpenDb(/*ro=*/true, expected_dim));
  return catalog;
}

absl::StatusOr<std::vector<int64_t>> Catalog::Add(
    std::vector<CatalogItem> items) {
  Impl& m = *impl_;
  // Validate everything before touching the file.
  for (size_t i = 0; i < items.size(); ++i) {
    const CatalogItem& item = items[i];
    if (static_cast<int>(item.embedding.size()) != m.dim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "item ", i, ": embedding has ", item.embedding.size(),
          " values, the catalog holds ", m.dim, "-d embeddings"));
    }
    for (float v : item.embedding) {
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("item ", i, ": embedding has a non-finite value"));
      }
    }
    if (item.id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("item ", i, ": negative id ", item.id));
    }
  }
  std::vector<int64_t> ids;
  ids.reserve(items.size());
  std::unique_lock lock(m.mu);
  absl::Status status = m.Transaction([&]() -> absl::Status {
    absl::flat_hash_map<std::string, int32_t> label_cache;
    for (size_t i = 0; i < items.size(); ++i) {
      CatalogItem& item = items[i];
      if (!item.label_name.empty()) {
        auto it = label_cache.find(item.label_name);
        if (it == label_cache.end()) {
          ASSIGN_OR_RETURN(int32_t label, m.LabelFor(item.label_name));
          it = label_cache.emplace(item.label_name, label).first;
        }
        item.label = it->second;
      } else {
        absl::StatusOr<std::string> name = m.NameOf(item.label);
        if (absl::IsNotFound(name.status())) {
          return absl::InvalidArgumentError(absl::StrCat(
              "item ", i, ": label ", item.label,
              " has no name in the catalog; give a label_name"));
        }
        RETURN_IF_ERROR(name.status());
      }
      sqlite3_stmt* s = item.id == 0 ? m.insert_auto.get() : m.insert_id.get();
      Use use(s);
      sqlite3_bind_int(s, 1, item.label);
      sqlite3_bind_text(s, 2, item.source.data(), item.source.size(),
                        SQLITE_STATIC);
      sqlite3_bind_blob(s, 3, item.image_png.data(), item.image_png.size(),
                        SQLITE_STATIC);
      sqlite3_bind_blob(s, 4, item.embedding.data(),
                        item.embedding.size() * sizeof(float), SQLITE_STATIC);
      sqlite3_bind_text(s, 5, item.model_version.data(),
                        item.model_version.size(), SQLITE_STATIC);
      if (item.id != 0) sqlite3_bind_int64(s, 6, item.id);
      int rc = sqlite3_step(s);
      if (rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_CONSTRAINT) {
          return absl::AlreadyExistsError(absl::StrCat(
              "item ", i, ": id ", item.id, " exists in the catalog"));
        }
        return m.Error(rc, "insert item");
      }
      ids.push_back(sqlite3_last_insert_rowid(m.db.get()));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return ids;
}

absl::Status Catalog::DefineLabels(const std::vector<std::string>& names) {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  return m.Transaction([&]() -> absl::Status {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i].empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("label ", i, " has an empty name"));
      }
      absl::StatusOr<std::string> existing = m.NameOf(static_cast<int32_t>(i));
      if (existing.ok()) {
        if (*existing != names[i]) {
          return absl::InvalidArgumentError(
              absl::StrCat("label ", i, " is named \"", *existing,
                           "\" in the catalog, not \"", names[i], "\""));
        }
        continue;
      }
      if (!absl::IsNotFound(existing.status())) return existing.status();
      absl::Status inserted = m.InsertLabel(static_cast<int32_t>(i), names[i]);
      if (absl::IsAlreadyExists(inserted)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "label name \"", names[i], "\" exists under another label"));
      }
      RETURN_IF_ERROR(inserted);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> Catalog::Remove(const std::vector<int64_t>& ids) {
  Impl& m = *impl_;
  int64_t removed = 0;
  std::unique_lock lock(m.mu);
  absl::Status status = m.Transaction([&]() -> absl::Status {
    for (int64_t id : ids) {
      Use use(m.delete_id.get());
      sqlite3_bind_int64(m.delete_id.get(), 1, id);
      int rc = sqlite3_step(m.delete_id.get());
      if (rc != SQLITE_DONE) return m.Error(rc, "delete item");
      removed += sqlite3_changes(m.db.get());
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return removed;
}

absl::StatusOr<CatalogItem> Catalog::Get(int64_t id, bool with_image) const {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  sqlite3_stmt* s = with_image ? m.get_img.get() : m.get_noimg.get();
  Use use(s);
  sqlite3_bind_int64(s, 1, id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) return m.ReadRow(s, with_image, true);
  if (rc != SQLITE_DONE) return m.Error(rc, "get item");
  return absl::NotFoundError(absl::StrCat("no image with id ", id));
}

absl::StatusOr<std::vector<CatalogItem>> Catalog::GetMany(
    const std::vector<int64_t>& ids, bool with_image) const {
  Impl& m = *impl_;
  std::vector<CatalogItem> out(ids.size());
  std::unique_lock lock(m.mu);
  sqlite3_stmt* s = with_image ? m.get_img.get() : m.get_noimg.get();
  absl::Status status = m.ReadTransaction([&]() -> absl::Status {
    for (size_t i = 0; i < ids.size(); ++i) {
      Use use(s);
      sqlite3_bind_int64(s, 1, ids[i]);
      int rc = sqlite3_step(s);
      if (rc == SQLITE_ROW) {
        out[i] = m.ReadRow(s, with_image, false);
      } else if (rc != SQLITE_DONE) {
        return m.Error(rc, "get item");
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<int64_t> Catalog::Count() const {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  Use use(m.count.get());
  int rc = sqlite3_step(m.count.get());
  if (rc != SQLITE_ROW) return m.Error(rc, "count items");
  return sqlite3_column_int64(m.count.get(), 0);
}

absl::StatusOr<std::vector<int64_t>> Catalog::Ids() const {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  Use use(m.ids.get());
  std::vector<int64_t> out;
  int rc;
  while ((rc = sqlite3_step(m.ids.get())) == SQLITE_ROW) {
    out.push_back(sqlite3_column_int64(m.ids.get(), 0));
  }
  if (rc != SQLITE_DONE) return m.Error(rc, "list ids");
  return out;
}

absl::StatusOr<std::vector<std::string>> Catalog::LabelNames() const {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  Use use(m.label_names.get());
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(m.label_names.get())) == SQLITE_ROW) {
    int label = sqlite3_column_int(m.label_names.get(), 0);
    if (label < 0 || label > (1 << 20)) {
      return absl::DataLossError(
          absl::StrCat(m.path, ": label number ", label, " out of range"));
    }
    if (static_cast<size_t>(label) >= out.size()) out.resize(label + 1);
    out[label] = ColumnText(m.label_names.get(), 1);
  }
  if (rc != SQLITE_DONE) return m.Error(rc, "list labels");
  return out;
}

absl::Status Catalog::ForEach(const std::function<void(const CatalogItem&)>& fn,
                              bool with_image) const {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  sqlite3_stmt* s = with_image ? m.for_each_img.get() : m.for_each_noimg.get();
  Use use(s);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    CatalogItem item = m.ReadRow(s, with_image, true);
    if (static_cast<int>(item.embedding.size()) != m.dim) {
      return absl::DataLossError(absl::StrCat(
          m.path, ": item ", item.id, " has a ", item.embedding.size(),
          "-value embedding, expected ", m.dim));
    }
    fn(item);
  }
  if (rc != SQLITE_DONE) return m.Error(rc, "read items");
  return absl::OkStatus();
}

absl::Status Catalog::CheckIntegrity() const {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  Stmt s;
  RETURN_IF_ERROR(m.Prepare(&s, "PRAGMA integrity_check"));
  int rc = sqlite3_step(s.get());
  if (rc != SQLITE_ROW) {
    absl::Status e = m.Error(rc, "integrity check");
    return absl::DataLossError(e.message());
  }
  std::string first = ColumnText(s.get(), 0);
  if (first != "ok") {
    return absl::DataLossError(
        absl::StrCat(m.path, ": integrity check failed: ", first));
  }
  return m.CheckSchema(m.dim);
}

int Catalog::dim() const { return impl_->dim; }
const std::string& Catalog::path() const { return impl_->path; }

}  // namespace embedsearch
