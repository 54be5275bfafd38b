#include "core/index/catalog.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/index/pg_catalog.h"
#include "gtest/gtest.h"
#include "tests/index/test_util.h"
#include "tests/postgres/pg_cluster.h"

namespace embedsearch {
namespace {

using testing_util::MakeItem;
using testing_util::TempDir;

constexpr int kDim = 8;

// The CatalogStore contract, run against both backends: SQLite (a file in
// a temp dir) and PostgreSQL (a fresh database per test in this process's
// throw-away cluster; see tests/postgres/pg_cluster.h).
enum class Backend { kSqlite, kPostgres };

class CatalogStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() != Backend::kPostgres) return;
    auto dsn = testing::NewPgDatabase("catalog");
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
  }

  // Opens (or reopens) this test's catalog.
  absl::StatusOr<std::unique_ptr<CatalogStore>> Open(int dim) {
    if (GetParam() == Backend::kPostgres) {
      auto pg = PgCatalog::Open(dsn_, dim);
      if (!pg.ok()) return pg.status();
      return std::unique_ptr<CatalogStore>(*std::move(pg));
    }
    auto sqlite = Catalog::Open(tmp_.file("c.db"), dim);
    if (!sqlite.ok()) return sqlite.status();
    return std::unique_ptr<CatalogStore>(*std::move(sqlite));
  }

  TempDir tmp_;
  std::string dsn_;
};

INSTANTIATE_TEST_SUITE_P(Backends, CatalogStoreTest,
                         ::testing::Values(Backend::kSqlite,
                                           Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite"
                                                                 : "Postgres";
                         });

TEST_P(CatalogStoreTest, AddsAndReadsBackEveryField) {
  auto catalog = Open(kDim);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  std::vector<CatalogItem> items = {MakeItem(0, kDim), MakeItem(1, kDim)};
  auto ids = (*catalog)->Add(items);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->size(), 2u);
  EXPECT_LT((*ids)[0], (*ids)[1]);
  auto got = (*catalog)->Get((*ids)[1]);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, (*ids)[1]);
  EXPECT_EQ(got->label_name, items[1].label_name);
  EXPECT_EQ(got->source, items[1].source);
  EXPECT_EQ(got->image_png, items[1].image_png);
  EXPECT_EQ(got->embedding, items[1].embedding);
  EXPECT_EQ(got->model_version, "enc-test");
  auto no_image = (*catalog)->Get((*ids)[1], /*with_image=*/false);
  ASSERT_TRUE(no_image.ok());
  EXPECT_TRUE(no_image->image_png.empty());
  EXPECT_EQ(*(*catalog)->Count(), 2);
}

TEST_P(CatalogStoreTest, NewLabelNamesGetTheNextLabel) {
  auto catalog = *Open(kDim);
  CatalogItem a = MakeItem(0, kDim), b = MakeItem(1, kDim),
              c = MakeItem(2, kDim);
  a.label_name = "shirt";
  b.label_name = "boot";
  c.label_name = "shirt";
  a.label = 99;  // Ignored when a name is given.
  ASSERT_TRUE(catalog->Add({a, b, c}).ok());
  EXPECT_EQ(*catalog->LabelNames(), (std::vector<std::string>{"shirt", "boot"}));
  // An empty name takes the name of an existing label...
  CatalogItem d = MakeItem(3, kDim);
  d.label_name = "";
  d.label = 1;
  auto ids = catalog->Add({d});
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(catalog->Get((*ids)[0])->label_name, "boot");
  // ...and an unnamed unknown label is refused.
  d.label = 7;
  auto bad = catalog->Add({d});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("label 7"), std::string::npos);
}

TEST_P(CatalogStoreTest, DefineLabelsFixesNumbersAndRefusesConflicts) {
  auto catalog = *Open(kDim);
  ASSERT_TRUE(catalog->DefineLabels({"a", "b", "c"}).ok());
  ASSERT_TRUE(catalog->DefineLabels({"a", "b"}).ok());  // Same names: fine.
  EXPECT_EQ(catalog->DefineLabels({"a", "x"}).code(),
            absl::StatusCode::kInvalidArgument);
  CatalogItem item = MakeItem(0, kDim);
  item.label_name = "c";
  auto ids = *catalog->Add({item});
  EXPECT_EQ(catalog->Get(ids[0])->label, 2);
}

TEST_P(CatalogStoreTest, ABatchWithABadItemAddsNothing) {
  auto catalog = *Open(kDim);
  CatalogItem good = MakeItem(0, kDim);
  good.id = 5;
  ASSERT_TRUE(catalog->Add({good}).ok());
  CatalogItem fresh = MakeItem(1, kDim);
  CatalogItem dup = MakeItem(2, kDim);
  dup.id = 5;
  auto result = catalog->Add({fresh, dup});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*catalog->Count(), 1);  // `fresh` was rolled back too.
  CatalogItem short_vec = MakeItem(3, kDim);
  short_vec.embedding.pop_back();
  EXPECT_EQ(catalog->Add({short_vec}).status().code(),
            absl::StatusCode::kInvalidArgument);
  CatalogItem nan = MakeItem(4, kDim);
  nan.embedding[0] = std::nanf("");
  EXPECT_EQ(catalog->Add({nan}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*catalog->Count(), 1);
}

// GetMany reads all rows in one read transaction; it must end it, or the
// next write (BEGIN IMMEDIATE) on the connection would fail.
TEST_P(CatalogStoreTest, GetManyReadsInOrderAndLeavesTheConnectionWritable) {
  auto catalog = *Open(kDim);
  auto ids = *catalog->Add({MakeItem(0, kDim), MakeItem(1, kDim), MakeItem(2, kDim)});
  for (int round = 0; round < 2; ++round) {
    auto got = catalog->GetMany({ids[2], 12345, ids[0]}, /*with_image=*/true);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), 3u);
    EXPECT_EQ((*got)[0].id, ids[2]);
    EXPECT_EQ((*got)[0].source, MakeItem(2, kDim).source);
    EXPECT_FALSE((*got)[0].image_png.empty());
    EXPECT_EQ((*got)[1].id, 0) << "an unknown id gives an empty item";
    EXPECT_EQ((*got)[2].id, ids[0]);
    // Writes after a read see and change the same data.
    auto added = catalog->Add({MakeItem(3 + round, kDim)});
    ASSERT_TRUE(added.ok()) << added.status();
    ASSERT_TRUE(catalog->Remove({ids[0]}).ok());
    auto after = catalog->GetMany({ids[0], (*added)[0]}, /*with_image=*/false);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_EQ((*after)[0].id, 0);
    EXPECT_EQ((*after)[1].id, (*added)[0]);
    EXPECT_TRUE((*after)[1].image_png.empty());
    ids[0] = (*added)[0];
  }
}

TEST_P(CatalogStoreTest, RemovedIdsAreNeverReused) {
  auto catalog = *Open(kDim);
  auto ids = *catalog->Add({MakeItem(0, kDim), MakeItem(1, kDim)});
  EXPECT_EQ(*catalog->Remove({ids[1], 12345}), 1);
  EXPECT_EQ(catalog->Get(ids[1]).status().code(), absl::StatusCode::kNotFound);
  auto again = *catalog->Add({MakeItem(2, kDim)});
  EXPECT_GT(again[0], ids[1]);
  EXPECT_EQ(*catalog->Ids(), (std::vector<int64_t>{ids[0], again[0]}));
}

TEST_P(CatalogStoreTest, ReopenKeepsDataAndChecksDim) {
  std::vector<int64_t> ids;
  {
    auto catalog = *Open(kDim);
    ids = *catalog->Add({MakeItem(0, kDim), MakeItem(1, kDim)});
  }
  auto reopened = Open(kDim);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(*(*reopened)->Ids(), ids);
  auto wrong = Open(kDim + 1);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("8-d"), std::string::npos);
}

TEST_P(CatalogStoreTest, ForEachVisitsInIdOrderWithEmbeddings) {
  auto catalog = *Open(kDim);
  std::vector<CatalogItem> items;
  for (int i = 0; i < 20; ++i) items.push_back(MakeItem(i, kDim));
  auto ids = *catalog->Add(items);
  std::vector<int64_t> seen;
  ASSERT_TRUE(catalog
                  ->ForEach([&](const CatalogItem& item) {
                    EXPECT_EQ(item.embedding, items[seen.size()].embedding);
                    seen.push_back(item.id);
                  })
                  .ok());
  EXPECT_EQ(seen, ids);
}

TEST(Catalog, ReadOnlyOpenReadsButNeverWrites) {
  TempDir tmp;
  {
    auto catalog = *Catalog::Open(tmp.file("c.db"), kDim);
    ASSERT_TRUE(catalog->Add({MakeItem(0, kDim)}).ok());
  }
  auto ro = Catalog::OpenReadOnly(tmp.file("c.db"));
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_EQ((*ro)->dim(), kDim);
  EXPECT_EQ(*(*ro)->Count(), 1);
  EXPECT_TRUE((*ro)->CheckIntegrity().ok());
  EXPECT_FALSE((*ro)->Add({MakeItem(1, kDim)}).ok());
  EXPECT_FALSE(Catalog::OpenReadOnly(tmp.file("missing.db")).ok());
}

TEST(Catalog, ForeignFilesAreRefused) {
  TempDir tmp;
  {
    std::ofstream f(tmp.file("junk.db"));
    f << std::string(4096, 'x');
  }
  auto junk = Catalog::Open(tmp.file("junk.db"), kDim);
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kDataLoss)
      << junk.status();
  auto junk_ro = Catalog::OpenReadOnly(tmp.file("junk.db"));
  EXPECT_FALSE(junk_ro.ok());
}

TEST(Catalog, TruncatedFileFailsIntegrityOrOpen) {
  TempDir tmp;
  {
    auto catalog = *Catalog::Open(tmp.file("c.db"), kDim);
    std::vector<CatalogItem> items;
    for (int i = 0; i < 300; ++i) {
      items.push_back(MakeItem(i, kDim));
      items.back().image_png = std::string(2000, 'p');
    }
    ASSERT_TRUE(catalog->Add(items).ok());
  }
  ASSERT_EQ(::truncate(tmp.file("c.db").c_str(), 64 * 1024), 0);
  auto ro = Catalog::OpenReadOnly(tmp.file("c.db"));
  if (ro.ok()) {
    absl::Status integrity = (*ro)->CheckIntegrity();
    EXPECT_EQ(integrity.code(), absl::StatusCode::kDataLoss) << integrity;
  } else {
    EXPECT_EQ(ro.status().code(), absl::StatusCode::kDataLoss) << ro.status();
  }
}

}  // namespace
}  // namespace embedsearch
