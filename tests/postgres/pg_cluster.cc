#include "tests/postgres/pg_cluster.h"

#include <glob.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"

namespace embedsearch {
namespace testing {
namespace {

std::string FindBindir() {
  if (const char* env = std::getenv("EMBEDSEARCH_PG_BINDIR")) return env;
  glob_t g;
  std::vector<std::string> found;
  if (::glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) found.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  if (found.empty()) return "";
  // Newest major version (numeric order: 9 < 15).
  std::sort(found.begin(), found.end(),
            [](const std::string& a, const std::string& b) {
              return std::atoi(a.c_str() + 20) < std::atoi(b.c_str() + 20);
            });
  const std::string& initdb = found.back();
  return initdb.substr(0, initdb.size() - std::string("/initdb").size());
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

absl::Status Shell(const std::string& command) {
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("command failed (status ", rc, "): ", command));
  }
  return absl::OkStatus();
}

}  // namespace

std::string PgCluster::AsOwner(const std::string& command) const {
  if (run_as_.empty()) return command;
  return absl::StrCat("runuser -u ", run_as_, " -- ", command);
}

absl::StatusOr<std::unique_ptr<PgCluster>> PgCluster::Start() {
  std::unique_ptr<PgCluster> c(new PgCluster());
  c->bindir_ = FindBindir();
  if (c->bindir_.empty()) {
    return absl::FailedPreconditionError(
        "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb): "
        "install Debian's postgresql package (scripts/install-deps does)");
  }
  char tmpl[] = "/tmp/es-pg-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    return absl::InternalError("cannot create a temporary directory");
  }
  c->dir_ = tmpl;
  if (::geteuid() == 0) {
    c->run_as_ = ::getpwnam("postgres") != nullptr ? "postgres" : "nobody";
    if (::chown(c->dir_.c_str(), ::getpwnam(c->run_as_.c_str())->pw_uid,
                static_cast<gid_t>(-1)) != 0) {
      return absl::InternalError(absl::StrCat("cannot chown ", c->dir_));
    }
  }
  absl::Status init =
      Shell(c->AsOwner(absl::StrCat(c->bindir_, "/initdb -D ", c->dir_,
                                    "/data -U embedsearch -A trust "
                                    "--no-sync -E UTF8 --locale=C.UTF-8 >",
                                    c->dir_, "/initdb.log 2>&1")));
  if (!init.ok()) return init;
  // Another process may take the free port before the server binds it
  // (tests run in parallel): try a few.
  absl::Status started;
  for (int attempt = 0; attempt < 3; ++attempt) {
    c->port_ = FreePort();
    started = c->StartAgain();
    if (started.ok()) return c;
  }
  return started;
}

absl::Status PgCluster::StartAgain() {
  const std::string options = absl::StrCat(
      "-p ", port_, " -k ", dir_,
      " -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
      " -c shared_buffers=32MB -c max_connections=200");
  absl::Status s = Shell(AsOwner(
      absl::StrCat(bindir_, "/pg_ctl -D ", dir_, "/data -w -t 60 -l ", dir_,
                   "/server.log -o '", options, "' start >/dev/null")));
  running_ = s.ok();
  return s;
}

absl::Status PgCluster::Stop(const std::string& mode) {
  absl::Status s = Shell(
      AsOwner(absl::StrCat(bindir_, "/pg_ctl -D ", dir_, "/data -w -t 60 -m ",
                           mode, " stop >/dev/null")));
  if (s.ok()) running_ = false;
  return s;
}

PgCluster::~PgCluster() {
  if (running_) Stop("immediate").IgnoreError();
  if (!dir_.empty()) Shell(absl::StrCat("rm -rf '", dir_, "'")).IgnoreError();
}

std::string PgCluster::Dsn(const std::string& database) const {
  return absl::StrCat("host=127.0.0.1 port=", port_,
                      " user=embedsearch dbname=", database);
}

absl::StatusOr<std::string> PgCluster::CreateDatabase(const std::string& name) {
  PGconn* conn = PQconnectdb(Dsn("postgres").c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* r = PQexec(conn, absl::StrCat("CREATE DATABASE ", name).c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) error = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(conn);
  if (!error.empty()) {
    return absl::InternalError(
        absl::StrCat("CREATE DATABASE ", name, ": ", error));
  }
  return Dsn(name);
}

PgCluster* SharedPgCluster(std::string* why) {
  static absl::StatusOr<std::unique_ptr<PgCluster>>* cluster =
      new absl::StatusOr<std::unique_ptr<PgCluster>>(PgCluster::Start());
  static const bool registered = [] {
    std::atexit([] {
      if (cluster->ok()) cluster->value().reset();
    });
    return true;
  }();
  (void)registered;
  if (!cluster->ok()) {
    if (why != nullptr) *why = std::string(cluster->status().message());
    return nullptr;
  }
  return cluster->value().get();
}

absl::StatusOr<std::string> NewPgDatabase(const std::string& prefix) {
  std::string why;
  PgCluster* cluster = SharedPgCluster(&why);
  if (cluster == nullptr) return absl::FailedPreconditionError(why);
  static std::atomic<int> databases{0};
  return cluster->CreateDatabase(absl::StrCat(prefix, "_", databases++));
}

}  // namespace testing
}  // namespace embedsearch
