// Server replicas sharing one PostgreSQL catalog: real embedsearch-server
// processes on 127.0.0.1, one throw-away PostgreSQL cluster per test
// process (pg_cluster.h), a bundle published into it with
// embedsearch-catalog.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <libpq-fe.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/client/subprocess.h"
#include "tests/postgres/pg_cluster.h"
#include "tests/server/test_bundle.h"

namespace embedsearch {
namespace {

const std::string kServer =
    std::string(EMBEDSEARCH_BINARY_DIR) + "/server/embedsearch-server";
const std::string kCatalogTool =
    std::string(EMBEDSEARCH_BINARY_DIR) + "/server/embedsearch-catalog";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One embedsearch-server process serving the shared catalog.
struct Replica {
  std::unique_ptr<ChildProcess> process;
  std::string log;
  int port = 0;
  std::unique_ptr<v1::ImageSearch::Stub> stub;
};

// Starts a server with --catalog=`dsn` and waits until it serves.
std::string StartReplica(const std::string& bundle, const std::string& dsn,
                         const std::string& log, Replica* replica) {
  replica->log = log;
  replica->process = std::make_unique<ChildProcess>();
  if (!replica->process->Start(
          {kServer, "--bundle=" + bundle, "--catalog=" + dsn,
           "--address=127.0.0.1:0", "--threads=1", "--max_grpc_threads=16"},
          log)) {
    return "cannot start " + kServer;
  }
  const std::regex port_re("event=listening.*port=([0-9]+)");
  const std::regex loaded_re("event=bundle_loaded");
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  replica->port = 0;
  bool loaded = false;
  while (absl::Now() < deadline && !loaded) {
    const std::string text = ReadAll(log);
    std::smatch m;
    if (std::regex_search(text, m, port_re)) replica->port = std::stoi(m[1]);
    loaded = std::regex_search(text, loaded_re);
    if (!loaded) {
      if (!replica->process->Running()) return "server exited: " + text;
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  if (!loaded) return "server never loaded its bundle; log: " + log;
  replica->stub = testing::MakeStub(replica->port);
  return "";
}

absl::StatusOr<v1::GetInfoResponse> Info(Replica& r) {
  v1::GetInfoResponse info;
  grpc::Status s = r.stub->GetInfo(testing::MakeContext().get(), {}, &info);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return info;
}

// Adds gallery image `i` (as a new item) through `r`: its id, or the error.
// The SQL after "the changes are: " in embedsearch-catalog publish's warning.
std::string PrintedChangesQuery(const std::string& warning) {
  const std::string marker = "the changes are: ";
  const size_t start = warning.find(marker);
  if (start == std::string::npos) return "";
  const size_t from = start + marker.size();
  return warning.substr(from, warning.find('\n', from) - from);
}

absl::StatusOr<int64_t> AddThrough(Replica& r, size_t i,
                                   grpc::Status* grpc_status = nullptr) {
  v1::AddImagesRequest request;
  v1::NewImage* image = request.add_images();
  image->set_image(testing::GalleryPng(i % 300));
  image->set_label_name(i % 7 == 0 ? "added-label" : "Trouser");
  image->set_source(absl::StrCat("replica-test:", i));
  v1::AddImagesResponse response;
  grpc::Status s =
      r.stub->AddImages(testing::MakeContext().get(), request, &response);
  if (grpc_status != nullptr) *grpc_status = s;
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return response.ids(0);
}

// The hit ids of `queries` random unit embeddings (same seed: same queries).
std::vector<std::vector<int64_t>> Answers(Replica& r, int dim, int queries) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  std::vector<std::vector<int64_t>> answers;
  for (int q = 0; q < queries; ++q) {
    v1::SearchRequest request;
    request.set_k(10);
    for (int d = 0; d < dim; ++d)
      request.mutable_embedding()->add_values(g(rng));
    v1::SearchResponse response;
    grpc::Status s =
        r.stub->Search(testing::MakeContext().get(), request, &response);
    std::vector<int64_t> ids;
    if (!s.ok()) ids.push_back(-1);
    for (const v1::Hit& hit : response.hits()) ids.push_back(hit.id());
    answers.push_back(std::move(ids));
  }
  return answers;
}

// True when `id` is in `r`'s index: a search by its own embedding finds it.
bool Finds(Replica& r, int64_t id) { return testing::FindsById(*r.stub, id); }

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dsn = testing::NewPgDatabase("replicas");
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    cluster_ = testing::SharedPgCluster();  // Started by NewPgDatabase.
    dsn_ = *dsn;
    dir_ = testing::MakeTempDir("es-replicas");
    bundle_ = dir_ + "/bundle";
    ASSERT_TRUE(testing::MakeBundle(bundle_, /*seed=*/1).ok());
    ProcessResult published =
        RunProcess({kCatalogTool, "publish", "--bundle=" + bundle_},
                   {"EMBEDSEARCH_CATALOG=" + dsn_});
    ASSERT_EQ(published.exit_code, 0) << published.err;
    ASSERT_NE(published.out.find("published 300 images"), std::string::npos)
        << published.out;
    // No other generation is served: nothing to warn about.
    EXPECT_EQ(published.err.find("warning"), std::string::npos)
        << published.err;
  }

  void StartReplicas(int n) {
    replicas_.resize(n);
    for (int i = 0; i < n; ++i) {
      std::string error =
          StartReplica(bundle_, dsn_, absl::StrCat(dir_, "/replica", i, ".log"),
                       &replicas_[i]);
      ASSERT_EQ(error, "") << error;
    }
  }

  // Waits (up to 60 s) until every replica holds `size` items and has
  // applied the same change sequence.
  void WaitForConvergence(uint64_t size) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    for (;;) {
      bool same = true;
      uint64_t sequence = 0;
      std::string state;
      for (size_t i = 0; i < replicas_.size(); ++i) {
        auto info = Info(replicas_[i]);
        if (!info.ok()) {
          same = false;
          state += " unreachable";
          continue;
        }
        if (i == 0) sequence = info->applied_sequence();
        same = same && info->gallery_size() == size &&
               info->applied_sequence() == sequence;
        state += absl::StrCat(" ", info->gallery_size(), "@",
                              info->applied_sequence());
      }
      if (same) return;
      ASSERT_LT(absl::Now(), deadline)
          << "replicas did not converge on " << size << " items:" << state;
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  void ExpectSameAnswers(int queries) {
    auto info = Info(replicas_[0]);
    ASSERT_TRUE(info.ok()) << info.status();
    const auto expected =
        Answers(replicas_[0], static_cast<int>(info->dim()), queries);
    for (size_t i = 1; i < replicas_.size(); ++i) {
      EXPECT_EQ(Answers(replicas_[i], static_cast<int>(info->dim()), queries),
                expected)
          << "replica " << i << " answers differently from replica 0";
    }
  }

  // The rows of one query on the test database, outside the catalog (as
  // an operator's psql would run it); each value as text.
  std::vector<std::vector<std::string>> Query(const std::string& sql) {
    std::vector<std::vector<std::string>> rows;
    PGconn* conn = PQconnectdb(dsn_.c_str());
    PGresult* r = PQexec(conn, sql.c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
    for (int i = 0; i < PQntuples(r); ++i) {
      rows.emplace_back();
      for (int j = 0; j < PQnfields(r); ++j) rows.back().push_back(PQgetvalue(r, i, j));
    }
    PQclear(r);
    PQfinish(conn);
    return rows;
  }

  testing::PgCluster* cluster_ = nullptr;
  std::string dsn_;
  std::string dir_;
  std::string bundle_;
  std::vector<Replica> replicas_;
};

TEST_F(ReplicaTest, WritesThroughEachReplicaReachEveryReplica) {
  StartReplicas(3);
  std::vector<int64_t> added;
  for (int i = 0; i < 30; ++i) {
    auto id = AddThrough(replicas_[i % 3], static_cast<size_t>(i));
    ASSERT_TRUE(id.ok()) << id.status();
    // The replica that took the write answers with it at once.
    EXPECT_TRUE(Finds(replicas_[i % 3], *id)) << "id " << *id;
    added.push_back(*id);
  }
  // A remove through one replica reaches the others too.
  v1::RemoveImagesRequest remove;
  remove.add_ids(added[0]);
  remove.add_ids(5);
  v1::RemoveImagesResponse removed;
  ASSERT_TRUE(
      replicas_[1]
          .stub->RemoveImages(testing::MakeContext().get(), remove, &removed)
          .ok());
  EXPECT_EQ(removed.removed(), 2u);
  WaitForConvergence(300 + 30 - 2);
  for (Replica& r : replicas_) {
    EXPECT_TRUE(Finds(r, added[29]));
    EXPECT_FALSE(Finds(r, added[0]));
    auto info = Info(r);
    ASSERT_TRUE(info.ok());
    EXPECT_TRUE(info->catalog_reachable());
    EXPECT_NE(info->catalog().find("dbname="), std::string::npos)
        << info->catalog();
    // The label another replica created is known here too.
    EXPECT_NE(std::find(info->label_names().begin(), info->label_names().end(),
                        "added-label"),
              info->label_names().end());
  }
  ExpectSameAnswers(1000);
}

TEST_F(ReplicaTest, PasswordNeverShowsInArgumentsOrLog) {
  // Trust authentication ignores the password; it is only a marker here.
  const std::string secret = "s3cret-pw-marker";
  const std::string dsn = absl::StrCat("postgresql://embedsearch:", secret,
                                       "@127.0.0.1:", cluster_->port(), "/",
                                       dsn_.substr(dsn_.rfind('=') + 1));
  Replica r;
  std::string error = StartReplica(bundle_, dsn, dir_ + "/pw.log", &r);
  ASSERT_EQ(error, "") << error;
  const std::string cmdline =
      ReadAll(absl::StrCat("/proc/", r.process->pid(), "/cmdline"));
  EXPECT_NE(cmdline.find("--catalog="), std::string::npos);
  EXPECT_EQ(cmdline.find(secret), std::string::npos) << cmdline;
  auto info = Info(r);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->catalog().find(secret), std::string::npos);
  r.process->Stop();
  const std::string log = ReadAll(r.log);
  EXPECT_NE(log.find("catalog="), std::string::npos) << log;
  EXPECT_EQ(log.find(secret), std::string::npos) << log;
}

TEST_F(ReplicaTest, AnotherModelVersionIsRefusedNamingBoth) {
  const std::string other = dir_ + "/other";
  ASSERT_TRUE(testing::MakeBundle(other, /*seed=*/2).ok());
  ProcessResult r = RunProcess({kServer, "--bundle=" + other,
                                "--catalog=" + dsn_, "--address=127.0.0.1:0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("holds embeddings of model version"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("this bundle's model version is"), std::string::npos)
      << r.err;
  // A generation is published once; deploy jobs skip it when it is there.
  ProcessResult again = RunProcess(
      {kCatalogTool, "publish", "--bundle=" + bundle_, "--catalog=" + dsn_});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("a generation is published once"), std::string::npos)
      << again.err;
  ProcessResult skipped =
      RunProcess({kCatalogTool, "publish", "--bundle=" + bundle_,
                  "--catalog=" + dsn_, "--skip_if_published"});
  EXPECT_EQ(skipped.exit_code, 0) << skipped.err;
  EXPECT_NE(skipped.out.find("already published"), std::string::npos);
}

TEST_F(ReplicaTest, ReloadSwitchesGenerationWithoutFailingQueries) {
  StartReplicas(2);
  auto old_info = Info(replicas_[0]);
  ASSERT_TRUE(old_info.ok());
  // A new model version goes in as a new generation beside the served one.
  const std::string next = dir_ + "/bundle-next";
  ASSERT_TRUE(testing::MakeBundle(next, /*seed=*/2).ok());
  ProcessResult published = RunProcess(
      {kCatalogTool, "publish", "--bundle=" + next, "--catalog=" + dsn_});
  ASSERT_EQ(published.exit_code, 0) << published.err;
  // The served generation's writes from now on stay there, and publish
  // says so, naming the change they start after.
  EXPECT_NE(published.err.find(absl::StrCat(
                "generation ", old_info->model_version(), " (")),
            std::string::npos)
      << published.err;
  // The copy's own 300 changes are not counted as writes through servers.
  EXPECT_NE(published.err.find("holds 0 adds/removes made through servers"),
            std::string::npos)
      << published.err;
  EXPECT_NE(published.err.find(absl::StrCat(
                "after change ", old_info->applied_sequence(), " ")),
            std::string::npos)
      << published.err;
  auto written_to_old = AddThrough(replicas_[1], 4);
  ASSERT_TRUE(written_to_old.ok()) << written_to_old.status();
  // The SQL the warning prints runs as printed and lists that write.
  const std::string printed_query = PrintedChangesQuery(published.err);
  ASSERT_FALSE(printed_query.empty()) << published.err;
  std::vector<std::vector<std::string>> changes = Query(printed_query);
  ASSERT_EQ(changes.size(), 1u) << printed_query;
  EXPECT_EQ(changes[0][2], absl::StrCat(*written_to_old)) << printed_query;
  // `generations` counts it as the old generation's one write through a
  // server (columns: version, published, images, sequence, online changes,
  // connections).
  ProcessResult listed_before =
      RunProcess({kCatalogTool, "generations", "--catalog=" + dsn_});
  ASSERT_EQ(listed_before.exit_code, 0) << listed_before.err;
  bool old_listed = false;
  for (absl::string_view line : absl::StrSplit(listed_before.out, '\n')) {
    std::vector<std::string> columns =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (columns.size() != 6 || columns[0] != old_info->model_version()) continue;
    old_listed = true;
    EXPECT_EQ(columns[4], "1") << listed_before.out;
  }
  EXPECT_TRUE(old_listed) << listed_before.out;
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, answered{0};
  std::thread queries([&] {
    const int dim = static_cast<int>(old_info->dim());
    while (!stop) {
      for (Replica& r : replicas_) {
        for (const auto& ids : Answers(r, dim, 5)) {
          (ids.empty() || ids[0] == -1 ? failed : answered)++;
        }
      }
    }
  });
  std::string new_version;
  for (Replica& r : replicas_) {
    v1::ReloadRequest reload;
    reload.set_bundle_path(next);
    v1::ReloadResponse response;
    grpc::Status s =
        r.stub->Reload(testing::MakeContext().get(), reload, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_NE(response.model_version(), old_info->model_version());
    new_version = response.model_version();
  }
  absl::SleepFor(absl::Milliseconds(300));
  stop = true;
  queries.join();
  EXPECT_EQ(failed, 0) << "queries failed during the switch";
  EXPECT_GT(answered, 0);
  // Not carried over (docs/deploy.md): the new generation lacks it.
  EXPECT_FALSE(Finds(replicas_[0], *written_to_old));
  EXPECT_FALSE(Finds(replicas_[1], *written_to_old));
  // Both serve the new generation, and writes there reach both.
  auto id = AddThrough(replicas_[0], 3);
  ASSERT_TRUE(id.ok()) << id.status();
  WaitForConvergence(301);
  EXPECT_TRUE(Finds(replicas_[1], *id));
  // The old generation is dropped once nobody serves it; the new one is not.
  ProcessResult dropped;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    dropped = RunProcess({kCatalogTool, "drop", "--catalog=" + dsn_,
                          "--model_version=" + old_info->model_version()});
    if (dropped.exit_code == 0) break;
    absl::SleepFor(absl::Milliseconds(200));  // Old sessions still closing.
  } while (absl::Now() < deadline);
  EXPECT_EQ(dropped.exit_code, 0) << dropped.err;
  ProcessResult refused = RunProcess({kCatalogTool, "drop", "--catalog=" + dsn_,
                                      "--model_version=" + new_version});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("connections from servers serving it"),
            std::string::npos)
      << refused.err;
  ProcessResult listed =
      RunProcess({kCatalogTool, "generations", "--catalog=" + dsn_});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find(new_version), std::string::npos) << listed.out;
  EXPECT_EQ(listed.out.find(old_info->model_version()), std::string::npos)
      << listed.out;
}

// Keeps adding through the given replicas until stopped; remembers every
// acknowledged id.
class Writer {
 public:
  Writer(std::vector<Replica*> targets) : targets_(std::move(targets)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Writer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<int64_t> acknowledged() {
    std::unique_lock lock(mu_);
    return acknowledged_;
  }
  int failures() const { return failures_; }

 private:
  void Run() {
    for (size_t i = 0; !stop_; ++i) {
      auto id = AddThrough(*targets_[i % targets_.size()], i);
      if (id.ok()) {
        std::unique_lock lock(mu_);
        acknowledged_.push_back(*id);
      } else {
        ++failures_;
        absl::SleepFor(absl::Milliseconds(20));
      }
    }
  }

  std::vector<Replica*> targets_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::mutex mu_;
  std::vector<int64_t> acknowledged_;
  std::thread thread_;
};

void WaitForAcknowledged(Writer& writer, size_t n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (writer.acknowledged().size() < n && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
}

TEST_F(ReplicaTest, Kill9OfAReplicaDuringWritesLosesNothing) {
  StartReplicas(3);
  Writer writer({&replicas_[0], &replicas_[1]});
  WaitForAcknowledged(writer, 40);
  ASSERT_EQ(::kill(replicas_[2].process->pid(), SIGKILL), 0);
  replicas_[2].process->Stop();  // Reaps it.
  WaitForAcknowledged(writer, 80);
  std::string error =
      StartReplica(bundle_, dsn_, dir_ + "/replica2-again.log", &replicas_[2]);
  ASSERT_EQ(error, "") << error;
  WaitForAcknowledged(writer, 120);
  writer.Stop();
  const std::vector<int64_t> acked = writer.acknowledged();
  EXPECT_EQ(writer.failures(), 0);
  WaitForConvergence(300 + acked.size());
  for (Replica& r : replicas_) {
    for (int64_t id : acked) ASSERT_TRUE(Finds(r, id)) << "id " << id;
  }
  ExpectSameAnswers(1000);
}

TEST_F(ReplicaTest, PostgresRestartDuringWritesLosesNothingAcknowledged) {
  StartReplicas(3);
  Writer writer({&replicas_[0], &replicas_[1], &replicas_[2]});
  WaitForAcknowledged(writer, 40);
  ASSERT_TRUE(cluster_->Stop("immediate").ok());  // Like a crash.
  // Down: searches answer from memory, writes are refused clearly.
  auto up_info = Info(replicas_[0]);
  ASSERT_TRUE(up_info.ok());
  for (Replica& r : replicas_) {
    auto answers = Answers(r, static_cast<int>(up_info->dim()), 20);
    for (const auto& ids : answers) {
      ASSERT_FALSE(ids.empty());
      EXPECT_NE(ids[0], -1) << "a search failed while PostgreSQL was down";
    }
  }
  grpc::Status refused;
  EXPECT_FALSE(AddThrough(replicas_[0], 1, &refused).ok());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(refused.error_message().find("PostgreSQL catalog"),
            std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("unreachable"), std::string::npos)
      << refused.error_message();
  const absl::Time unreachable_deadline = absl::Now() + absl::Seconds(30);
  for (;;) {  // The followers notice too (GetInfo says so).
    auto down_info = Info(replicas_[1]);
    ASSERT_TRUE(down_info.ok());
    if (!down_info->catalog_reachable()) break;
    ASSERT_LT(absl::Now(), unreachable_deadline);
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(cluster_->StartAgain().ok());
  const size_t before = writer.acknowledged().size();
  WaitForAcknowledged(writer, before + 40);
  writer.Stop();
  const std::vector<int64_t> acked = writer.acknowledged();
  ASSERT_GE(acked.size(), before + 40) << "writes did not resume";
  // Unacknowledged adds may have committed (a commit whose answer was
  // lost), so the size is at least, and the ids exactly, what was acked.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (Replica& r : replicas_) {
    for (int64_t id : acked) {
      while (!Finds(r, id) && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(50));
      }
      ASSERT_TRUE(Finds(r, id)) << "id " << id << " lost";
    }
  }
  auto info = Info(replicas_[0]);
  ASSERT_TRUE(info.ok());
  WaitForConvergence(info->gallery_size());
  ExpectSameAnswers(1000);
}

}  // namespace
}  // namespace embedsearch
