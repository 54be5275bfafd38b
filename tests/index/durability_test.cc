// kill -9 at any point: a child adds items one by one and acknowledges each
// on a pipe after Add returns; the parent SIGKILLs it mid-stream, reopens
// and checks that exactly the acknowledged items are there (plus possibly
// the one in flight), with their content, and that the index matches.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "core/index/gallery.h"
#include "gtest/gtest.h"
#include "tests/index/test_util.h"

namespace embedsearch {
namespace {

using testing_util::MakeItem;
using testing_util::TempDir;

constexpr int kDim = 8;

// Runs the child until it has acknowledged `kill_after` items (then waits
// `extra_us` more), SIGKILLs it and returns every acknowledgement it wrote.
std::map<long, int64_t> RunAndKill(const std::string& dir,
                                   const std::string& spec, long start,
                                   int kill_after, int extra_us) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::string s = std::to_string(start);
    ::execl(DURABILITY_CHILD, DURABILITY_CHILD, dir.c_str(), spec.c_str(),
            s.c_str(), "100000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::map<long, int64_t> acks;
  std::string buf;
  char chunk[256];
  bool killed = false;
  for (;;) {
    ssize_t n = ::read(fds[0], chunk, sizeof(chunk));
    if (n <= 0) break;
    buf.append(chunk, n);
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::istringstream line(buf.substr(0, nl));
      buf.erase(0, nl + 1);
      long i;
      int64_t id;
      line >> i >> id;
      acks[i] = id;
    }
    if (!killed && static_cast<int>(acks.size()) >= kill_after) {
      if (extra_us > 0) ::usleep(extra_us);
      ::kill(pid, SIGKILL);
      killed = true;  // Keep reading: acks already in the pipe count.
    }
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "child exited on its own, status " << status;
  return acks;
}

void KillRepeatedly(const std::string& spec) {
  TempDir tmp;
  std::mt19937 rng(7);
  std::map<long, int64_t> acked;  // Everything acknowledged so far.
  long next = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(round);
    int kill_after = 1 + static_cast<int>(rng() % 25);
    int extra_us = static_cast<int>(rng() % 3000);
    std::map<long, int64_t> acks =
        RunAndKill(tmp.path(), spec, next, kill_after, extra_us);
    ASSERT_GE(static_cast<int>(acks.size()), kill_after);
    acked.insert(acks.begin(), acks.end());
    long last = acks.rbegin()->first;

    auto gallery = Gallery::Open(tmp.path(), kDim, spec, "l2");
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    auto ids = Catalog::OpenReadOnly(tmp.path() + "/catalog.db");
    ASSERT_TRUE(ids.ok()) << ids.status();
    std::set<long> present;
    std::map<long, int64_t> id_of;
    ASSERT_TRUE((*ids)
                    ->ForEach(
                        [&](const CatalogItem& item) {
                          long i = std::stol(item.source.substr(5));
                          present.insert(i);
                          id_of[i] = item.id;
                          CatalogItem want = MakeItem(i, kDim);
                          EXPECT_EQ(item.embedding, want.embedding) << i;
                          EXPECT_EQ(item.label_name, want.label_name) << i;
                        },
                        /*with_image=*/false)
                    .ok());
    // Every acknowledged item, with the id it was acknowledged with...
    for (const auto& [i, id] : acked) {
      ASSERT_TRUE(present.count(i)) << "acknowledged item " << i << " lost";
      EXPECT_EQ(id_of[i], id);
      auto full = (*gallery)->Get(id);
      ASSERT_TRUE(full.ok());
      EXPECT_EQ(full->image_png, MakeItem(i, kDim).image_png);
    }
    // ...and at most the one that was in flight.
    for (long i : present) {
      if (!acked.count(i)) {
        EXPECT_EQ(i, last + 1) << "unacknowledged item " << i << " present";
        acked[i] = id_of[i];  // Committed: later rounds must keep it.
      }
    }
    EXPECT_EQ((*gallery)->size(), static_cast<int64_t>(present.size()));
    // The index agrees with the catalog: each item finds itself.
    GallerySearchOptions o;
    o.k = 1;
    CatalogItem probe = MakeItem(last, kDim);
    auto hit = (*gallery)->Search(probe.embedding.data(), 1, o);
    ASSERT_TRUE(hit.ok());
    ASSERT_EQ((*hit)[0].size(), 1u);
    EXPECT_EQ((*hit)[0][0].id, acked[last]);
    next = acked.rbegin()->first + 1;
  }
}

TEST(IndexDurability, KillNineKeepsExactlyTheAcknowledgedItemsFlat) {
  KillRepeatedly("Flat");
}

TEST(IndexDurability, KillNineKeepsExactlyTheAcknowledgedItemsHnsw) {
  KillRepeatedly("HNSW16");
}

}  // namespace
}  // namespace embedsearch
