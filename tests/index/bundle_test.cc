#include "core/index/bundle.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <cstdio>
#include <fstream>
#include <random>

#include "core/data/preprocess.h"
#include "core/index/sha256.h"
#include "core/util/file.h"
#include "gtest/gtest.h"
#include "tests/index/test_util.h"

namespace embedsearch {
namespace {

using testing_util::TempDir;

// A small random gallery (3 labels) and a tiny encoder.
Dataset MakeDataset(int n, uint32_t seed) {
  Dataset d;
  d.height = 28;
  d.width = 28;
  d.label_names = {"alpha", "beta", "gamma"};
  std::mt19937 rng(seed);
  for (int i = 0; i < n; ++i) {
    int label = i % 3;
    for (int p = 0; p < 28 * 28; ++p) {
      // Brighter images for higher labels, so embeddings differ by label.
      d.pixels.push_back(static_cast<uint8_t>(
          std::min<int>(255, static_cast<int>(rng() % 80) + 80 * label)));
    }
    d.labels.push_back(label);
    d.sources.push_back("test:" + std::to_string(i));
  }
  return d;
}

std::unique_ptr<Encoder> MakeEncoder(uint64_t seed) {
  EncoderConfig config;
  config.conv_channels = {4};
  config.hidden = 16;
  config.embedding_dim = 8;
  auto e = Encoder::Create(config, seed);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

std::vector<float> Embed(const Encoder& encoder, const Dataset& d) {
  std::vector<float> input(d.size() * 28 * 28);
  for (size_t i = 0; i < d.size(); ++i) {
    NormalizePixels(d.image(i), 28 * 28, encoder.config().preprocessing,
                    input.data() + i * 28 * 28);
  }
  std::vector<float> out(d.size() * encoder.dim());
  encoder.Encode(input.data(), static_cast<int>(d.size()), out.data());
  return out;
}

std::string Slurp(const std::string& path) { return *ReadFile(path); }
void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dataset_ = MakeDataset(90, 1);
    encoder_ = MakeEncoder(7);
    embeddings_ = Embed(*encoder_, dataset_);
    dir_ = tmp_.file("bundle");
    options_.index_spec = "Flat";
    options_.trainer_command = "bundle_test";
    ASSERT_TRUE(
        WriteBundle(dir_, *encoder_, dataset_, embeddings_.data(), options_)
            .ok());
  }

  // Top-3 ids for the first 10 gallery embeddings.
  std::vector<std::vector<int64_t>> TopIds(const Bundle& b) {
    GallerySearchOptions o;
    o.k = 3;
    auto r = b.gallery().Search(embeddings_.data(), 10, o);
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<std::vector<int64_t>> ids;
    for (const auto& row : *r) {
      ids.emplace_back();
      for (const auto& h : row) ids.back().push_back(h.id);
    }
    return ids;
  }

  std::string Expect(absl::StatusCode code) {
    auto b = Bundle::Load(dir_);
    EXPECT_EQ(b.status().code(), code) << b.status();
    return std::string(b.status().message());
  }

  TempDir tmp_;
  Dataset dataset_;
  std::unique_ptr<Encoder> encoder_;
  std::vector<float> embeddings_;
  std::string dir_;
  BundleWriteOptions options_;
};

TEST_F(BundleTest, WriteThenLoadGivesTheSameModelAndSearchResults) {
  auto b = Bundle::Load(dir_);
  ASSERT_TRUE(b.ok()) << b.status();
  const auto& m = (*b)->manifest();
  EXPECT_EQ(m.format_version(), static_cast<uint32_t>(kBundleFormatVersion));
  EXPECT_EQ(m.model_version(), encoder_->model_version());
  EXPECT_EQ(m.dim(), 8u);
  EXPECT_EQ(m.item_count(), 90u);
  EXPECT_EQ(m.index_spec(), "Flat");
  EXPECT_EQ(m.trainer_command(), "bundle_test");
  EXPECT_TRUE((*b)->gallery().rebuild_reason().empty());
  EXPECT_EQ((*b)->encoder().model_version(), encoder_->model_version());
  EXPECT_EQ((*b)->gallery().size(), 90);
  EXPECT_EQ((*b)->gallery().label_names(), dataset_.label_names);
  // The loaded encoder computes the same embeddings.
  EXPECT_EQ(Embed((*b)->encoder(), dataset_), embeddings_);
  // Exact search finds each gallery item itself first, with its fields.
  auto ids = TopIds(**b);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ids[i][0], i + 1);
  auto item = (*b)->gallery().Get(5);
  ASSERT_TRUE(item.ok());
  EXPECT_EQ(item->label, dataset_.labels[4]);
  EXPECT_EQ(item->source, "test:4");
  auto png = DecodePng(item->image_png);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png->pixels,
            std::vector<uint8_t>(dataset_.image(4), dataset_.image(4) + 784));
  std::string text = Slurp(dir_ + "/manifest.txt");
  EXPECT_NE(text.find("index_spec: \"Flat\""), std::string::npos);
}

TEST_F(BundleTest, MissingIndexIsRebuiltWithTheSameResults) {
  auto reference = TopIds(**Bundle::Load(dir_));
  ASSERT_EQ(::unlink((dir_ + "/index.faiss").c_str()), 0);
  auto b = Bundle::Load(dir_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*b)->gallery().rebuild_reason().find("missing"), std::string::npos);
  EXPECT_EQ(TopIds(**b), reference);
}

TEST_F(BundleTest, StaleIndexIsRebuilt) {
  auto reference = TopIds(**Bundle::Load(dir_));
  // index.faiss of a smaller gallery with the same encoder and spec.
  std::string other = tmp_.file("other");
  Dataset small = MakeDataset(30, 2);
  auto small_emb = Embed(*encoder_, small);
  ASSERT_TRUE(
      WriteBundle(other, *encoder_, small, small_emb.data(), options_).ok());
  Spit(dir_ + "/index.faiss", Slurp(other + "/index.faiss"));
  auto b = Bundle::Load(dir_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*b)->gallery().rebuild_reason().find("stale"), std::string::npos);
  EXPECT_EQ((*b)->gallery().size(), 90);
  EXPECT_EQ(TopIds(**b), reference);
}

TEST_F(BundleTest, CorruptModelIsRefusedNamingTheFile) {
  std::string model = Slurp(dir_ + "/model.pb");
  model[model.size() / 2] ^= 0x01;
  Spit(dir_ + "/model.pb", model);
  std::string msg = Expect(absl::StatusCode::kDataLoss);
  EXPECT_NE(msg.find("model.pb"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SHA-256"), std::string::npos) << msg;
  Spit(dir_ + "/model.pb", model.substr(0, 100));
  msg = Expect(absl::StatusCode::kDataLoss);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  ASSERT_EQ(::unlink((dir_ + "/model.pb").c_str()), 0);
  msg = Expect(absl::StatusCode::kNotFound);
  EXPECT_NE(msg.find("model.pb"), std::string::npos) << msg;
}

TEST_F(BundleTest, CorruptOrMissingManifestIsRefused) {
  Spit(dir_ + "/manifest.pb", "\xff\xff\xff garbage");
  std::string msg = Expect(absl::StatusCode::kDataLoss);
  EXPECT_NE(msg.find("manifest.pb"), std::string::npos) << msg;
  ASSERT_EQ(::unlink((dir_ + "/manifest.pb").c_str()), 0);
  msg = Expect(absl::StatusCode::kNotFound);
  EXPECT_NE(msg.find("not a bundle"), std::string::npos) << msg;
}

TEST_F(BundleTest, ManifestThatDisagreesWithTheModelIsRefused) {
  v1::BundleManifest m;
  ASSERT_TRUE(m.ParseFromString(Slurp(dir_ + "/manifest.pb")));
  v1::BundleManifest wrong_dim = m;
  wrong_dim.set_dim(16);
  Spit(dir_ + "/manifest.pb", wrong_dim.SerializeAsString());
  std::string msg = Expect(absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(msg.find("8-d"), std::string::npos) << msg;
  v1::BundleManifest future = m;
  future.set_format_version(kBundleFormatVersion + 1);
  Spit(dir_ + "/manifest.pb", future.SerializeAsString());
  msg = Expect(absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(msg.find("format version"), std::string::npos) << msg;
  v1::BundleManifest bad_spec = m;
  bad_spec.set_index_spec("NotAnIndex");
  Spit(dir_ + "/manifest.pb", bad_spec.SerializeAsString());
  msg = Expect(absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(msg.find("NotAnIndex"), std::string::npos) << msg;
  v1::BundleManifest bad_metric = m;
  bad_metric.set_metric("cosine");
  Spit(dir_ + "/manifest.pb", bad_metric.SerializeAsString());
  Expect(absl::StatusCode::kDataLoss);
  // A model from another training run (checksum updated to match).
  auto other = MakeEncoder(99);
  ASSERT_TRUE(other->Save(dir_ + "/model.pb").ok());
  std::string bytes = Slurp(dir_ + "/model.pb");
  v1::BundleManifest swapped = m;
  swapped.mutable_files(0)->set_sha256(Sha256Hex(bytes));
  swapped.mutable_files(0)->set_size(bytes.size());
  Spit(dir_ + "/manifest.pb", swapped.SerializeAsString());
  msg = Expect(absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(msg.find("model version"), std::string::npos) << msg;
}

TEST_F(BundleTest, TruncatedOrMissingCatalogIsRefused) {
  ASSERT_EQ(::truncate((dir_ + "/catalog.db").c_str(), 8192), 0);
  std::string msg = Expect(absl::StatusCode::kDataLoss);
  EXPECT_NE(msg.find("catalog.db"), std::string::npos) << msg;
  ASSERT_EQ(::unlink((dir_ + "/catalog.db").c_str()), 0);
  msg = Expect(absl::StatusCode::kNotFound);
  EXPECT_NE(msg.find("catalog.db"), std::string::npos) << msg;
}

TEST_F(BundleTest, OnlineAddsSurviveReloadDespiteTheManifestCount) {
  int64_t id;
  {
    auto b = *Bundle::Load(dir_);
    CatalogItem item;
    item.label_name = "delta";
    item.embedding.assign(embeddings_.begin(), embeddings_.begin() + 8);
    item.model_version = encoder_->model_version();
    id = (*b->gallery().Add({item}))[0];
  }
  auto b = Bundle::Load(dir_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->gallery().size(), 91);
  EXPECT_EQ((*b)->gallery().Get(id)->label_name, "delta");
}

TEST_F(BundleTest, RewritingReplacesTheBundleAndLeavesNoDebris) {
  Dataset second = MakeDataset(45, 3);
  auto emb = Embed(*encoder_, second);
  options_.index_spec = "HNSW16";
  ASSERT_TRUE(WriteBundle(dir_, *encoder_, second, emb.data(), options_).ok());
  auto b = Bundle::Load(dir_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->gallery().size(), 45);
  EXPECT_EQ((*b)->manifest().index_spec(), "HNSW16");
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(tmp_.path())) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"bundle"});
  // A directory that is not a bundle is never replaced.
  std::string precious = tmp_.file("precious");
  ASSERT_EQ(::mkdir(precious.c_str(), 0755), 0);
  Spit(precious + "/notes.txt", "keep me");
  auto refused = WriteBundle(precious, *encoder_, second, emb.data(), options_);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Slurp(precious + "/notes.txt"), "keep me");
}

TEST(Sha256, MatchesKnownVectors) {
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(
      Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// A 1 MiB input of arbitrary bytes (every byte value, zeros included) agrees
// with coreutils' sha256sum over the same file.
TEST(Sha256, MatchesSha256sumOnOneMebibyte) {
  TempDir tmp;
  std::string bytes(1 << 20, '\0');
  std::mt19937 rng(19);
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  std::string path = tmp.file("one_mib.bin");
  Spit(path, bytes);
  std::string command = "sha256sum '" + path + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char line[256] = {0};
  ASSERT_NE(std::fgets(line, sizeof(line), pipe), nullptr);
  ASSERT_EQ(::pclose(pipe), 0);
  std::string expected(line, 64);
  EXPECT_EQ(Sha256Hex(bytes), expected);
}

}  // namespace
}  // namespace embedsearch
