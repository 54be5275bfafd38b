// Replicas on a shared PostgreSQL catalog vs one server on SQLite, measured
// side by side in one run on the same bundle (300 Fashion-MNIST images,
// Flat, untrained encoder: the catalog is what differs):
//   - acknowledged adds per second (one AddImages of one image at a time,
//     one client), SQLite server vs a PostgreSQL replica;
//   - search throughput (one client, embedding queries, k=10);
//   - replication lag with three replicas under a steady write load: a
//     writer adds through replica 0 as fast as it is acknowledged; a
//     watcher repeatedly takes the newest acknowledged id and measures how
//     long until replica 2 finds it (acknowledgement -> visible elsewhere).
// Prints one table (BENCHMARKS.md). Needs PostgreSQL (scripts/install-deps).
//
//   build/bench/replication_bench [--adds=300] [--searches=2000]
//                                 [--lag_seconds=20]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/index/pg_catalog.h"
#include "tests/client/subprocess.h"
#include "tests/postgres/pg_cluster.h"
#include "tests/server/test_bundle.h"

ABSL_FLAG(int, adds, 300, "AddImages calls per backend");
ABSL_FLAG(int, searches, 2000, "Search calls per backend");
ABSL_FLAG(int, lag_seconds, 20, "Length of the replication-lag run");
ABSL_FLAG(int, poll_ms, 500, "The replicas' --catalog_poll_ms");
ABSL_FLAG(int, catchup_items, 100000,
          "Items added to the catalog before a fourth replica starts (its "
          "start-up time and memory are measured); 0 skips it");

namespace embedsearch {
namespace {

const std::string kServer =
    std::string(EMBEDSEARCH_BINARY_DIR) + "/server/embedsearch-server";
const std::string kCatalogTool =
    std::string(EMBEDSEARCH_BINARY_DIR) + "/server/embedsearch-catalog";

struct Server {
  ChildProcess process;
  std::unique_ptr<v1::ImageSearch::Stub> stub;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Start(Server& s, std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), kServer);
  args.push_back("--address=127.0.0.1:0");
  if (!s.process.Start(args, log)) return false;
  const std::regex port_re("event=listening.*port=([0-9]+)");
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline && s.process.Running()) {
    std::smatch m;
    const std::string text = ReadAll(log);
    if (std::regex_search(text, m, port_re)) {
      s.stub = testing::MakeStub(std::stoi(m[1]));
      v1::GetInfoResponse info;
      while (absl::Now() < deadline) {
        if (s.stub->GetInfo(testing::MakeContext().get(), {}, &info).ok() &&
            !info.model_version().empty()) {
          return true;
        }
        absl::SleepFor(absl::Milliseconds(50));
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::fprintf(stderr, "server did not start: %s\n", ReadAll(log).c_str());
  return false;
}

int64_t Add(Server& s, size_t i) {
  v1::AddImagesRequest request;
  v1::NewImage* image = request.add_images();
  image->set_image(testing::GalleryPng(i % 300));
  image->set_label_name("Trouser");
  v1::AddImagesResponse response;
  if (!s.stub->AddImages(testing::MakeContext().get(), request, &response)
           .ok()) {
    return -1;
  }
  return response.ids(0);
}

double AddsPerSecond(Server& s, int n) {
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    if (Add(s, static_cast<size_t>(i)) < 0)
      std::fprintf(stderr, "add failed\n");
  }
  return n / absl::ToDoubleSeconds(absl::Now() - start);
}

double SearchesPerSecond(Server& s, int n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  const absl::Time start = absl::Now();
  for (int q = 0; q < n; ++q) {
    v1::SearchRequest request;
    request.set_k(10);
    for (int d = 0; d < 64; ++d)
      request.mutable_embedding()->add_values(g(rng));
    v1::SearchResponse response;
    if (!s.stub->Search(testing::MakeContext().get(), request, &response)
             .ok()) {
      std::fprintf(stderr, "search failed\n");
    }
  }
  return n / absl::ToDoubleSeconds(absl::Now() - start);
}

bool Finds(Server& s, int64_t id) { return testing::FindsById(*s.stub, id); }

// Writer through `source`, watcher on `target`: ack -> visible, in ms.
std::vector<double> Lags(Server& source, Server& target,
                         absl::Duration length) {
  std::mutex mu;
  std::deque<std::pair<int64_t, absl::Time>> acked;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (size_t i = 0; !stop; ++i) {
      const int64_t id = Add(source, i);
      const absl::Time at = absl::Now();
      if (id < 0) continue;
      std::unique_lock lock(mu);
      acked.emplace_back(id, at);
    }
  });
  std::vector<double> lags;
  const absl::Time end = absl::Now() + length;
  while (absl::Now() < end) {
    std::pair<int64_t, absl::Time> next{0, absl::Time()};
    {
      std::unique_lock lock(mu);
      // The newest acknowledged id only: a watcher working through a
      // backlog would measure its own queue, not the replication.
      if (!acked.empty()) {
        next = acked.back();
        acked.clear();
      }
    }
    if (next.first == 0) {
      absl::SleepFor(absl::Microseconds(200));
      continue;
    }
    while (!Finds(target, next.first)) absl::SleepFor(absl::Microseconds(200));
    lags.push_back(absl::ToDoubleMilliseconds(absl::Now() - next.second));
  }
  stop = true;
  writer.join();
  return lags;
}

int64_t RssKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

// Adds `n` items with random embeddings straight into the generation.
bool Grow(const std::string& dsn, const std::string& version, int n) {
  auto catalog = PgCatalog::Open(dsn, 0, version);
  if (!catalog.ok()) return false;
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  for (int begin = 0; begin < n; begin += 1000) {
    std::vector<CatalogItem> items;
    for (int i = begin; i < std::min(n, begin + 1000); ++i) {
      CatalogItem item;
      item.label_name = "Trouser";
      item.source = absl::StrCat("bench:", i);
      item.image_png = std::string(800, 'p');  // about a 28x28 PNG
      item.embedding.resize((*catalog)->dim());
      for (float& v : item.embedding) v = g(rng);
      items.push_back(std::move(item));
    }
    if (!(*catalog)->Add(std::move(items)).ok()) return false;
  }
  return true;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

int Run() {
  std::string why;
  testing::PgCluster* cluster = testing::SharedPgCluster(&why);
  if (cluster == nullptr) {
    std::fprintf(stderr, "no PostgreSQL: %s\n", why.c_str());
    return 1;
  }
  auto dsn = cluster->CreateDatabase("bench");
  if (!dsn.ok()) return 1;
  const std::string dir = testing::MakeTempDir("es-replication-bench");
  const std::string bundle = dir + "/bundle";
  if (!testing::MakeBundle(bundle, 1).ok()) return 1;
  ProcessResult published = RunProcess(
      {kCatalogTool, "publish", "--bundle=" + bundle, "--catalog=" + *dsn});
  if (published.exit_code != 0) {
    std::fprintf(stderr, "%s", published.err.c_str());
    return 1;
  }
  const std::string sqlite_bundle = dir + "/bundle-sqlite";
  if (!testing::MakeBundle(sqlite_bundle, 1).ok()) return 1;

  Server sqlite;
  std::vector<Server> replicas(3);
  if (!Start(sqlite, {"--bundle=" + sqlite_bundle, "--threads=1"},
             dir + "/sqlite.log")) {
    return 1;
  }
  for (int i = 0; i < 3; ++i) {
    if (!Start(
            replicas[i],
            {"--bundle=" + bundle, "--catalog=" + *dsn, "--threads=1",
             absl::StrCat("--catalog_poll_ms=", absl::GetFlag(FLAGS_poll_ms))},
            absl::StrCat(dir, "/replica", i, ".log"))) {
      return 1;
    }
  }
  const int adds = absl::GetFlag(FLAGS_adds);
  const int searches = absl::GetFlag(FLAGS_searches);
  // Interleaved: SQLite, PostgreSQL, SQLite, PostgreSQL (noise shows).
  double add_sqlite[2], add_pg[2], search_sqlite[2], search_pg[2];
  for (int round = 0; round < 2; ++round) {
    add_sqlite[round] = AddsPerSecond(sqlite, adds);
    add_pg[round] = AddsPerSecond(replicas[0], adds);
    search_sqlite[round] = SearchesPerSecond(sqlite, searches);
    search_pg[round] = SearchesPerSecond(replicas[1], searches);
  }
  std::vector<double> lags =
      Lags(replicas[0], replicas[2],
           absl::Seconds(absl::GetFlag(FLAGS_lag_seconds)));
  std::printf("| measure | SQLite (1 server) | PostgreSQL (3 replicas) |\n");
  std::printf("| --- | --- | --- |\n");
  std::printf(
      "| acknowledged adds/s, 1 client (2 rounds) | %.0f, %.0f | %.0f, %.0f "
      "|\n",
      add_sqlite[0], add_sqlite[1], add_pg[0], add_pg[1]);
  std::printf(
      "| searches/s, 1 client, k=10 (2 rounds) | %.0f, %.0f | %.0f, %.0f |\n",
      search_sqlite[0], search_sqlite[1], search_pg[0], search_pg[1]);
  std::printf(
      "| replication lag ack -> visible on another replica, "
      "%zu samples under steady load | - | p50 %.1f ms, p99 %.1f ms, max %.1f "
      "ms |\n",
      lags.size(), Percentile(lags, 0.5), Percentile(lags, 0.99),
      Percentile(lags, 1.0));
  const int catchup = absl::GetFlag(FLAGS_catchup_items);
  if (catchup <= 0) return 0;
  v1::GetInfoResponse info;
  replicas[1].stub->GetInfo(testing::MakeContext().get(), {}, &info);
  const int64_t small_rss = RssKiB(replicas[1].process.pid());
  const absl::Time grow_start = absl::Now();
  if (!Grow(*dsn, info.model_version(), catchup)) return 1;
  const double grow_seconds = absl::ToDoubleSeconds(absl::Now() - grow_start);
  // The running replicas followed the bulk load through the change feed:
  // wait (at most 10 min) until replica 1 holds what the catalog holds.
  auto counter = PgCatalog::Open(*dsn, 0, info.model_version());
  if (!counter.ok() || !(*counter)->Count().ok()) return 1;
  const uint64_t grown = static_cast<uint64_t>(*(*counter)->Count());
  v1::GetInfoResponse follower;
  const absl::Time give_up = absl::Now() + absl::Minutes(10);
  while (follower.gallery_size() != grown && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
    replicas[1].stub->GetInfo(testing::MakeContext().get(), {}, &follower);
  }
  if (follower.gallery_size() != grown) {
    std::fprintf(stderr, "replica 1 holds %llu items, the catalog %llu\n",
                 static_cast<unsigned long long>(follower.gallery_size()),
                 static_cast<unsigned long long>(grown));
    return 1;
  }
  const double follow_seconds =
      absl::ToDoubleSeconds(absl::Now() - grow_start);
  Server late;
  const absl::Time start = absl::Now();
  if (!Start(late, {"--bundle=" + bundle, "--catalog=" + *dsn, "--threads=1"},
             dir + "/late.log")) {
    return 1;
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  v1::GetInfoResponse late_info;
  late.stub->GetInfo(testing::MakeContext().get(), {}, &late_info);
  std::printf(
      "| replica start (process start -> serving) with %llu items, %d of "
      "them added since the others started | - | %.2f s, RSS %lld MiB (a "
      "replica with %llu items: %lld MiB) |\n",
      static_cast<unsigned long long>(late_info.gallery_size()), catchup,
      seconds, static_cast<long long>(RssKiB(late.process.pid()) / 1024),
      static_cast<unsigned long long>(info.gallery_size()),
      static_cast<long long>(small_rss / 1024));
  std::printf(
      "| %d items committed in batches of 1000 by one writer, followed live "
      "by the running replicas | - | committed in %.1f s; replica 1 had "
      "applied all %.1f s after the first commit, RSS %lld MiB |\n",
      catchup, grow_seconds, follow_seconds,
      static_cast<long long>(RssKiB(replicas[1].process.pid()) / 1024));
  return 0;
}

}  // namespace
}  // namespace embedsearch

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return embedsearch::Run();
}
