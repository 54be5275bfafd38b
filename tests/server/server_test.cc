// The real server on 127.0.0.1 with a small real bundle, called through the
// generated stub: every RPC, every error path, auth and reload.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/image/image.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/server/test_bundle.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;
using testing::GalleryPng;
using testing::MakeContext;

constexpr char kToken[] = "s3cret-token";
constexpr int kMaxK = 50;
constexpr int kMaxMessageBytes = 1 << 20;

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(testing::MakeTempDir("server-test"));
    ASSERT_TRUE(testing::MakeBundle(BundleA(), 1).ok());
    ASSERT_TRUE(testing::MakeBundle(BundleB(), 2).ok());
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.bundle_path = BundleA();
    options.token = kToken;
    options.max_message_bytes = kMaxMessageBytes;
    options.log_format = LogFormat::kNone;
    options.service.max_k = kMaxK;
    options.service.allowed_bundle_roots = {*root_};
    auto server = EmbedSearchServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::filesystem::remove_all(*root_);
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = testing::MakeStub(server_->port());
  }

  static std::string BundleA() { return *root_ + "/a"; }
  static std::string BundleB() { return *root_ + "/b"; }

  grpc::Status Search(const v1::SearchRequest& request,
                      v1::SearchResponse* response) {
    return stub_->Search(MakeContext().get(), request, response);
  }
  v1::GetInfoResponse Info() {
    v1::GetInfoResponse info;
    EXPECT_TRUE(stub_->GetInfo(MakeContext().get(), {}, &info).ok());
    return info;
  }
  v1::SearchRequest ImageQuery(size_t i, uint32_t k) {
    v1::SearchRequest request;
    request.set_image(GalleryPng(i));
    request.set_k(k);
    return request;
  }

  static std::string* root_;
  static EmbedSearchServer* server_;
  std::unique_ptr<v1::ImageSearch::Stub> stub_;
};

std::string* ServerTest::root_ = nullptr;
EmbedSearchServer* ServerTest::server_ = nullptr;

void ExpectNearestFirst(const v1::SearchResponse& response) {
  for (int i = 1; i < response.hits_size(); ++i) {
    EXPECT_LE(response.hits(i - 1).distance(), response.hits(i).distance());
  }
}

TEST_F(ServerTest, SearchByGalleryImageFindsItFirst) {
  v1::SearchResponse response;
  ASSERT_TRUE(Search(ImageQuery(7, 5), &response).ok());
  ASSERT_EQ(response.hits_size(), 5);
  EXPECT_NEAR(response.hits(0).distance(), 0.0f, 1e-4);
  EXPECT_EQ(response.hits(0).source(), testing::FashionSubset().sources[7]);
  EXPECT_EQ(response.hits(0).label(), testing::FashionSubset().labels[7]);
  EXPECT_EQ(response.hits(0).label_name(),
            FashionMnistLabelNames()[testing::FashionSubset().labels[7]]);
  EXPECT_EQ(response.model_version(), Info().model_version());
  EXPECT_TRUE(response.hits(0).image_png().empty());
  ExpectNearestFirst(response);
}

TEST_F(ServerTest, SearchAcceptsJpegPgmAndAnySize) {
  const Image original = testing::FashionSubset().GetImage(3);
  const Image big_rgb = ToRgb(Resize(original, 97, 61));
  for (const auto& bytes :
       {*EncodeJpeg(big_rgb, 95), *EncodePgm(original), *EncodePng(big_rgb)}) {
    v1::SearchRequest request;
    request.set_image(bytes);
    request.set_k(3);
    v1::SearchResponse response;
    grpc::Status status = Search(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.hits_size(), 3);
  }
  v1::SearchRequest pgm;
  pgm.set_image(*EncodePgm(original));
  pgm.set_k(1);
  v1::SearchResponse response;
  ASSERT_TRUE(Search(pgm, &response).ok());
  // PGM is lossless: the same pixels find the same gallery image.
  EXPECT_EQ(response.hits(0).source(), testing::FashionSubset().sources[3]);
}

TEST_F(ServerTest, SearchByEncodedEmbeddingMatchesSearchByImage) {
  v1::EncodeRequest encode;
  encode.set_image(GalleryPng(11));
  v1::EncodeResponse embedding;
  ASSERT_TRUE(stub_->Encode(MakeContext().get(), encode, &embedding).ok());
  EXPECT_EQ(embedding.embedding().values_size(), 64);
  EXPECT_EQ(embedding.model_version(), Info().model_version());

  v1::SearchRequest by_vector;
  *by_vector.mutable_embedding() = embedding.embedding();
  by_vector.set_k(10);
  v1::SearchResponse a, b;
  ASSERT_TRUE(Search(by_vector, &a).ok());
  ASSERT_TRUE(Search(ImageQuery(11, 10), &b).ok());
  ASSERT_EQ(a.hits_size(), b.hits_size());
  for (int i = 0; i < a.hits_size(); ++i) {
    EXPECT_EQ(a.hits(i).id(), b.hits(i).id());
  }
}

TEST_F(ServerTest, SearchByIdFindsThatImageFirst) {
  v1::SearchResponse first;
  ASSERT_TRUE(Search(ImageQuery(20, 1), &first).ok());
  const int64_t id = first.hits(0).id();
  v1::SearchRequest request;
  request.set_id(id);
  request.set_k(4);
  v1::SearchResponse response;
  ASSERT_TRUE(Search(request, &response).ok());
  ASSERT_EQ(response.hits_size(), 4);
  EXPECT_EQ(response.hits(0).id(), id);
  EXPECT_NEAR(response.hits(0).distance(), 0.0f, 1e-4);
}

TEST_F(ServerTest, LabelFilterReturnsOnlyThoseLabels) {
  v1::SearchRequest request = ImageQuery(0, 20);
  request.add_label_filter("Bag");
  request.add_label_filter("Sneaker");
  v1::SearchResponse response;
  ASSERT_TRUE(Search(request, &response).ok());
  ASSERT_EQ(response.hits_size(), 20);
  for (const v1::Hit& hit : response.hits()) {
    EXPECT_TRUE(hit.label_name() == "Bag" || hit.label_name() == "Sneaker")
        << hit.label_name();
  }
}

TEST_F(ServerTest, IncludeImagesReturnsDecodablePngs) {
  v1::SearchRequest request = ImageQuery(5, 3);
  request.set_include_images(true);
  v1::SearchResponse response;
  ASSERT_TRUE(Search(request, &response).ok());
  ASSERT_EQ(response.hits_size(), 3);
  for (const v1::Hit& hit : response.hits()) {
    EXPECT_EQ(DetectFormat(hit.image_png()), ImageFormat::kPng);
    auto image = DecodePng(hit.image_png());
    ASSERT_TRUE(image.ok());
    EXPECT_EQ(image->width, 28);
    EXPECT_EQ(image->height, 28);
  }
  // The first hit is the query image itself, pixel for pixel.
  EXPECT_EQ(DecodePng(response.hits(0).image_png())->pixels,
            testing::FashionSubset().GetImage(5).pixels);
}

TEST_F(ServerTest, SearchStreamAnswersInOrder) {
  auto context = MakeContext();
  auto stream = stub_->SearchStream(context.get());
  const std::vector<size_t> queries = {4, 9, 1, 30, 2};
  for (size_t q : queries) ASSERT_TRUE(stream->Write(ImageQuery(q, 2)));
  stream->WritesDone();
  v1::SearchResponse response;
  size_t n = 0;
  while (stream->Read(&response)) {
    ASSERT_LT(n, queries.size());
    EXPECT_EQ(response.sequence(), n);
    EXPECT_EQ(response.hits(0).source(),
              testing::FashionSubset().sources[queries[n]]);
    ++n;
  }
  EXPECT_EQ(n, queries.size());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServerTest, SearchStreamEndsAtFirstBadMessageAndNamesIt) {
  auto context = MakeContext();
  auto stream = stub_->SearchStream(context.get());
  ASSERT_TRUE(stream->Write(ImageQuery(1, 2)));
  ASSERT_TRUE(stream->Write(ImageQuery(2, 2)));
  v1::SearchRequest bad = ImageQuery(3, 0);  // k = 0
  stream->Write(bad);
  stream->Write(ImageQuery(4, 2));
  stream->WritesDone();
  v1::SearchResponse response;
  int n = 0;
  while (stream->Read(&response)) ++n;
  EXPECT_EQ(n, 2);
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("SearchStream message 2"));
  EXPECT_THAT(status.error_message(), HasSubstr("k must be between 1 and"));
}

TEST_F(ServerTest, ClientCancellingAStreamMidFlightLeavesTheServerUp) {
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext context;
    auto stream = stub_->SearchStream(&context);
    ASSERT_TRUE(stream->Write(ImageQuery(1, 2)));
    v1::SearchResponse response;
    ASSERT_TRUE(stream->Read(&response));
    stream->Write(ImageQuery(2, 2));
    context.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  v1::SearchResponse response;
  ASSERT_TRUE(Search(ImageQuery(9, 1), &response).ok());
  EXPECT_EQ(response.hits(0).source(), testing::FashionSubset().sources[9]);
}

TEST_F(ServerTest, AddGetRemoveImagesRoundTrip) {
  const uint64_t before = Info().gallery_size();
  // A 40x40 JPEG of a new label: decoded, preprocessed, encoded, stored.
  const Image img = Resize(testing::FashionSubset().GetImage(42), 40, 40);
  v1::AddImagesRequest add;
  v1::NewImage* a = add.add_images();
  a->set_image(*EncodeJpeg(img, 95));
  a->set_label_name("Hat");
  a->set_source("test:hat");
  v1::NewImage* b = add.add_images();
  b->set_image(GalleryPng(43));
  b->set_label_name("Bag");
  b->set_source("test:bag");
  v1::AddImagesResponse added;
  grpc::Status status = stub_->AddImages(MakeContext(kToken).get(), add, &added);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(added.ids_size(), 2);
  EXPECT_EQ(added.gallery_size(), before + 2);
  EXPECT_EQ(Info().gallery_size(), before + 2);
  const v1::GetInfoResponse info = Info();
  EXPECT_THAT(std::vector<std::string>(info.label_names().begin(),
                                       info.label_names().end()),
              ::testing::Contains("Hat"));

  v1::GetImageRequest get;
  get.set_id(added.ids(0));
  v1::GetImageResponse image;
  ASSERT_TRUE(stub_->GetImage(MakeContext().get(), get, &image).ok());
  EXPECT_EQ(image.id(), added.ids(0));
  EXPECT_EQ(image.label_name(), "Hat");
  EXPECT_EQ(image.source(), "test:hat");
  auto decoded = DecodePng(image.image_png());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->width, 40);

  // "Hat" is a new label with one image: a Hat filter finds only it.
  v1::SearchRequest query;
  query.set_image(GalleryPng(43));
  query.set_k(1);
  query.add_label_filter("Hat");
  v1::SearchResponse response;
  ASSERT_TRUE(Search(query, &response).ok());
  ASSERT_EQ(response.hits_size(), 1);
  EXPECT_EQ(response.hits(0).id(), added.ids(0));

  v1::RemoveImagesRequest remove;
  remove.add_ids(added.ids(0));
  remove.add_ids(added.ids(1));
  v1::RemoveImagesResponse removed;
  ASSERT_TRUE(
      stub_->RemoveImages(MakeContext(kToken).get(), remove, &removed).ok());
  EXPECT_EQ(removed.removed(), 2u);
  EXPECT_EQ(removed.gallery_size(), before);
  status = stub_->GetImage(MakeContext().get(), get, &image);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  // The removed ids never come back from a search.
  v1::SearchRequest again;
  again.set_image(GalleryPng(43));
  again.set_k(kMaxK);
  ASSERT_TRUE(Search(again, &response).ok());
  for (const v1::Hit& hit : response.hits()) {
    EXPECT_NE(hit.id(), added.ids(0));
    EXPECT_NE(hit.id(), added.ids(1));
  }
}

TEST_F(ServerTest, GetInfoReportsModelGalleryAndStats) {
  v1::SearchResponse ignored;
  ASSERT_TRUE(Search(ImageQuery(0, 1), &ignored).ok());
  const v1::GetInfoResponse info = Info();
  EXPECT_EQ(info.dim(), 64u);
  EXPECT_EQ(info.metric(), "l2");
  EXPECT_EQ(info.index_spec(), "Flat");
  EXPECT_GE(info.gallery_size(), 300u);
  EXPECT_THAT(info.model_version(), HasSubstr("enc-"));
  EXPECT_EQ(info.input_height(), 28u);
  EXPECT_EQ(info.input_width(), 28u);
  EXPECT_GE(info.label_names_size(), 10);
  EXPECT_EQ(info.label_names(0), "T-shirt/top");
  EXPECT_GT(info.uptime_seconds(), 0);
  bool found = false;
  for (const v1::LatencyStats& s : info.stats()) {
    if (s.method() != "Search") continue;
    found = true;
    EXPECT_GE(s.count(), 1u);
    EXPECT_LE(s.p50_ms(), s.p90_ms());
    EXPECT_LE(s.p90_ms(), s.p99_ms());
    EXPECT_LE(s.p99_ms(), s.max_ms());
    EXPECT_GT(s.max_ms(), 0);
  }
  EXPECT_TRUE(found);
}

struct BadSearch {
  std::string name;
  v1::SearchRequest request;
  grpc::StatusCode code;
  std::string message;
};

TEST_F(ServerTest, BadSearchesGetTheRightCodeAndMessage) {
  std::vector<BadSearch> cases;
  auto with_image = [](std::string bytes) {
    v1::SearchRequest r;
    r.set_image(std::move(bytes));
    r.set_k(3);
    return r;
  };
  cases.push_back({"garbage image", with_image("this is not an image"),
                   grpc::StatusCode::INVALID_ARGUMENT, "could not be decoded"});
  std::string truncated = GalleryPng(0);
  truncated.resize(truncated.size() / 2);
  cases.push_back({"truncated png", with_image(truncated),
                   grpc::StatusCode::INVALID_ARGUMENT, "could not be decoded"});
  cases.push_back({"huge dimensions",
                   with_image(std::string("P5\n30000 30000\n255\n") +
                              std::string(100, '\0')),
                   grpc::StatusCode::INVALID_ARGUMENT, "query image"});
  cases.push_back({"empty image", with_image(""),
                   grpc::StatusCode::INVALID_ARGUMENT, "query image is empty"});
  v1::SearchRequest empty;
  empty.set_k(3);
  cases.push_back({"no query", empty, grpc::StatusCode::INVALID_ARGUMENT,
                   "empty query"});
  v1::SearchRequest short_vector;
  short_vector.set_k(3);
  short_vector.mutable_embedding()->add_values(1.0f);
  cases.push_back({"wrong length", short_vector,
                   grpc::StatusCode::INVALID_ARGUMENT,
                   "embedding has 1 values"});
  v1::SearchRequest nan_vector = short_vector;
  nan_vector.mutable_embedding()->mutable_values()->Resize(64, 0.1f);
  nan_vector.mutable_embedding()->set_values(
      17, std::numeric_limits<float>::quiet_NaN());
  cases.push_back({"NaN", nan_vector, grpc::StatusCode::INVALID_ARGUMENT,
                   "embedding[17] is NaN"});
  v1::SearchRequest inf_vector = nan_vector;
  inf_vector.mutable_embedding()->set_values(
      17, std::numeric_limits<float>::infinity());
  cases.push_back({"Inf", inf_vector, grpc::StatusCode::INVALID_ARGUMENT,
                   "embedding[17] is infinite"});
  cases.push_back({"k zero", ImageQuery(0, 0),
                   grpc::StatusCode::INVALID_ARGUMENT,
                   absl::StrCat("k must be between 1 and ", kMaxK, "; got 0")});
  cases.push_back({"k too big", ImageQuery(0, kMaxK + 1),
                   grpc::StatusCode::INVALID_ARGUMENT,
                   absl::StrCat("got ", kMaxK + 1)});
  v1::SearchRequest unknown_label = ImageQuery(0, 3);
  unknown_label.add_label_filter("Sneaker");
  unknown_label.add_label_filter("Spaceship");
  cases.push_back({"unknown label", unknown_label,
                   grpc::StatusCode::INVALID_ARGUMENT,
                   "label_filter[1] \"Spaceship\" is not a label"});
  v1::SearchRequest unknown_id;
  unknown_id.set_id(987654321);
  unknown_id.set_k(3);
  cases.push_back({"unknown id", unknown_id, grpc::StatusCode::NOT_FOUND,
                   "no image with id 987654321"});
  cases.push_back({"message too large",
                   with_image(std::string(kMaxMessageBytes + 10, 'x')),
                   grpc::StatusCode::RESOURCE_EXHAUSTED, ""});

  for (const BadSearch& c : cases) {
    v1::SearchResponse response;
    grpc::Status status = Search(c.request, &response);
    EXPECT_EQ(status.error_code(), c.code)
        << c.name << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message)) << c.name;
  }
  // And the server still answers correctly afterwards.
  v1::SearchResponse response;
  ASSERT_TRUE(Search(ImageQuery(7, 1), &response).ok());
  EXPECT_EQ(response.hits(0).source(), testing::FashionSubset().sources[7]);
}

TEST_F(ServerTest, BadRequestsOfOtherRpcsGetTheRightCode) {
  v1::EncodeResponse encoded;
  v1::EncodeRequest encode;
  EXPECT_EQ(stub_->Encode(MakeContext().get(), encode, &encoded).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  encode.set_image("garbage");
  EXPECT_EQ(stub_->Encode(MakeContext().get(), encode, &encoded).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::GetImageRequest get;
  get.set_id(-5);
  v1::GetImageResponse image;
  grpc::Status status = stub_->GetImage(MakeContext().get(), get, &image);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("no image with id -5"));

  v1::AddImagesRequest add;
  v1::AddImagesResponse added;
  EXPECT_EQ(
      stub_->AddImages(MakeContext(kToken).get(), add, &added).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  v1::NewImage* bad = add.add_images();
  bad->set_image(GalleryPng(0));
  bad->set_label_name("Bag");
  add.add_images()->set_image("junk");
  add.mutable_images(1)->set_label_name("Bag");
  const uint64_t before = Info().gallery_size();
  status = stub_->AddImages(MakeContext(kToken).get(), add, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("images[1].image"));
  EXPECT_EQ(Info().gallery_size(), before);  // Nothing half-added.
  add.mutable_images(1)->set_image(GalleryPng(1));
  add.mutable_images(1)->clear_label_name();
  status = stub_->AddImages(MakeContext(kToken).get(), add, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("images[1].label_name"));

  v1::RemoveImagesRequest remove;
  v1::RemoveImagesResponse removed;
  EXPECT_EQ(stub_->RemoveImages(MakeContext(kToken).get(), remove, &removed)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  remove.add_ids(123456789);
  status = stub_->RemoveImages(MakeContext(kToken).get(), remove, &removed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("nothing was removed"));
}

TEST_F(ServerTest, PassedDeadlineGivesDeadlineExceeded) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() -
                       std::chrono::milliseconds(1));
  v1::SearchResponse response;
  grpc::Status status = stub_->Search(&context, ImageQuery(0, 3), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // Server side: a stop check that reports the deadline ends the request
  // between stages with that code.
  auto result = server_->service().Search(
      ImageQuery(0, 3), [](absl::string_view stage) {
        return absl::DeadlineExceededError(absl::StrCat("while ", stage));
      });
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ServerTest, MutationsNeedTheBearerToken) {
  v1::AddImagesRequest add;
  v1::NewImage* image = add.add_images();
  image->set_image(GalleryPng(50));
  image->set_label_name("Bag");
  v1::AddImagesResponse added;
  const uint64_t before = Info().gallery_size();

  grpc::Status status = stub_->AddImages(MakeContext().get(), add, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("Bearer"));
  status = stub_->AddImages(MakeContext("wrong").get(), add, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("wrong bearer token"));
  auto basic = MakeContext();
  basic->AddMetadata("authorization", "Basic abc");
  status = stub_->AddImages(basic.get(), add, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Info().gallery_size(), before);

  v1::RemoveImagesRequest remove;
  remove.add_ids(1);
  v1::RemoveImagesResponse removed;
  EXPECT_EQ(stub_->RemoveImages(MakeContext().get(), remove, &removed)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::ReloadRequest reload;
  reload.set_bundle_path(BundleA());
  v1::ReloadResponse reloaded;
  EXPECT_EQ(stub_->Reload(MakeContext("nope").get(), reload, &reloaded)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  status = stub_->AddImages(MakeContext(kToken).get(), add, &added);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(added.gallery_size(), before + 1);
  v1::RemoveImagesRequest cleanup;
  cleanup.add_ids(added.ids(0));
  EXPECT_TRUE(
      stub_->RemoveImages(MakeContext(kToken).get(), cleanup, &removed).ok());
}

TEST_F(ServerTest, ReloadSwapsBundlesAndRefusesBadOnes) {
  const std::string version_a = Info().model_version();
  v1::ReloadRequest reload;
  v1::ReloadResponse reloaded;

  // Outside the allowed root, directly or through "..".
  reload.set_bundle_path("/etc");
  grpc::Status status =
      stub_->Reload(MakeContext(kToken).get(), reload, &reloaded);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("outside the allowed"));
  reload.set_bundle_path(BundleA() + "/../../..");
  status = stub_->Reload(MakeContext(kToken).get(), reload, &reloaded);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  reload.set_bundle_path(*root_ + "/missing");
  status = stub_->Reload(MakeContext(kToken).get(), reload, &reloaded);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  reload.clear_bundle_path();
  status = stub_->Reload(MakeContext(kToken).get(), reload, &reloaded);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A directory that is no bundle is refused; A keeps serving.
  const std::string junk = *root_ + "/junk";
  ASSERT_EQ(mkdir(junk.c_str(), 0755), 0);
  FILE* f = fopen((junk + "/manifest.pb").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("not a manifest", f);
  fclose(f);
  reload.set_bundle_path(junk);
  status = stub_->Reload(MakeContext(kToken).get(), reload, &reloaded);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.error_message(), HasSubstr("still serving"));
  EXPECT_EQ(Info().model_version(), version_a);
  v1::SearchResponse response;
  EXPECT_TRUE(Search(ImageQuery(0, 1), &response).ok());

  // B swaps in, then A again.
  reload.set_bundle_path(BundleB());
  status = stub_->Reload(MakeContext(kToken).get(), reload, &reloaded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(reloaded.model_version(), version_a);
  EXPECT_EQ(Info().model_version(), reloaded.model_version());
  ASSERT_TRUE(Search(ImageQuery(0, 1), &response).ok());
  EXPECT_EQ(response.model_version(), reloaded.model_version());
  reload.set_bundle_path(BundleA());
  ASSERT_TRUE(stub_->Reload(MakeContext(kToken).get(), reload, &reloaded).ok());
  EXPECT_EQ(Info().model_version(), version_a);
}

}  // namespace
}  // namespace embedsearch
