// A throw-away PostgreSQL cluster for tests: initdb + pg_ctl from Debian's
// postgresql package in a fresh directory under /tmp, listening on a free
// 127.0.0.1 port (and a Unix socket in that directory only), trust auth for
// user "embedsearch", fsync off (tests kill processes, not the machine).
// Run as root, the cluster runs as the unprivileged "postgres" user
// (runuser), since PostgreSQL refuses to run as root.
//
// The binaries are found in $EMBEDSEARCH_PG_BINDIR or the newest
// /usr/lib/postgresql/*/bin. Not thread-safe. The server is a daemon
// (pg_ctl): a test process killed before its destructor ran leaves it
// running in /tmp/es-pg-*; `pg_ctl -D /tmp/es-pg-*/data stop` ends it.
#ifndef EMBEDSEARCH_TESTS_POSTGRES_PG_CLUSTER_H_
#define EMBEDSEARCH_TESTS_POSTGRES_PG_CLUSTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace embedsearch {
namespace testing {

class PgCluster {
 public:
  // FailedPrecondition (naming what is missing) without PostgreSQL.
  static absl::StatusOr<std::unique_ptr<PgCluster>> Start();
  ~PgCluster();  // Stops the server (immediate) and deletes the directory.
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // Creates database `name` and returns its connection string.
  absl::StatusOr<std::string> CreateDatabase(const std::string& name);
  std::string Dsn(const std::string& database) const;
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

  // pg_ctl stop: "fast" (clean) or "immediate" (like a crash: recovery on
  // the next start).
  absl::Status Stop(const std::string& mode = "fast");
  // pg_ctl start on the same port and directory; waits until it accepts
  // connections.
  absl::Status StartAgain();

 private:
  PgCluster() = default;
  std::string AsOwner(const std::string& command) const;

  std::string bindir_;
  std::string dir_;
  std::string run_as_;  // "" when not root
  int port_ = 0;
  bool running_ = false;
};

// One cluster per test process, started on first use and stopped at exit;
// nullptr (and the reason in *why) when it cannot start.
PgCluster* SharedPgCluster(std::string* why = nullptr);

// A new, empty database `prefix`_N in the shared cluster (N counts up per
// process; thread-safe as far as the cluster is started already) and its
// connection string. FailedPrecondition (naming why) without PostgreSQL.
absl::StatusOr<std::string> NewPgDatabase(const std::string& prefix);

}  // namespace testing
}  // namespace embedsearch

#endif  // EMBEDSEARCH_TESTS_POSTGRES_PG_CLUSTER_H_
