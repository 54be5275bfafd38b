// What only the PostgreSQL catalog does (the shared contract is in
// tests/index/catalog_test.cc): schema versions, model versions, the change
// feed, connection descriptions without passwords.
#include "core/index/pg_catalog.h"

#include <libpq-fe.h>

#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/index/test_util.h"
#include "tests/postgres/pg_cluster.h"

namespace embedsearch {
namespace {

using testing_util::MakeItem;

constexpr int kDim = 8;

class PgCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dsn = testing::NewPgDatabase("pg");
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
  }

  // Runs one statement on the test database outside the catalog.
  void Sql(const std::string& sql) {
    PGconn* conn = PQconnectdb(dsn_.c_str());
    PGresult* r = PQexec(conn, sql.c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(conn);
  }

  std::string dsn_;
};

TEST_F(PgCatalogTest, NewerSchemaIsRefusedNamingBothVersions) {
  ASSERT_TRUE(PgCatalog::Open(dsn_, kDim).ok());
  Sql(absl::StrCat("UPDATE embedsearch_schema SET version = ",
                   kPgSchemaVersion + 1));
  auto refused = PgCatalog::Open(dsn_, kDim);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find(
                absl::StrCat("schema version ", kPgSchemaVersion + 1)),
            std::string::npos)
      << refused.status();
  EXPECT_NE(
      refused.status().message().find(absl::StrCat("up to ", kPgSchemaVersion)),
      std::string::npos)
      << refused.status();
}

TEST_F(PgCatalogTest, ItemsOfAnotherModelVersionAreRefused) {
  auto catalog = *PgCatalog::Open(dsn_, kDim);
  ASSERT_TRUE(catalog->SetModelVersion("enc-test").ok());
  ASSERT_TRUE(catalog->Add({MakeItem(0, kDim)}).ok());  // "enc-test"
  CatalogItem other = MakeItem(1, kDim);
  other.model_version = "enc-other";
  auto refused = catalog->Add({other});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("enc-test"), std::string::npos);
  EXPECT_NE(refused.status().message().find("enc-other"), std::string::npos);
  // A catalog with items keeps its version.
  EXPECT_EQ(catalog->SetModelVersion("enc-other").code(),
            absl::StatusCode::kFailedPrecondition);
  auto reopened = *PgCatalog::Open(dsn_, 0);  // dim 0: the stored one
  EXPECT_EQ(reopened->model_version(), "enc-test");
  EXPECT_EQ(reopened->dim(), kDim);
}

TEST_F(PgCatalogTest, ChangeFeedReplaysAddsAndRemovesInCommitOrder) {
  auto writer = *PgCatalog::Open(dsn_, kDim);
  auto reader = *PgCatalog::Open(dsn_, kDim);
  std::vector<int64_t> seen;
  auto start = reader->Snapshot(
      [&](const CatalogItem& item) { seen.push_back(item.id); });
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(*start, 0);
  EXPECT_TRUE(seen.empty());
  auto ids = *writer->Add({MakeItem(0, kDim), MakeItem(1, kDim)});
  ASSERT_EQ(*writer->Remove({ids[0]}), 1);
  auto more = *writer->Add({MakeItem(2, kDim)});
  auto changes = reader->ChangesAfter(*start, 100);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 4u);
  for (size_t i = 0; i < changes->size(); ++i) {
    EXPECT_EQ((*changes)[i].sequence, static_cast<int64_t>(i + 1));
  }
  // ids[0] was removed again: its add carries no item any more.
  EXPECT_EQ((*changes)[0].id, ids[0]);
  EXPECT_EQ((*changes)[0].item.id, 0);
  EXPECT_EQ((*changes)[1].item.id, ids[1]);
  EXPECT_EQ((*changes)[1].item.embedding, MakeItem(1, kDim).embedding);
  EXPECT_TRUE((*changes)[2].removed);
  EXPECT_EQ((*changes)[2].id, ids[0]);
  EXPECT_EQ((*changes)[3].item.id, more[0]);
  EXPECT_EQ(*reader->LatestSequence(), 4);
  EXPECT_TRUE(reader->ChangesAfter(4, 100)->empty());
  // After the snapshot, GetMany answers from memory what the feed brought.
  auto many = reader->GetMany({ids[0], ids[1], more[0]}, /*with_image=*/false);
  ASSERT_TRUE(many.ok());
  EXPECT_EQ((*many)[0].id, 0);
  EXPECT_EQ((*many)[1].source, MakeItem(1, kDim).source);
  EXPECT_EQ((*many)[2].label_name, MakeItem(2, kDim).label_name);
}

TEST_F(PgCatalogTest, ConcurrentWritersGetDistinctIdsAndOneLabelPerName) {
  std::vector<std::unique_ptr<PgCatalog>> writers;
  for (int i = 0; i < 4; ++i) writers.push_back(*PgCatalog::Open(dsn_, kDim));
  std::vector<std::vector<int64_t>> ids(writers.size());
  std::vector<std::thread> threads;
  for (size_t w = 0; w < writers.size(); ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 25; ++i) {
        CatalogItem item = MakeItem(i, kDim);
        item.label_name = absl::StrCat("name-", i % 5);
        auto added = writers[w]->Add({item});
        ASSERT_TRUE(added.ok()) << added.status();
        ids[w].push_back((*added)[0]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<int64_t> distinct;
  for (const auto& v : ids) distinct.insert(v.begin(), v.end());
  EXPECT_EQ(distinct.size(), 100u);
  auto names = *writers[0]->LabelNames();
  EXPECT_EQ(names.size(), 5u);  // Five names, five labels, no gaps.
  auto changes = *writers[0]->ChangesAfter(0, 1000);
  ASSERT_EQ(changes.size(), 100u);
  EXPECT_EQ(changes.back().sequence, 100);
}

TEST_F(PgCatalogTest, WaitForChangesWakesOnACommit) {
  auto writer = *PgCatalog::Open(dsn_, kDim);
  auto follower = *PgCatalog::Open(dsn_, kDim);
  follower->WaitForChanges(absl::Milliseconds(10));  // LISTEN now.
  std::thread add([&] {
    absl::SleepFor(absl::Milliseconds(200));
    ASSERT_TRUE(writer->Add({MakeItem(0, kDim)}).ok());
  });
  follower->WaitForChanges(absl::Seconds(60));  // Returns on the NOTIFY.
  add.join();
  EXPECT_EQ(*follower->LatestSequence(), 1);
}

TEST(PgDsn, DescriptionsNeverContainThePassword) {
  auto uri =
      DescribePostgresDsn("postgresql://app:hunter2@db.internal:6432/gallery");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->find("hunter2"), std::string::npos);
  EXPECT_NE(uri->find("host=db.internal"), std::string::npos) << *uri;
  EXPECT_NE(uri->find("dbname=gallery"), std::string::npos) << *uri;
  auto kv = DescribePostgresDsn("host=h password=hunter2 dbname=g");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->find("hunter2"), std::string::npos);
  auto bad = DescribePostgresDsn("postgresql://app:hunter2@h/g?bogus=1");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("hunter2"), std::string::npos);
  EXPECT_TRUE(IsPostgresDsn("postgresql://h/g"));
  EXPECT_TRUE(IsPostgresDsn("host=h dbname=g"));
  EXPECT_FALSE(IsPostgresDsn("/var/lib/catalog.db"));
}

}  // namespace
}  // namespace embedsearch
