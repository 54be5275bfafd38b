// embedsearch-client against a real embedsearch-server child process on
// 127.0.0.1, serving a small bundle this test writes: 500 Fashion-MNIST
// test-split images 1000.. (the queries are test images 0..39, so never in
// the gallery; reading the 10k split is much cheaper than the 60k one), the
// reference encoder with seeded random weights, and an exact "Flat" index.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/errors.h"
#include "core/data/dataset.h"
#include "core/data/preprocess.h"
#include "core/image/contact_sheet.h"
#include "core/image/image.h"
#include "core/index/bundle.h"
#include "core/nn/encoder.h"
#include "core/util/file.h"
#include "core/util/json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/subprocess.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kClient =
    std::string(EMBEDSEARCH_BINARY_DIR) + "/client/embedsearch-client";
const std::string kServer =
    std::string(EMBEDSEARCH_BINARY_DIR) + "/server/embedsearch-server";
constexpr char kToken[] = "client-test-token";
constexpr int kPerClass = 100;
constexpr size_t kGalleryStart = 1000;

// One row of the ranked table: rank, id, label (may contain spaces),
// distance, source (no spaces).
struct TableHit {
  int rank = 0;
  int64_t id = 0;
  std::string label;
  double distance = 0;
  std::string source;
};

// Parses every table in `out` (one per query, each after a dashed rule).
std::vector<std::vector<TableHit>> ParseTables(const std::string& out) {
  std::vector<std::vector<TableHit>> tables;
  bool in_table = false;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, "query ")) {
      tables.emplace_back();
      in_table = false;
      continue;
    }
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "----")) {
      in_table = true;
      continue;
    }
    if (!in_table || line.empty() || tables.empty()) continue;
    std::vector<std::string> f =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (f.size() < 5) continue;
    TableHit hit;
    EXPECT_TRUE(absl::SimpleAtoi(f[0], &hit.rank)) << line;
    EXPECT_TRUE(absl::SimpleAtoi(f[1], &hit.id)) << line;
    EXPECT_TRUE(absl::SimpleAtod(f[f.size() - 2], &hit.distance)) << line;
    hit.source = f.back();
    for (size_t i = 2; i + 2 < f.size(); ++i) {
      absl::StrAppend(&hit.label, hit.label.empty() ? "" : " ", f[i]);
    }
    tables.back().push_back(hit);
  }
  return tables;
}

class ClientServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { setup_error_ = new std::string(StartAll()); }

  static void TearDownTestSuite() {
    if (server_ != nullptr) server_->Stop();
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override { ASSERT_EQ(*setup_error_, "") << "suite setup failed"; }

  static std::string StartAll() {
    const char* tmp = getenv("TMPDIR");
    std::string dir_template =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/es-client-test-XXXXXX");
    if (mkdtemp(dir_template.data()) == nullptr) return "mkdtemp failed";
    dir_ = new std::string(dir_template);
    absl::StatusOr<Dataset> test =
        LoadFashionMnist(EMBEDSEARCH_FASHION_MNIST_DIR, "t10k");
    if (!test.ok()) return test.status().ToString();
    test_ = new Dataset(*std::move(test));
    std::vector<size_t> picked;
    std::vector<int> count(10, 0);
    for (size_t i = kGalleryStart;
         i < test_->size() && picked.size() < 10 * kPerClass; ++i) {
      if (count[test_->labels[i]]++ < kPerClass) picked.push_back(i);
    }
    Dataset gallery = test_->Subset(picked);
    for (uint64_t seed : {1, 2}) {
      const std::string bundle = absl::StrCat(*dir_, "/bundle", seed);
      if (absl::Status s = WriteTestBundle(bundle, gallery, seed); !s.ok()) {
        return absl::StrCat("WriteBundle: ", s.ToString());
      }
    }
    queries_ = new std::vector<std::string>;
    for (size_t i = 0; i < 40; ++i) {
      const std::string path = absl::StrCat(*dir_, "/query", i, ".png");
      absl::StatusOr<std::string> png = EncodePng(test_->GetImage(i));
      if (!png.ok()) return png.status().ToString();
      if (absl::Status s = WriteFileAtomically(path, *png); !s.ok()) {
        return s.ToString();
      }
      queries_->push_back(path);
    }
    return StartServer();
  }

  static absl::Status WriteTestBundle(const std::string& dir,
                                      const Dataset& gallery, uint64_t seed) {
    absl::StatusOr<std::unique_ptr<Encoder>> encoder =
        Encoder::Create(EncoderConfig(), seed);
    if (!encoder.ok()) return encoder.status();
    const int pixels = gallery.height * gallery.width;
    std::vector<float> input(gallery.size() * pixels);
    NormalizePixels(gallery.pixels.data(), static_cast<int>(input.size()),
                    (*encoder)->config().preprocessing, input.data());
    std::vector<float> embeddings(gallery.size() * (*encoder)->dim());
    (*encoder)->Encode(input.data(), static_cast<int>(gallery.size()),
                       embeddings.data(), 1);
    BundleWriteOptions options;
    options.index_spec = "Flat";
    return WriteBundle(dir, **encoder, gallery, embeddings.data(), options);
  }

  static std::string StartServer() {
    const std::string log = absl::StrCat(*dir_, "/server.log");
    server_ = new ChildProcess;
    if (!server_->Start({kServer, absl::StrCat("--bundle=", *dir_, "/bundle1"),
                         "--address=127.0.0.1:0", absl::StrCat("--token=", kToken),
                         "--threads=1"},
                        log)) {
      return "cannot start " + kServer;
    }
    // The server logs "event=listening ... port=N" once bound.
    const std::regex port_re("event=listening.*port=([0-9]+)");
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    int port = 0;
    while (port == 0 && absl::Now() < deadline) {
      std::ifstream in(log);
      std::string line;
      std::smatch m;
      while (std::getline(in, line)) {
        if (std::regex_search(line, m, port_re)) port = std::stoi(m[1]);
      }
      if (port == 0) {
        if (!server_->Running()) return "server exited; log: " + log;
        absl::SleepFor(absl::Milliseconds(50));
      }
    }
    if (port == 0) return "server never logged its port; log: " + log;
    address_ = new std::string(absl::StrCat("127.0.0.1:", port));
    while (absl::Now() < deadline) {
      ProcessResult r = RunProcess({kClient, "--server", *address_, "health"});
      if (r.exit_code == 0) return "";
      absl::SleepFor(absl::Milliseconds(100));
    }
    return "server never became SERVING; log: " + log;
  }

  static ProcessResult Client(std::vector<std::string> args,
                              bool with_token = false) {
    std::vector<std::string> argv = {kClient, "--server", *address_};
    if (with_token) argv.push_back(absl::StrCat("--token=", kToken));
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  }

  static const std::string& Query(int i) { return (*queries_)[i]; }
  static std::string Label(int i) {
    return test_->label_names[test_->labels[i]];
  }

  static std::string* setup_error_;
  static std::string* dir_;
  static std::string* address_;
  static ChildProcess* server_;
  static Dataset* test_;
  static std::vector<std::string>* queries_;
};

std::string* ClientServerTest::setup_error_ = nullptr;
std::string* ClientServerTest::dir_ = nullptr;
std::string* ClientServerTest::address_ = nullptr;
ChildProcess* ClientServerTest::server_ = nullptr;
Dataset* ClientServerTest::test_ = nullptr;
std::vector<std::string>* ClientServerTest::queries_ = nullptr;

TEST_F(ClientServerTest, SearchOfATestImageReturnsKHitsOrderedByDistance) {
  ProcessResult r = Client({"search", "--k", "7", Query(0), Query(1)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::vector<TableHit>> tables = ParseTables(r.out);
  ASSERT_EQ(tables.size(), 2u) << r.out;
  for (const std::vector<TableHit>& hits : tables) {
    ASSERT_EQ(hits.size(), 7u) << r.out;
    for (size_t i = 0; i < hits.size(); ++i) {
      EXPECT_EQ(hits[i].rank, static_cast<int>(i + 1));
      EXPECT_FALSE(hits[i].label.empty());
      EXPECT_THAT(hits[i].source, StartsWith("idx:t10k:"));
      if (i > 0) {
        EXPECT_LE(hits[i - 1].distance, hits[i].distance) << r.out;
      }
    }
  }
}

TEST_F(ClientServerTest, SearchByStoredIdFindsTheItemItselfAtDistanceZero) {
  ProcessResult first = Client({"search", "--k", "3", Query(2)});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const int64_t id = ParseTables(first.out).at(0).at(2).id;
  ProcessResult r = Client({"search", "--k", "3", "--ids", absl::StrCat(id)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<TableHit> hits = ParseTables(r.out).at(0);
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].id, id);
  EXPECT_NEAR(hits[0].distance, 0.0, 1e-4);
}

TEST_F(ClientServerTest, MostTestQueriesFindAHitOfTheirOwnClassFirst) {
  // 40 real test images. The encoder is untrained (seeded random weights,
  // no trainer involved), but random conv features keep enough of the
  // pixel geometry that nearest neighbours mostly share the class.
  std::vector<std::string> args = {"search", "--k", "1"};
  args.insert(args.end(), queries_->begin(), queries_->end());
  ProcessResult r = Client(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::vector<TableHit>> tables = ParseTables(r.out);
  ASSERT_EQ(tables.size(), queries_->size());
  int right = 0;
  for (size_t i = 0; i < tables.size(); ++i) {
    ASSERT_EQ(tables[i].size(), 1u);
    right += tables[i][0].label == Label(static_cast<int>(i));
  }
  std::printf("%d of %zu top hits in the query's class\n", right, tables.size());
  EXPECT_GT(right, static_cast<int>(tables.size()) / 2)
      << right << " of " << tables.size() << " top hits in the query's class";
}

TEST_F(ClientServerTest, LabelFilterKeepsOnlyTheNamedLabels) {
  ProcessResult r =
      Client({"search", "--k", "10", "--labels", "Bag,Ankle boot", Query(0)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<TableHit> hits = ParseTables(r.out).at(0);
  ASSERT_EQ(hits.size(), 10u);
  for (const TableHit& hit : hits) {
    EXPECT_TRUE(hit.label == "Bag" || hit.label == "Ankle boot") << hit.label;
  }
}

TEST_F(ClientServerTest, JsonOutputHasOneObjectPerQueryWithRankedHits) {
  ProcessResult r = Client({"search", "--json", "--k", "4", Query(3)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json results = Json::parse(r.out);
  ASSERT_TRUE(results.is_array());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0]["query"], Query(3));
  EXPECT_THAT(results[0]["model_version"].get<std::string>(), StartsWith("enc-"));
  const Json& hits = results[0]["hits"];
  ASSERT_EQ(hits.size(), 4u);  // ranks 1..4, no 5th
  EXPECT_EQ(hits[3]["rank"], 4);
  EXPECT_TRUE(hits[0]["label_name"].is_string());
}

TEST_F(ClientServerTest, ContactSheetIsAPngOfTheLayoutSize) {
  const std::string sheet = absl::StrCat(*dir_, "/sheet.png");
  ProcessResult r =
      Client({"search", "--k", "5", "--sheet", sheet, Query(4), Query(5), Query(6)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("wrote contact sheet"));
  absl::StatusOr<std::string> bytes = ReadFile(sheet);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_EQ(DetectFormat(*bytes), ImageFormat::kPng);
  absl::StatusOr<Image> image = DecodePng(*bytes);
  ASSERT_TRUE(image.ok()) << image.status();
  // The contract of contact_sheet.h with default options: 6 cells per row
  // (query + 5 hits), 3 rows.
  const ContactSheetOptions o;
  const int caption_height = o.caption_lines * 10 + 2;
  EXPECT_EQ(image->width, 6 * (o.cell_size + o.padding) + o.padding);
  EXPECT_EQ(image->height,
            3 * (o.cell_size + caption_height + o.padding) + o.padding);
  EXPECT_EQ(image->channels, 3);
}

TEST_F(ClientServerTest, EncodePrintsOneVectorOfTheModelDim) {
  ProcessResult r = Client({"encode", Query(0)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> values =
      absl::StrSplit(r.out, ' ', absl::SkipWhitespace());
  ASSERT_EQ(values.size(), 64u);
  double norm = 0;
  for (const std::string& v : values) {
    double x;
    ASSERT_TRUE(absl::SimpleAtod(v, &x)) << v;
    norm += x * x;
  }
  EXPECT_NEAR(norm, 1.0, 1e-3);  // the reference encoder L2-normalizes
  ProcessResult j = Client({"encode", "--json", Query(0)});
  EXPECT_EQ(Json::parse(j.out)["dim"], 64);
  EXPECT_EQ(Json::parse(j.out)["embedding"].size(), 64u);
}

TEST_F(ClientServerTest, AddNeedsTheTokenThenRoundTripsThroughGetAndRemove) {
  ProcessResult denied = Client({"add", "--label", "Bag", Query(7)});
  EXPECT_EQ(denied.exit_code, kExitError);
  EXPECT_THAT(denied.err, StartsWith("error: UNAUTHENTICATED: "));
  EXPECT_EQ(std::count(denied.err.begin(), denied.err.end(), '\n'), 1);

  ProcessResult added =
      Client({"add", "--json", "--label", "Bag", Query(7)}, /*with_token=*/true);
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const Json added_json = Json::parse(added.out);
  ASSERT_EQ(added_json["ids"].size(), 1u) << added.out;
  const std::string id = absl::StrCat(added_json["ids"][0].get<int64_t>());

  const std::string got = absl::StrCat(*dir_, "/got.png");
  ProcessResult get = Client({"get", id, "-o", got});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  absl::StatusOr<std::string> got_bytes = ReadFile(got);
  ASSERT_TRUE(got_bytes.ok());
  absl::StatusOr<Image> got_image = DecodeImage(*got_bytes);
  ASSERT_TRUE(got_image.ok()) << got_image.status();
  EXPECT_EQ(got_image->width, 28);
  EXPECT_EQ(got_image->height, 28);

  ProcessResult self = Client({"search", "--k", "1", Query(7)});
  ASSERT_EQ(self.exit_code, 0);
  EXPECT_EQ(ParseTables(self.out).at(0).at(0).id, std::stoll(id));
  EXPECT_NEAR(ParseTables(self.out).at(0).at(0).distance, 0.0, 1e-4);

  ProcessResult removed = Client({"remove", id}, /*with_token=*/true);
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_THAT(removed.out, StartsWith("removed 1 image(s)"));
  ProcessResult gone = Client({"get", id, "-o", got});
  EXPECT_EQ(gone.exit_code, kExitError);
  EXPECT_THAT(gone.err, StartsWith("error: NOT_FOUND: "));
}

TEST_F(ClientServerTest, ServerErrorsArePrintedAsOneLineWithTheCode) {
  ProcessResult big_k = Client({"search", "--k", "100000", Query(0)});
  EXPECT_EQ(big_k.exit_code, kExitError);
  EXPECT_THAT(big_k.err, StartsWith("error: INVALID_ARGUMENT: "));
  EXPECT_EQ(std::count(big_k.err.begin(), big_k.err.end(), '\n'), 1);
  const std::string not_image = absl::StrCat(*dir_, "/server.log");
  ProcessResult bad = Client({"encode", not_image});
  EXPECT_EQ(bad.exit_code, kExitError);
  EXPECT_THAT(bad.err, StartsWith("error: INVALID_ARGUMENT: "));
}

TEST_F(ClientServerTest, InfoAndHealthDescribeTheServedBundle) {
  ProcessResult info = Client({"info"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("gallery size  1000"));
  EXPECT_THAT(info.out, HasSubstr("embedding dim 64"));
  EXPECT_THAT(info.out, HasSubstr("Ankle boot"));
  ProcessResult json = Client({"info", "--json"});
  EXPECT_EQ(Json::parse(json.out)["index_spec"], "Flat");
  ProcessResult health = Client({"health"});
  EXPECT_EQ(health.exit_code, 0);
  EXPECT_EQ(health.out, "SERVING\n");
}

TEST_F(ClientServerTest, ReloadSwapsInAnotherBundle) {
  ProcessResult before = Client({"info", "--json"});
  ProcessResult denied = Client({"reload", absl::StrCat(*dir_, "/bundle2")});
  EXPECT_EQ(denied.exit_code, kExitError);
  EXPECT_THAT(denied.err, HasSubstr("UNAUTHENTICATED"));
  ProcessResult r = Client({"reload", absl::StrCat(*dir_, "/bundle2")},
                           /*with_token=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("gallery size 1000"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("model (enc-[0-9a-f]+)")));
  EXPECT_THAT(before.out, ::testing::Not(HasSubstr(m[1].str())));
  // Put the first bundle back for the tests that follow in this process.
  EXPECT_EQ(Client({"reload", absl::StrCat(*dir_, "/bundle1")}, true).exit_code, 0);
}

TEST_F(ClientServerTest, BenchWithASmallRequestCountReportsZeroErrors) {
  ProcessResult r = Client({"bench", "--requests", "60", "--concurrency", "4",
                            "--num_images", "16", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json bench = Json::parse(r.out);
  EXPECT_EQ(bench["requests"], 60);
  EXPECT_EQ(bench["ok"], 60);
  EXPECT_EQ(bench["errors"], Json::object());
  EXPECT_GT(bench["latency_ms"]["p99"].get<double>(), 0.0);
  ProcessResult table = Client({"bench", "--requests", "8", Query(0), Query(1)});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("p99 ms"));
  EXPECT_THAT(table.out, HasSubstr("2 query images"));

  // The same over SearchStream: 4 streams share the 60 queries.
  ProcessResult stream = Client({"bench", "--requests", "60", "--concurrency", "4",
                                 "--num_images", "16", "--stream", "--json"});
  ASSERT_EQ(stream.exit_code, 0) << stream.err;
  const Json streamed = Json::parse(stream.out);
  EXPECT_EQ(streamed["rpc"], "SearchStream");
  EXPECT_EQ(streamed["requests"], 60);
  EXPECT_EQ(streamed["ok"], 60);
  EXPECT_EQ(streamed["errors"], Json::object());
}

TEST_F(ClientServerTest, BenchCountsServerErrorsByCode) {
  ProcessResult r = Client({"bench", "--requests", "10", "--k", "100000",
                            "--num_images", "4", "--json"});
  EXPECT_EQ(r.exit_code, kExitError);  // every call failed
  EXPECT_EQ(Json::parse(r.out)["errors"], Json({{"INVALID_ARGUMENT", 10}}));
  // A stream ends at its first bad query; the bench counts it and opens the
  // next stream, so every query is still accounted for.
  ProcessResult stream = Client({"bench", "--requests", "10", "--k", "100000", "--concurrency",
                                 "2", "--num_images", "4", "--stream", "--json"});
  EXPECT_EQ(stream.exit_code, kExitError);
  EXPECT_EQ(Json::parse(stream.out)["errors"], Json({{"INVALID_ARGUMENT", 10}}));
}

TEST_F(ClientServerTest, PythonExampleSearchesTheRealServer) {
  // The README's Python snippet: message classes from protoc, grpcio stub.
  const std::string py_out = absl::StrCat(*dir_, "/py");
  ASSERT_EQ(RunProcess({"/bin/mkdir", "-p", py_out}).exit_code, 0);
  ProcessResult protoc = RunProcess(
      {EMBEDSEARCH_PROTOC, absl::StrCat("-I", EMBEDSEARCH_SOURCE_DIR, "/proto"),
       absl::StrCat("--python_out=", py_out),
       absl::StrCat(EMBEDSEARCH_SOURCE_DIR, "/proto/embedsearch/v1/search.proto")});
  ASSERT_EQ(protoc.exit_code, 0) << protoc.err;
  ProcessResult r = RunProcess(
      {EMBEDSEARCH_PYTHON,
       absl::StrCat(EMBEDSEARCH_SOURCE_DIR, "/examples/python/search.py"),
       "--server", *address_, "--k", "3", Query(0)},
      {absl::StrCat("PYTHONPATH=", py_out)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("(model enc-"));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 4) << r.out;
  EXPECT_THAT(r.out, HasSubstr("   1  id "));
  EXPECT_THAT(r.out, HasSubstr("   3  id "));
}

}  // namespace
}  // namespace embedsearch
