#include "core/index/gallery.h"

#include <filesystem>

#include <fstream>

#include "gtest/gtest.h"
#include "tests/index/test_util.h"

namespace embedsearch {
namespace {

using testing_util::MakePoints;
using testing_util::Points;
using testing_util::TempDir;

constexpr int kDim = 16;
const std::vector<std::string> kNames = {"t-shirt", "trouser", "pullover",
                                         "dress", "coat"};

std::vector<CatalogItem> ItemsFrom(const Points& p) {
  std::vector<CatalogItem> items;
  for (int64_t i = 0; i < p.n(); ++i) {
    CatalogItem item;
    item.label_name = kNames[p.labels[i]];
    item.source = "synthetic:" + std::to_string(i);
    item.image_png = "img" + std::to_string(i);
    item.embedding.assign(p.x.begin() + i * kDim, p.x.begin() + (i + 1) * kDim);
    item.model_version = "enc-test";
    items.push_back(std::move(item));
  }
  return items;
}

class GalleryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    points_ = MakePoints(600, kDim, 5, 1);
    auto g = Gallery::Open(tmp_.path(), kDim, "HNSW16", "l2");
    ASSERT_TRUE(g.ok()) << g.status();
    auto ids = (*g)->Add(ItemsFrom(points_));
    ASSERT_TRUE(ids.ok()) << ids.status();
    ids_ = *ids;
    ASSERT_TRUE((*g)->SaveIndex().ok());
  }

  std::vector<std::vector<GalleryHit>> SearchAll(Gallery& g,
                                                 GallerySearchOptions o = {}) {
    auto r = g.Search(points_.x.data(), 30, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<std::vector<GalleryHit>>{};
  }

  TempDir tmp_;
  Points points_;
  std::vector<int64_t> ids_;
};

TEST_F(GalleryTest, SearchReturnsCatalogFieldsAndFindsItself) {
  auto g = *Gallery::Open(tmp_.path(), kDim, "HNSW16", "l2");
  EXPECT_TRUE(g->rebuild_reason().empty()) << g->rebuild_reason();
  EXPECT_EQ(g->size(), 600);
  EXPECT_EQ(g->label_names(), kNames);
  GallerySearchOptions o;
  o.k = 3;
  o.include_images = true;
  auto hits = SearchAll(*g, o);
  for (int q = 0; q < 30; ++q) {
    ASSERT_EQ(hits[q].size(), 3u);
    EXPECT_EQ(hits[q][0].id, ids_[q]);
    EXPECT_NEAR(hits[q][0].distance, 0.f, 1e-4f);
    EXPECT_EQ(hits[q][0].label_name, kNames[points_.labels[q]]);
    EXPECT_EQ(hits[q][0].label, points_.labels[q]);
    EXPECT_EQ(hits[q][0].source, "synthetic:" + std::to_string(q));
    EXPECT_EQ(hits[q][0].image_png, "img" + std::to_string(q));
  }
  o.include_images = false;
  EXPECT_TRUE(SearchAll(*g, o)[0][0].image_png.empty());
}

TEST_F(GalleryTest, LabelFilterUsesNamesAndRejectsUnknownOnes) {
  auto g = *Gallery::Open(tmp_.path(), kDim, "HNSW16", "l2");
  GallerySearchOptions o;
  o.label_filter = {"dress", "coat"};
  for (const auto& row : SearchAll(*g, o)) {
    ASSERT_EQ(row.size(), 10u);
    for (const GalleryHit& h : row) {
      EXPECT_TRUE(h.label_name == "dress" || h.label_name == "coat");
    }
  }
  o.label_filter = {"dress", "sandal"};
  auto bad = g->Search(points_.x.data(), 1, o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("\"sandal\""), std::string::npos);
}

TEST_F(GalleryTest, AddAndRemoveAreVisibleAndSurviveReopen) {
  std::vector<int64_t> added;
  {
    auto g = *Gallery::Open(tmp_.path(), kDim, "HNSW16", "l2");
    Points more = MakePoints(5, kDim, 5, 9);
    auto items = ItemsFrom(more);
    items[0].label_name = "sandal";  // A new label.
    added = *g->Add(items);
    EXPECT_EQ(*g->Remove({ids_[0], ids_[1], 999999}), 2);
    EXPECT_EQ(g->size(), 600 + 5 - 2);
    EXPECT_EQ(g->label_names().back(), "sandal");
    GallerySearchOptions o;
    o.k = 1;
    o.label_filter = {"sandal"};
    auto hit = *g->Search(more.x.data(), 1, o);
    ASSERT_EQ(hit[0].size(), 1u);
    EXPECT_EQ(hit[0][0].id, added[0]);
    EXPECT_EQ(g->Get(ids_[0]).status().code(), absl::StatusCode::kNotFound);
    // No SaveIndex: index.faiss on disk is now stale.
  }
  auto g = *Gallery::Open(tmp_.path(), kDim, "HNSW16", "l2");
  EXPECT_NE(g->rebuild_reason().find("stale"), std::string::npos)
      << g->rebuild_reason();
  EXPECT_EQ(g->size(), 603);
  GallerySearchOptions o;
  o.k = 1;
  for (const auto& row : SearchAll(*g, o)) {
    ASSERT_EQ(row.size(), 1u);
    EXPECT_NE(row[0].id, ids_[0]);
    EXPECT_NE(row[0].id, ids_[1]);
  }
}

TEST_F(GalleryTest, MissingOrCorruptIndexIsRebuiltFromTheCatalog) {
  auto reference = SearchAll(**Gallery::Open(tmp_.path(), kDim, "HNSW16", "l2"));
  ASSERT_EQ(::unlink((tmp_.path() + "/index.faiss").c_str()), 0);
  {
    auto g = *Gallery::Open(tmp_.path(), kDim, "HNSW16", "l2");
    EXPECT_NE(g->rebuild_reason().find("missing"), std::string::npos);
    EXPECT_EQ(g->size(), 600);
  }
  EXPECT_TRUE(std::filesystem::exists(tmp_.path() + "/index.faiss"));  // Saved again.
  std::ofstream(tmp_.path() + "/index.faiss", std::ios::binary) << "garbage";
  auto g = *Gallery::Open(tmp_.path(), kDim, "HNSW16", "l2");
  EXPECT_NE(g->rebuild_reason().find("unreadable"), std::string::npos);
  auto again = SearchAll(*g);
  // HNSW builds are deterministic for the same input order.
  ASSERT_EQ(again.size(), reference.size());
  for (size_t q = 0; q < again.size(); ++q) {
    ASSERT_EQ(again[q].size(), reference[q].size());
    for (size_t j = 0; j < again[q].size(); ++j) {
      EXPECT_EQ(again[q][j].id, reference[q][j].id);
    }
  }
}

TEST_F(GalleryTest, AnotherSpecOrMetricRebuildsTheIndex) {
  auto g = *Gallery::Open(tmp_.path(), kDim, "IVF8,Flat", "ip");
  EXPECT_NE(g->rebuild_reason().find("HNSW16"), std::string::npos)
      << g->rebuild_reason();
  EXPECT_EQ(g->index_spec(), "IVF8,Flat");
  GallerySearchOptions o;
  o.k = 1;
  o.nprobe = 8;
  auto hits = SearchAll(*g, o);
  EXPECT_EQ(hits[0][0].id, ids_[0]);
  EXPECT_NEAR(hits[0][0].distance, -1.f, 1e-4f);  // -<x, x> for unit x.
  EXPECT_EQ(Gallery::Open(tmp_.path(), kDim + 1, "Flat", "l2").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Gallery, AnEmptyGalleryGrowsOnline) {
  TempDir tmp;
  auto g = *Gallery::Open(tmp.path() + "/new", kDim, "HNSW16", "l2");
  EXPECT_EQ(g->size(), 0);
  Points p = MakePoints(3, kDim, 5, 4);
  EXPECT_TRUE((*g->Search(p.x.data(), 1, {}))[0].empty());
  auto ids = *g->Add(ItemsFrom(p));
  auto hits = *g->Search(p.x.data() + kDim, 1, {});
  ASSERT_EQ(hits[0].size(), 3u);
  EXPECT_EQ(hits[0][0].id, ids[1]);
}

}  // namespace
}  // namespace embedsearch
