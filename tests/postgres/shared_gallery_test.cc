// Gallery::OpenShared in-process: two galleries (as two replicas would) on
// one PostgreSQL catalog, each with its follower thread. Also run under
// ThreadSanitizer (label tsan): writers, searchers and the followers at once.
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/index/gallery.h"
#include "core/index/pg_catalog.h"
#include "gtest/gtest.h"
#include "tests/index/test_util.h"
#include "tests/postgres/pg_cluster.h"

namespace embedsearch {
namespace {

using testing_util::MakePoints;
using testing_util::Points;

constexpr int kDim = 16;

std::vector<CatalogItem> ItemsFrom(const Points& p, int64_t begin,
                                   int64_t end) {
  std::vector<CatalogItem> items;
  for (int64_t i = begin; i < end; ++i) {
    CatalogItem item;
    item.label_name = absl::StrCat("label-", p.labels[i]);
    item.source = absl::StrCat("synthetic:", i);
    item.image_png = "png";
    item.embedding.assign(p.x.begin() + i * kDim, p.x.begin() + (i + 1) * kDim);
    item.model_version = "enc-test";
    items.push_back(std::move(item));
  }
  return items;
}

class SharedGalleryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dsn = testing::NewPgDatabase("shared");
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    points_ = MakePoints(400, kDim, 4, 1);
    auto seed = PgCatalog::Open(dsn_, kDim);
    ASSERT_TRUE(seed.ok()) << seed.status();
    ASSERT_TRUE((*seed)->SetModelVersion("enc-test").ok());
    ASSERT_TRUE((*seed)->Add(ItemsFrom(points_, 0, 100)).ok());
  }

  std::unique_ptr<Gallery> OpenReplica() {
    auto catalog = PgCatalog::Open(dsn_, kDim);
    EXPECT_TRUE(catalog.ok()) << catalog.status();
    ReplicationOptions options;
    options.poll_interval = absl::Milliseconds(100);
    auto gallery =
        Gallery::OpenShared(*std::move(catalog), "Flat", "l2", {}, options);
    EXPECT_TRUE(gallery.ok()) << gallery.status();
    return gallery.ok() ? *std::move(gallery) : nullptr;
  }

  // Waits until `g` holds `size` items (the follower's work), up to 30 s.
  static bool WaitForSize(const Gallery& g, int64_t size) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (g.size() != size && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return g.size() == size;
  }

  std::string dsn_;
  Points points_;
};

TEST_F(SharedGalleryTest, WritesThroughOneAreSearchableInTheOther) {
  auto a = OpenReplica();
  auto b = OpenReplica();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 100);
  auto ids = a->Add(ItemsFrom(points_, 100, 150));
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(a->size(), 150) << "the writer answers with its write at once";
  ASSERT_TRUE(WaitForSize(*b, 150));
  GallerySearchOptions options;
  options.k = 1;
  auto hits = b->Search(points_.x.data() + 120 * kDim, 1, options);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ((*hits)[0].size(), 1u);
  EXPECT_EQ((*hits)[0][0].id, (*ids)[20]);
  EXPECT_EQ((*hits)[0][0].source, "synthetic:120");
  EXPECT_EQ((*hits)[0][0].label_name,
            absl::StrCat("label-", points_.labels[120]));
  ASSERT_TRUE(b->Remove({(*ids)[20]}).ok());
  ASSERT_TRUE(WaitForSize(*a, 149));
  EXPECT_GT(a->replication().applied_sequence, 0);
  EXPECT_TRUE(a->replication().catalog_reachable);
}

TEST_F(SharedGalleryTest, ConcurrentWritersSearchersAndFollowersConverge) {
  auto a = OpenReplica();
  auto b = OpenReplica();
  ASSERT_TRUE(a && b);
  std::atomic<bool> stop{false};
  std::atomic<int> search_errors{0};
  std::vector<std::thread> searchers;
  for (Gallery* g : {a.get(), b.get()}) {
    searchers.emplace_back([&, g] {
      GallerySearchOptions options;
      options.k = 5;
      while (!stop) {
        if (!g->Search(points_.x.data(), 4, options).ok()) ++search_errors;
      }
    });
  }
  std::thread writer_a([&] {
    for (int64_t i = 100; i < 250; i += 10) {
      ASSERT_TRUE(a->Add(ItemsFrom(points_, i, i + 10)).ok());
    }
  });
  std::thread writer_b([&] {
    for (int64_t i = 250; i < 400; i += 10) {
      ASSERT_TRUE(b->Add(ItemsFrom(points_, i, i + 10)).ok());
    }
  });
  writer_a.join();
  writer_b.join();
  EXPECT_TRUE(WaitForSize(*a, 400));
  EXPECT_TRUE(WaitForSize(*b, 400));
  stop = true;
  for (std::thread& t : searchers) t.join();
  EXPECT_EQ(search_errors, 0);
  EXPECT_EQ(a->label_names(), b->label_names());
}

}  // namespace
}  // namespace embedsearch
