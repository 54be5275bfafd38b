// The client without a server: argument parsing, output formats, usage
// errors (exit 2) and the one-line error when nothing listens (exit 1).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/args.h"
#include "client/bench.h"
#include "client/errors.h"
#include "client/output.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/subprocess.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Kind = FlagDef::Kind;

const std::string kClient =
    std::string(EMBEDSEARCH_BINARY_DIR) + "/client/embedsearch-client";

int LineCount(const std::string& text) {
  return static_cast<int>(
      std::vector<std::string>(absl::StrSplit(text, '\n', absl::SkipEmpty()))
          .size());
}

TEST(ClientArgs, ParsesValuesBoolsShortFlagsAndPositionals) {
  std::vector<FlagDef> defs = {{"k", Kind::kInt, "10", ""},
                               {"json", Kind::kBool, "false", ""},
                               {"o", Kind::kString, "", ""},
                               {"labels", Kind::kString, "", ""}};
  absl::StatusOr<ParsedArgs> a = ParseArgs(
      defs, {"a.png", "--k", "3", "--json", "-o", "x.png", "--labels=Bag,Coat",
             "--", "--b.png"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->Int("k"), 3);
  EXPECT_TRUE(a->Bool("json"));
  EXPECT_EQ(a->String("o"), "x.png");
  EXPECT_EQ(a->String("labels"), "Bag,Coat");
  EXPECT_THAT(a->positional, ::testing::ElementsAre("a.png", "--b.png"));
  EXPECT_TRUE(a->Given("k"));
}

TEST(ClientArgs, DefaultsApplyAndNoPrefixNegatesBools) {
  std::vector<FlagDef> defs = {{"k", Kind::kInt, "10", ""},
                               {"json", Kind::kBool, "true", ""}};
  absl::StatusOr<ParsedArgs> a = ParseArgs(defs, {"--nojson"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->Int("k"), 10);
  EXPECT_FALSE(a->Given("k"));
  EXPECT_FALSE(a->Bool("json"));
  EXPECT_FALSE(ParseArgs(defs, {"--json=false"})->Bool("json"));
  EXPECT_TRUE(ParseArgs(defs, {"--json=true"})->Bool("json"));
  EXPECT_TRUE(ParseArgs(defs, {"--nojson", "--json"})->Bool("json"));  // last wins
}

TEST(ClientArgs, RejectsUnknownFlagsMissingValuesAndNonNumbers) {
  std::vector<FlagDef> defs = {{"k", Kind::kInt, "10", ""},
                               {"duration", Kind::kDouble, "1", ""}};
  EXPECT_THAT(ParseArgs(defs, {"--bogus"}).status().message(),
              HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(ParseArgs(defs, {"--k"}).status().message(),
              HasSubstr("needs a value"));
  EXPECT_THAT(ParseArgs(defs, {"--k=ten"}).status().message(),
              HasSubstr("integer"));
  EXPECT_THAT(ParseArgs(defs, {"--duration", "x"}).status().message(),
              HasSubstr("number"));
  EXPECT_TRUE(ParseArgs(defs, {"--help"})->help);
}

TEST(ClientOutput, TableAlignsColumnsUnderAHeaderRule) {
  std::string table = FormatTable({"rank", "label"},
                                  {{"1", "Ankle boot"}, {"10", "Bag"}},
                                  {true, false});
  EXPECT_EQ(table,
            "rank  label\n"
            "----  ----------\n"
            "   1  Ankle boot\n"
            "  10  Bag\n");
}

TEST(ClientOutput, JsonStringEscapesQuotesAndControlCharacters) {
  EXPECT_EQ(JsonText(Json("a\"b\\c\nd\x01")), "\"a\\\"b\\\\c\\nd\\u0001\"");
  EXPECT_EQ(JsonText(Json(JsonNumber(0.5))), "0.5");
  EXPECT_EQ(JsonText(Json(JsonNumber(0.1f))), "0.100000001");  // a float's digits
  EXPECT_EQ(JsonText(Json(JsonNumber(std::numeric_limits<double>::quiet_NaN()))),
            "null");
}

TEST(ClientBench, PercentileIsNearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile({7.0}, 90), 7);
  EXPECT_EQ(Percentile({}, 50), 0);
}

TEST(ClientErrors, ConnectFailureBecomesOneExplainedLine) {
  grpc::Status refused(grpc::StatusCode::UNAVAILABLE,
                       "failed to connect to all addresses; last error: "
                       "UNKNOWN: ipv4:127.0.0.1:1: Connection refused");
  EXPECT_EQ(RpcErrorLine(refused, "127.0.0.1:1"),
            "error: UNAVAILABLE: cannot reach 127.0.0.1:1 (is the server "
            "running? check --server, --tls)");
  grpc::Status no_bundle(grpc::StatusCode::UNAVAILABLE, "no bundle loaded\nyet");
  EXPECT_EQ(RpcErrorLine(no_bundle, "h:1"),
            "error: UNAVAILABLE: no bundle loaded yet");
  grpc::Status not_found(grpc::StatusCode::NOT_FOUND, "no image with id 9");
  EXPECT_EQ(RpcErrorLine(not_found, "h:1"), "error: NOT_FOUND: no image with id 9");
}

TEST(ClientCli, NoCommandIsAUsageError) {
  ProcessResult r = RunProcess({kClient});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("no command given"));
  EXPECT_THAT(r.err, HasSubstr("commands:"));
}

TEST(ClientCli, UnknownCommandIsAUsageError) {
  ProcessResult r = RunProcess({kClient, "frobnicate"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'frobnicate'"));
}

TEST(ClientCli, BadSubcommandArgumentsAreUsageErrorsWithAMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"search"}, "needs at least one IMAGE"},
           {{"search", "--k=abc", "x.png"}, "--k takes an integer"},
           {{"search", "--k=0", "x.png"}, "--k must be at least 1"},
           {{"search", "--bogus", "x.png"}, "unknown flag --bogus"},
           {{"remove", "seven"}, "'seven' is not an image id"},
           {{"get"}, "get takes one ID"},
           {{"add", "x.png"}, "add needs --label"},
           {{"encode"}, "encode takes one IMAGE"},
           {{"reload"}, "reload takes one BUNDLE"},
           {{"bench", "--concurrency=0"}, "--concurrency must be at least 1"},
           {{"bench", "--requests=5", "--duration=2"}, "not both"},
       }) {
    std::vector<std::string> argv = {kClient, "--server=127.0.0.1:1"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    ProcessResult r = RunProcess(argv);
    EXPECT_EQ(r.exit_code, kExitUsage) << c.args[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args[0];
    EXPECT_THAT(r.err, StartsWith("error: ")) << c.args[0];
    EXPECT_EQ(LineCount(r.err), 1) << r.err;
  }
}

TEST(ClientCli, SubcommandHelpListsItsFlagsAndExitsZero) {
  ProcessResult r = RunProcess({kClient, "bench", "--help"});
  EXPECT_EQ(r.exit_code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("usage: embedsearch-client [global flags] bench"));
  EXPECT_THAT(r.out, HasSubstr("--concurrency=1"));
  EXPECT_THAT(r.out, HasSubstr("--server=localhost:50051"));
  ProcessResult top = RunProcess({kClient, "--help"});
  EXPECT_EQ(top.exit_code, kExitOk);
  EXPECT_THAT(top.out, HasSubstr("search"));
}

TEST(ClientCli, ConnectionRefusedPrintsOneLineAndExitsOne) {
  const int port = PickFreePort();  // nothing listens there
  const std::string server = absl::StrCat("127.0.0.1:", port);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"info"}, {"health"}, {"remove", "3"}}) {
    std::vector<std::string> argv = {kClient, "--server", server};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv);
    EXPECT_EQ(r.exit_code, kExitError) << args[0];
    EXPECT_EQ(r.err, absl::StrCat("error: UNAVAILABLE: cannot reach ", server,
                                  " (is the server running? check --server, "
                                  "--tls)\n"))
        << args[0];
    EXPECT_EQ(r.out, "");
  }
}

TEST(ClientCli, ServerComesFromTheEnvironmentUnlessTheFlagIsGiven) {
  const std::string env_server = absl::StrCat("127.0.0.1:", PickFreePort());
  ProcessResult r = RunProcess({kClient, "info"},
                               {absl::StrCat("EMBEDSEARCH_SERVER=", env_server)});
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_THAT(r.err, HasSubstr(env_server));
  const std::string flag_server = absl::StrCat("127.0.0.1:", PickFreePort());
  ProcessResult f = RunProcess({kClient, "info", "--server", flag_server},
                               {absl::StrCat("EMBEDSEARCH_SERVER=", env_server)});
  EXPECT_THAT(f.err, HasSubstr(flag_server));
}

TEST(ClientCli, UnreadableImageIsAnErrorNamingTheFile) {
  ProcessResult r = RunProcess(
      {kClient, "--server=127.0.0.1:1", "search", "/nonexistent/q.png"});
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/q.png"));
  EXPECT_EQ(LineCount(r.err), 1) << r.err;
}

}  // namespace
}  // namespace embedsearch
