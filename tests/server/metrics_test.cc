// The real server on 127.0.0.1 with its /metrics endpoint on: real
// searches move the counters and histogram buckets, Reload changes the model
// info, promtool accepts the exposition, a taken metrics port fails start-up
// and scraping during concurrent searches adds no errors.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "civetweb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/server/test_bundle.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;
using testing::GalleryPng;
using testing::MakeContext;

// GET http://127.0.0.1:port/metrics; the body, or "" on any failure.
std::string Scrape(int port) {
  mg_init_library(0);
  char error[256] = "";
  mg_connection* conn =
      mg_download("127.0.0.1", port, 0, error, sizeof(error),
                  "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (conn == nullptr) {
    ADD_FAILURE() << "scrape failed: " << error;
    return "";
  }
  const mg_response_info* info = mg_get_response_info(conn);
  const int http_status = info == nullptr ? 0 : info->status_code;
  std::string body;
  char buffer[8192];
  for (int n; (n = mg_read(conn, buffer, sizeof(buffer))) > 0;) {
    body.append(buffer, static_cast<size_t>(n));
  }
  mg_close_connection(conn);
  EXPECT_EQ(http_status, 200);
  return body;
}

// The value of one series ("name{label=\"v\",...}" exactly as exposed, labels
// sorted by name), or NaN when the exposition does not have it.
double Value(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      return std::stod(std::string(line));
    }
  }
  return std::nan("");
}

// How much `series` grew from `before` to `after` (absent counts as 0:
// a labelled series appears with its first observation).
double Moved(const std::string& before, const std::string& after,
             const std::string& series) {
  const double was = Value(before, series);
  return Value(after, series) - (std::isnan(was) ? 0 : was);
}

std::string Requests(const std::string& method, const std::string& code) {
  return absl::StrCat("embedsearch_requests_total{code=\"", code,
                      "\",method=\"", method, "\"}");
}
std::string StageCount(const std::string& stage) {
  return absl::StrCat("embedsearch_search_stage_duration_seconds_count{stage=\"",
                      stage, "\"}");
}

class MetricsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(testing::MakeTempDir("metrics-test"));
    ASSERT_TRUE(testing::MakeBundle(*root_ + "/a", 1, "HNSW32").ok());
    ASSERT_TRUE(testing::MakeBundle(*root_ + "/b", 2).ok());
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.metrics_address = "127.0.0.1:0";
    options.bundle_path = *root_ + "/a";
    options.log_format = LogFormat::kNone;
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
    ASSERT_GT(server_->metrics_port(), 0);
    stub_ = testing::MakeStub(server_->port());
  }

  grpc::Status ImageSearch(size_t i, uint32_t k) {
    v1::SearchRequest request;
    request.set_image(GalleryPng(i));
    request.set_k(k);
    v1::SearchResponse response;
    return stub_->Search(MakeContext().get(), request, &response);
  }
  std::string ScrapeServer() { return Scrape(server_->metrics_port()); }

  static std::string* root_;
  static EmbedSearchServer* server_;
  std::unique_ptr<v1::ImageSearch::Stub> stub_;
};

std::string* MetricsTest::root_ = nullptr;
EmbedSearchServer* MetricsTest::server_ = nullptr;

TEST_F(MetricsTest, SearchesMoveRequestCountsStagesAndBuckets) {
  const std::string before = ScrapeServer();
  for (size_t i = 0; i < 5; ++i) ASSERT_TRUE(ImageSearch(i, 5).ok());
  v1::SearchRequest by_id;  // no decode or encode stage
  by_id.set_id(3);
  by_id.set_k(4);
  v1::SearchResponse response;
  ASSERT_TRUE(stub_->Search(MakeContext().get(), by_id, &response).ok());
  EXPECT_EQ(ImageSearch(0, 0).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const std::string after = ScrapeServer();

  auto moved = [&](const std::string& series) { return Moved(before, after, series); };
  EXPECT_EQ(moved(Requests("Search", "OK")), 6);
  EXPECT_EQ(moved(Requests("Search", "INVALID_ARGUMENT")), 1);
  EXPECT_EQ(moved("embedsearch_request_duration_seconds_count{method=\"Search\"}"), 7);
  EXPECT_EQ(moved("embedsearch_request_duration_seconds_bucket{method=\"Search\",le=\"+Inf\"}"), 7);
  EXPECT_GT(moved("embedsearch_request_duration_seconds_bucket{method=\"Search\",le=\"10\"}"), 0);
  EXPECT_GT(moved("embedsearch_request_duration_seconds_sum{method=\"Search\"}"), 0);
  // All 7 queued; the bad k is refused before decoding; the id query is
  // neither decoded nor encoded.
  EXPECT_EQ(moved(StageCount("queue_wait")), 7);
  EXPECT_EQ(moved(StageCount("decode")), 5);
  EXPECT_EQ(moved(StageCount("encode")), 5);
  EXPECT_EQ(moved(StageCount("index_search")), 6);
  EXPECT_EQ(moved(StageCount("catalog_read")), 6);
  EXPECT_EQ(moved(StageCount("response")), 6);
  EXPECT_GT(moved("embedsearch_search_stage_duration_seconds_bucket{stage=\"encode\",le=\"1\"}"), 0);
  // One query at a time: every batch held one query.
  EXPECT_EQ(moved("embedsearch_search_batch_size_count"), 7);
  EXPECT_EQ(moved("embedsearch_search_batch_size_bucket{le=\"1\"}"), 7);
}

TEST_F(MetricsTest, GalleryModelProcessAndLoadsAreExposed) {
  v1::GetInfoResponse info;
  ASSERT_TRUE(stub_->GetInfo(MakeContext().get(), {}, &info).ok());
  const std::string text = ScrapeServer();
  EXPECT_EQ(Value(text, "embedsearch_gallery_images"),
            static_cast<double>(info.gallery_size()));
  EXPECT_EQ(Value(text, absl::StrCat("embedsearch_model_info{dim=\"", info.dim(),
                                     "\",index=\"", info.index_spec(),
                                     "\",metric=\"", info.metric(),
                                     "\",model_version=\"", info.model_version(),
                                     "\"}")),
            1);
  EXPECT_GE(Value(text, "embedsearch_bundle_loads_total{result=\"success\"}"), 1);
  EXPECT_EQ(Value(text, "embedsearch_bundle_last_load_success"), 1);
  EXPECT_GT(Value(text, "embedsearch_bundle_last_load_timestamp_seconds"), 1.7e9);
  EXPECT_GT(Value(text, "process_cpu_seconds_total"), 0);
  EXPECT_GT(Value(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(Value(text, "process_open_fds"), 2);
  EXPECT_GT(Value(text, "process_start_time_seconds"), 1.7e9);
}

TEST_F(MetricsTest, ReloadReplacesModelInfoAndCountsFailures) {
  auto reload = [&](const std::string& path) {
    v1::ReloadRequest request;
    request.set_bundle_path(path);
    v1::ReloadResponse response;
    return stub_->Reload(MakeContext().get(), request, &response);
  };
  const std::string before = ScrapeServer();
  ASSERT_TRUE(reload(*root_ + "/b").ok());
  v1::GetInfoResponse b;
  ASSERT_TRUE(stub_->GetInfo(MakeContext().get(), {}, &b).ok());
  EXPECT_FALSE(reload(*root_ + "/missing").ok());
  const std::string after = ScrapeServer();
  ASSERT_TRUE(reload(*root_ + "/a").ok());  // back for the other tests

  EXPECT_EQ(Value(after, "embedsearch_bundle_loads_total{result=\"success\"}") -
                Value(before, "embedsearch_bundle_loads_total{result=\"success\"}"),
            1);
  EXPECT_EQ(Value(after, "embedsearch_bundle_loads_total{result=\"failure\"}") -
                Value(before, "embedsearch_bundle_loads_total{result=\"failure\"}"),
            1);
  EXPECT_EQ(Value(after, "embedsearch_bundle_last_load_success"), 0);
  // Exactly one model_info series, the one of bundle b.
  size_t info_series = 0;
  for (absl::string_view line : absl::StrSplit(after, '\n')) {
    if (absl::StartsWith(line, "embedsearch_model_info{")) {
      ++info_series;
      EXPECT_THAT(std::string(line), HasSubstr(b.model_version()));
    }
  }
  EXPECT_EQ(info_series, 1u);
}

TEST_F(MetricsTest, PromtoolAcceptsTheExposition) {
  ASSERT_TRUE(ImageSearch(1, 3).ok());
  const std::string path = testing::MakeTempDir("metrics-promtool") + "/metrics.txt";
  {
    std::ofstream out(path);
    out << ScrapeServer();
  }
  const std::string command =
      absl::StrCat("promtool check metrics < '", path, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int rc = pclose(pipe);
  // 127: not installed (scripts/install-deps installs Debian's prometheus).
  EXPECT_EQ(rc, 0) << "promtool check metrics said:\n" << output;
}

TEST_F(MetricsTest, ScrapingDuringConcurrentSearchesAddsNoErrors) {
  const std::string before = ScrapeServer();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 40;
  std::atomic<int> failed_searches{0};
  std::atomic<bool> searching{true};
  std::vector<std::thread> searchers;
  for (int t = 0; t < kThreads; ++t) {
    searchers.emplace_back([&, t] {
      auto stub = testing::MakeStub(server_->port());
      for (int i = 0; i < kPerThread; ++i) {
        v1::SearchRequest request;
        request.set_image(GalleryPng(static_cast<size_t>(t * kPerThread + i) % 300));
        request.set_k(10);
        v1::SearchResponse response;
        if (!stub->Search(MakeContext().get(), request, &response).ok()) ++failed_searches;
      }
    });
  }
  int scrapes = 0;
  int bad_scrapes = 0;
  std::thread scraper([&] {
    while (searching.load()) {
      const std::string text = ScrapeServer();
      ++scrapes;
      if (std::isnan(Value(text, "embedsearch_gallery_images"))) ++bad_scrapes;
    }
  });
  for (std::thread& t : searchers) t.join();
  searching.store(false);
  scraper.join();
  const std::string after = ScrapeServer();

  EXPECT_EQ(failed_searches.load(), 0);
  EXPECT_GT(scrapes, 0);
  EXPECT_EQ(bad_scrapes, 0);
  EXPECT_EQ(Moved(before, after, Requests("Search", "OK")), kThreads * kPerThread);
}

TEST(MetricsStartup, TakenMetricsPortIsAClearError) {
  const int taken = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(taken, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(taken, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(taken, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.metrics_address = absl::StrCat("127.0.0.1:", port);
  options.log_format = LogFormat::kNone;
  auto server = EmbedSearchServer::Start(options);
  close(taken);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(server.status().message(),
              HasSubstr(absl::StrCat("cannot serve metrics on 127.0.0.1:", port)));
}

TEST(MetricsStartup, MetricsAreOffByDefault) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.log_format = LogFormat::kNone;
  auto server = EmbedSearchServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->metrics_port(), 0);
}

}  // namespace
}  // namespace embedsearch
