#include "client/commands.h"

#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <functional>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/args.h"
#include "client/bench.h"
#include "client/errors.h"
#include "client/output.h"
#include "client/result_sheet.h"
#include "core/data/dataset.h"
#include "core/image/image.h"
#include "core/util/file.h"
#include "embedsearch/v1/search.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace embedsearch {
namespace {

namespace pb = ::embedsearch::v1;
using Kind = FlagDef::Kind;

constexpr char kDefaultFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// Everything a subcommand needs: parsed args, connection options, streams.
struct Call {
  const std::string& name;
  const ParsedArgs& args;
  ClientOptions& options;
  std::ostream& out;
  std::ostream& err;
};

struct Command {
  std::string name;
  std::string synopsis;  // arguments after the name
  std::string summary;
  std::vector<FlagDef> flags;
  std::function<int(Call&)> run;
};

std::vector<FlagDef> GlobalFlags() {
  return {
      {"server", Kind::kString, "localhost:50051",
       "host:port of the server (env EMBEDSEARCH_SERVER)"},
      {"token", Kind::kString, "", "token for add/remove/reload (env EMBEDSEARCH_TOKEN)"},
      {"tls", Kind::kBool, "false", "connect with TLS"},
      {"ca_cert", Kind::kString, "", "PEM file of the CA that signed the server (with --tls)"},
      {"timeout", Kind::kDouble, "10", "seconds per call"},
  };
}

void ApplyGlobalFlags(const ParsedArgs& args, ClientOptions& options) {
  if (args.Given("server")) options.server = args.String("server");
  if (args.Given("token")) options.token = args.String("token");
  if (args.Given("tls")) options.tls = args.Bool("tls");
  if (args.Given("ca_cert")) options.ca_cert = args.String("ca_cert");
  if (args.Given("timeout")) options.timeout_seconds = args.Double("timeout");
}

int Usage(Call& c, const std::string& message) {
  c.err << "error: " << c.name << ": " << message
        << " (see embedsearch-client " << c.name << " --help)\n";
  return kExitUsage;
}

int RpcError(Call& c, const grpc::Status& status) {
  c.err << RpcErrorLine(status, c.options.server) << "\n";
  return kExitError;
}

int LocalError(Call& c, const absl::Status& status) {
  c.err << LocalErrorLine(status) << "\n";
  return kExitError;
}

// A stub, or nullptr after printing the error.
std::unique_ptr<pb::ImageSearch::Stub> NewStub(Call& c) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(c.options);
  if (!channel.ok()) {
    LocalError(c, channel.status());
    return nullptr;
  }
  return pb::ImageSearch::NewStub(*channel);
}

absl::StatusOr<std::string> ReadImageFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(),
                        absl::StrCat("cannot read image ", path, ": ",
                                     bytes.status().message()));
  }
  return bytes;
}

absl::StatusOr<std::vector<int64_t>> ParseIds(
    const std::vector<std::string>& texts) {
  std::vector<int64_t> ids;
  for (const std::string& text : texts) {
    for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
      int64_t id;
      if (!absl::SimpleAtoi(part, &id)) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", part, "' is not an image id (an integer)"));
      }
      ids.push_back(id);
    }
  }
  return ids;
}

std::string HitsTable(const pb::SearchResponse& response) {
  std::vector<std::vector<std::string>> rows;
  int rank = 0;
  for (const pb::Hit& hit : response.hits()) {
    rows.push_back({absl::StrCat(++rank), absl::StrCat(hit.id()),
                    hit.label_name(), absl::StrFormat("%.4f", hit.distance()),
                    hit.source()});
  }
  return FormatTable({"rank", "id", "label", "distance", "source"}, rows,
                     {true, true, false, true, false});
}

Json HitsJson(const pb::SearchResponse& response) {
  Json hits = Json::array();
  int rank = 0;
  for (const pb::Hit& hit : response.hits()) {
    hits.push_back({{"rank", ++rank},
                    {"id", hit.id()},
                    {"label", hit.label()},
                    {"label_name", hit.label_name()},
                    {"distance", JsonNumber(hit.distance())},
                    {"source", hit.source()}});
  }
  return hits;
}

// ---- search ---------------------------------------------------------------

int RunSearch(Call& c) {
  const ParsedArgs& a = c.args;
  absl::StatusOr<std::vector<int64_t>> ids =
      ParseIds(a.Given("ids") ? std::vector<std::string>{a.String("ids")}
                              : std::vector<std::string>{});
  if (!ids.ok()) return Usage(c, std::string(ids.status().message()));
  if (a.positional.empty() && ids->empty()) {
    return Usage(c, "search needs at least one IMAGE file (or --ids)");
  }
  if (a.Int("k") < 1) return Usage(c, "--k must be at least 1");
  const std::string sheet_path = a.String("sheet");
  const bool want_sheet = !sheet_path.empty();
  std::vector<std::string> labels =
      absl::StrSplit(a.String("labels"), ',', absl::SkipEmpty());

  auto stub = NewStub(c);
  if (stub == nullptr) return kExitError;

  struct Query {
    std::string name;
    pb::SearchRequest request;
  };
  std::vector<Query> queries;
  for (const std::string& path : a.positional) {
    absl::StatusOr<std::string> bytes = ReadImageFile(path);
    if (!bytes.ok()) return LocalError(c, bytes.status());
    Query q;
    q.name = path;
    q.request.set_image(*std::move(bytes));
    queries.push_back(std::move(q));
  }
  for (int64_t id : *ids) {
    Query q;
    q.name = absl::StrCat("id:", id);
    q.request.set_id(id);
    queries.push_back(std::move(q));
  }

  std::vector<ResultRow> sheet_rows;
  Json json_results = Json::array();
  for (size_t i = 0; i < queries.size(); ++i) {
    Query& q = queries[i];
    q.request.set_k(static_cast<uint32_t>(a.Int("k")));
    for (const std::string& label : labels) q.request.add_label_filter(label);
    q.request.set_include_images(want_sheet);
    q.request.set_nprobe(static_cast<uint32_t>(a.Int("nprobe")));
    q.request.set_ef_search(static_cast<uint32_t>(a.Int("ef_search")));
    pb::SearchResponse response;
    grpc::ClientContext context;
    ConfigureContext(c.options, context);
    grpc::Status status = stub->Search(&context, q.request, &response);
    if (!status.ok()) {
      if (queries.size() > 1) c.err << "query " << q.name << ": ";
      return RpcError(c, status);
    }
    if (a.Bool("json")) {
      json_results.push_back({{"query", q.name},
                              {"model_version", response.model_version()},
                              {"hits", HitsJson(response)}});
    } else {
      if (i > 0) c.out << "\n";
      c.out << "query " << (i + 1) << "/" << queries.size() << ": " << q.name
            << "  (" << response.hits_size() << " hits, model "
            << response.model_version() << ")\n"
            << HitsTable(response);
    }
    if (want_sheet) {
      ResultRow row;
      row.query_caption = std::filesystem::path(q.name).filename().string();
      std::string query_bytes = q.request.image();
      if (q.request.query_case() == pb::SearchRequest::kId) {
        pb::GetImageRequest get;
        get.set_id(q.request.id());
        pb::GetImageResponse got;
        grpc::ClientContext get_context;
        ConfigureContext(c.options, get_context);
        grpc::Status s = stub->GetImage(&get_context, get, &got);
        if (!s.ok()) return RpcError(c, s);
        query_bytes = got.image_png();
      }
      absl::StatusOr<Image> query_image = DecodeImage(query_bytes);
      if (!query_image.ok()) {
        return LocalError(c, absl::InvalidArgumentError(absl::StrCat(
                                 "cannot decode ", q.name, " for the sheet: ",
                                 query_image.status().message())));
      }
      row.query = *std::move(query_image);
      row.response = std::move(response);
      sheet_rows.push_back(std::move(row));
    }
  }
  if (a.Bool("json")) c.out << JsonText(json_results) << "\n";
  if (want_sheet) {
    absl::StatusOr<Image> sheet = ComposeResultSheet(sheet_rows);
    if (!sheet.ok()) return LocalError(c, sheet.status());
    absl::StatusOr<std::string> png = EncodePng(*sheet);
    if (!png.ok()) return LocalError(c, png.status());
    if (absl::Status s = WriteFileAtomically(sheet_path, *png); !s.ok()) {
      return LocalError(c, s);
    }
    // On stderr so that --json output stays machine-readable.
    c.err << "wrote contact sheet " << sheet_path << " (" << sheet->width << "x"
          << sheet->height << ")\n";
  }
  return kExitOk;
}

// ---- encode ---------------------------------------------------------------

int RunEncode(Call& c) {
  if (c.args.positional.size() != 1) return Usage(c, "encode takes one IMAGE");
  absl::StatusOr<std::string> bytes = ReadImageFile(c.args.positional[0]);
  if (!bytes.ok()) return LocalError(c, bytes.status());
  auto stub = NewStub(c);
  if (stub == nullptr) return kExitError;
  pb::EncodeRequest request;
  request.set_image(*std::move(bytes));
  pb::EncodeResponse response;
  grpc::ClientContext context;
  ConfigureContext(c.options, context);
  grpc::Status status = stub->Encode(&context, request, &response);
  if (!status.ok()) return RpcError(c, status);
  Json values = Json::array();
  for (float v : response.embedding().values()) values.push_back(JsonNumber(v));
  if (c.args.Bool("json")) {
    c.out << JsonText({{"model_version", response.model_version()},
                       {"dim", values.size()},
                       {"embedding", values}})
          << "\n";
  } else {
    std::vector<std::string> texts;
    for (const Json& v : values) texts.push_back(JsonText(v));
    c.out << absl::StrJoin(texts, " ") << "\n";
  }
  return kExitOk;
}

// ---- add / remove ---------------------------------------------------------

int RunAdd(Call& c) {
  const ParsedArgs& a = c.args;
  if (a.String("label").empty()) return Usage(c, "add needs --label NAME");
  if (a.positional.empty()) return Usage(c, "add needs at least one IMAGE");
  pb::AddImagesRequest request;
  for (const std::string& path : a.positional) {
    absl::StatusOr<std::string> bytes = ReadImageFile(path);
    if (!bytes.ok()) return LocalError(c, bytes.status());
    pb::NewImage* image = request.add_images();
    image->set_image(*std::move(bytes));
    image->set_label_name(a.String("label"));
    image->set_source(a.Given("source") ? a.String("source") : path);
  }
  auto stub = NewStub(c);
  if (stub == nullptr) return kExitError;
  pb::AddImagesResponse response;
  grpc::ClientContext context;
  ConfigureContext(c.options, context);
  grpc::Status status = stub->AddImages(&context, request, &response);
  if (!status.ok()) return RpcError(c, status);
  std::vector<int64_t> ids(response.ids().begin(), response.ids().end());
  if (a.Bool("json")) {
    c.out << JsonText({{"ids", ids}, {"gallery_size", response.gallery_size()}})
          << "\n";
  } else {
    c.out << "added " << ids.size() << " image(s) as '" << a.String("label")
          << "': ids " << absl::StrJoin(ids, " ") << "; gallery size "
          << response.gallery_size() << "\n";
  }
  return kExitOk;
}

int RunRemove(Call& c) {
  if (c.args.positional.empty()) return Usage(c, "remove needs at least one ID");
  absl::StatusOr<std::vector<int64_t>> ids = ParseIds(c.args.positional);
  if (!ids.ok()) return Usage(c, std::string(ids.status().message()));
  auto stub = NewStub(c);
  if (stub == nullptr) return kExitError;
  pb::RemoveImagesRequest request;
  for (int64_t id : *ids) request.add_ids(id);
  pb::RemoveImagesResponse response;
  grpc::ClientContext context;
  ConfigureContext(c.options, context);
  grpc::Status status = stub->RemoveImages(&context, request, &response);
  if (!status.ok()) return RpcError(c, status);
  if (c.args.Bool("json")) {
    c.out << JsonText({{"removed", response.removed()},
                       {"gallery_size", response.gallery_size()}})
          << "\n";
  } else {
    c.out << "removed " << response.removed() << " image(s); gallery size "
          << response.gallery_size() << "\n";
  }
  return kExitOk;
}

// ---- get ------------------------------------------------------------------

int RunGet(Call& c) {
  if (c.args.positional.size() != 1) return Usage(c, "get takes one ID");
  absl::StatusOr<std::vector<int64_t>> ids = ParseIds(c.args.positional);
  if (!ids.ok()) return Usage(c, std::string(ids.status().message()));
  if (ids->size() != 1) return Usage(c, "get takes one ID");
  const int64_t id = (*ids)[0];
  const std::string path =
      c.args.String("o").empty() ? absl::StrCat(id, ".png") : c.args.String("o");
  auto stub = NewStub(c);
  if (stub == nullptr) return kExitError;
  pb::GetImageRequest request;
  request.set_id(id);
  pb::GetImageResponse response;
  grpc::ClientContext context;
  ConfigureContext(c.options, context);
  grpc::Status status = stub->GetImage(&context, request, &response);
  if (!status.ok()) return RpcError(c, status);
  if (absl::Status s = WriteFileAtomically(path, response.image_png()); !s.ok()) {
    return LocalError(c, s);
  }
  c.out << "wrote " << path << ": id " << response.id() << ", label "
        << response.label_name() << ", source " << response.source() << "\n";
  return kExitOk;
}

// ---- info -----------------------------------------------------------------

int RunInfo(Call& c) {
  auto stub = NewStub(c);
  if (stub == nullptr) return kExitError;
  pb::GetInfoResponse info;
  grpc::ClientContext context;
  ConfigureContext(c.options, context);
  grpc::Status status = stub->GetInfo(&context, pb::GetInfoRequest(), &info);
  if (!status.ok()) return RpcError(c, status);
  if (c.args.Bool("json")) {
    Json stats = Json::array();
    for (const pb::LatencyStats& s : info.stats()) {
      stats.push_back({{"method", s.method()},
                       {"count", s.count()},
                       {"errors", s.errors()},
                       {"p50_ms", JsonNumber(s.p50_ms())},
                       {"p90_ms", JsonNumber(s.p90_ms())},
                       {"p99_ms", JsonNumber(s.p99_ms())},
                       {"max_ms", JsonNumber(s.max_ms())}});
    }
    const std::vector<std::string> labels(info.label_names().begin(),
                                          info.label_names().end());
    Json doc = {{"model_version", info.model_version()},
                {"dim", info.dim()},
                {"metric", info.metric()},
                {"index_spec", info.index_spec()},
                {"gallery_size", info.gallery_size()},
                {"label_names", labels},
                {"bundle_path", info.bundle_path()},
                {"read_only", info.read_only()},
                {"input_height", info.input_height()},
                {"input_width", info.input_width()},
                {"input_channels", info.input_channels()},
                {"uptime_seconds", JsonNumber(info.uptime_seconds())},
                {"stats", stats}};
    if (!info.catalog().empty()) {  // A shared PostgreSQL catalog.
      doc["catalog"] = info.catalog();
      doc["catalog_reachable"] = info.catalog_reachable();
      doc["applied_sequence"] = info.applied_sequence();
      doc["replication_lag_seconds"] = JsonNumber(info.replication_lag_seconds());
    }
    c.out << JsonText(doc) << "\n";
    return kExitOk;
  }
  c.out << "server        " << c.options.server << "\n"
        << "model version " << info.model_version() << "\n"
        << "input         " << info.input_height() << "x" << info.input_width()
        << (info.input_channels() > 1 ? absl::StrCat("x", info.input_channels()) : "")
        << "\n"
        << "embedding dim " << info.dim() << "\n"
        << "metric        " << info.metric() << "\n"
        << "index         " << info.index_spec() << "\n"
        << "gallery size  " << info.gallery_size() << "\n"
        << "labels        " << absl::StrJoin(info.label_names(), ", ") << "\n"
        << "bundle        " << info.bundle_path()
        << (info.read_only() ? " (read-only: add and remove are refused)" : "")
        << "\n"
        << "uptime        " << absl::StrFormat("%.0f s", info.uptime_seconds())
        << "\n";
  if (info.held_out_label_names_size() > 0) {  // trainer --holdout_classes
    c.out << "never trained " << info.held_out_label_names_size()
          << " labels: " << absl::StrJoin(info.held_out_label_names(), ", ")
          << "\n";
  }
  if (!info.catalog().empty()) {  // A shared PostgreSQL catalog.
    c.out << "catalog       " << info.catalog()
          << (info.catalog_reachable() ? "" : " (unreachable: writes refused)")
          << "\n"
          << "replication   applied sequence " << info.applied_sequence()
          << absl::StrFormat(", lag %.1f ms",
                             info.replication_lag_seconds() * 1000)
          << "\n";
  }
  if (info.stats_size() > 0) {
    std::vector<std::vector<std::string>> rows;
    for (const pb::LatencyStats& s : info.stats()) {
      rows.push_back({s.method(), absl::StrCat(s.count()),
                      absl::StrCat(s.errors()), absl::StrFormat("%.3f", s.p50_ms()),
                      absl::StrFormat("%.3f", s.p90_ms()),
                      absl::StrFormat("%.3f", s.p99_ms()),
                      absl::StrFormat("%.3f", s.max_ms())});
    }
    c.out << "\n"
          << FormatTable({"method", "calls", "errors", "p50 ms", "p90 ms",
                          "p99 ms", "max ms"},
                         rows, {false, true, true, true, true, true, true});
  }
  return kExitOk;
}

// ---- health ---------------------------------------------------------------

// grpc.health.v1.Health/Check through the generic stub: the two messages
// are one string field and one enum field, so they are encoded by hand
// rather than linking generated code that the server may also carry.
int RunHealth(Call& c) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(c.options);
  if (!channel.ok()) return LocalError(c, channel.status());
  grpc::GenericStub stub(*channel);
  const std::string service = c.args.String("service");
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0a);  // field 1, length-delimited
    uint64_t n = service.size();
    while (n >= 0x80) {
      request.push_back(static_cast<char>((n & 0x7f) | 0x80));
      n >>= 7;
    }
    request.push_back(static_cast<char>(n));
    request += service;
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  grpc::ClientContext context;
  ConfigureContext(c.options, context);
  absl::Mutex mu;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check",
                 grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&](grpc::Status s) {
                   absl::MutexLock lock(&mu);
                   status = std::move(s);
                   done = true;
                 });
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&done));
  }
  if (!status.ok()) return RpcError(c, status);
  std::vector<grpc::Slice> slices;
  std::string response;
  if (response_buffer.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      response.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  // HealthCheckResponse{status = 1 (varint)}; absent means UNKNOWN (0).
  int code = 0;
  if (response.size() >= 2 && response[0] == 0x08) code = response[1] & 0x7f;
  static const char* const kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING",
                                       "SERVICE_UNKNOWN"};
  const std::string name = code >= 0 && code < 4 ? kNames[code] : "UNKNOWN";
  c.out << name << "\n";
  return code == 1 ? kExitOk : kExitError;
}

// ---- reload ---------------------------------------------------------------

int RunReload(Call& c) {
  if (c.args.positional.size() != 1) {
    return Usage(c, "reload takes one BUNDLE directory (a path on the server)");
  }
  auto stub = NewStub(c);
  if (stub == nullptr) return kExitError;
  pb::ReloadRequest request;
  request.set_bundle_path(c.args.positional[0]);
  pb::ReloadResponse response;
  grpc::ClientContext context;
  ConfigureContext(c.options, context);
  grpc::Status status = stub->Reload(&context, request, &response);
  if (!status.ok()) return RpcError(c, status);
  c.out << "reloaded " << request.bundle_path() << ": model "
        << response.model_version() << ", gallery size "
        << response.gallery_size() << "\n";
  return kExitOk;
}

// ---- bench ----------------------------------------------------------------

int RunBenchCommand(Call& c) {
  const ParsedArgs& a = c.args;
  BenchOptions options;
  options.concurrency = static_cast<int>(a.Int("concurrency"));
  options.requests = a.Int("requests");
  options.duration_seconds = a.Double("duration");
  options.k = static_cast<int>(a.Int("k"));
  options.channels = static_cast<int>(a.Int("channels"));
  options.warmup_requests = a.Int("warmup");
  options.stream = a.Bool("stream");
  if (options.concurrency < 1) return Usage(c, "--concurrency must be at least 1");
  if (options.channels < 1) return Usage(c, "--channels must be at least 1");
  if (options.k < 1) return Usage(c, "--k must be at least 1");
  if (options.requests < 0) return Usage(c, "--requests must not be negative");
  if (options.warmup_requests < 0) return Usage(c, "--warmup must not be negative");
  if (options.requests == 0 && !(options.duration_seconds > 0)) {
    return Usage(c, "give --requests N or a positive --duration S");
  }
  if (a.Given("requests") && a.Given("duration")) {
    return Usage(c, "give --requests or --duration, not both");
  }
  if (a.Int("num_images") < 1) return Usage(c, "--num_images must be at least 1");

  std::vector<std::string> queries;
  if (!a.positional.empty()) {
    for (const std::string& path : a.positional) {
      absl::StatusOr<std::string> bytes = ReadImageFile(path);
      if (!bytes.ok()) return LocalError(c, bytes.status());
      queries.push_back(*std::move(bytes));
    }
  } else {
    absl::StatusOr<std::vector<std::string>> loaded = LoadFashionMnistQueries(
        a.String("dataset_dir"), static_cast<int>(a.Int("num_images")));
    if (!loaded.ok()) {
      return LocalError(c, absl::Status(loaded.status().code(),
                                        absl::StrCat("query images: ",
                                                     loaded.status().message())));
    }
    queries = *std::move(loaded);
  }
  absl::StatusOr<BenchResult> result = RunBench(c.options, queries, options);
  if (!result.ok()) return LocalError(c, result.status());
  if (a.Bool("json")) {
    c.out << BenchResultJson(*result) << "\n";
  } else {
    c.out << "bench: " << (options.stream ? "SearchStream" : "Search")
          << " k=" << options.k << " against " << c.options.server
          << ", " << queries.size() << " query images, " << options.channels
          << " connection(s)\n"
          << FormatBenchTable(*result);
  }
  // Every call failing (e.g. no server) is an error of the run itself.
  if (result->ok == 0 && result->completed > 0) {
    c.err << result->first_error << "\n";
    return kExitError;
  }
  return kExitOk;
}

// ---- samples --------------------------------------------------------------

// Writes Fashion-MNIST test images as PNG files, so there is something to
// search with: "<out>/<index>-<label name>.png", the first `per_class`
// test images of each class.
int RunSamples(Call& c) {
  const ParsedArgs& a = c.args;
  if (!a.positional.empty()) return Usage(c, "samples takes no positional arguments");
  if (a.Int("per_class") < 1) return Usage(c, "--per_class must be at least 1");
  absl::StatusOr<Dataset> test = LoadFashionMnist(a.String("dataset_dir"), "t10k");
  if (!test.ok()) return LocalError(c, test.status());
  const std::string dir = a.String("out");
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return LocalError(c, ErrnoStatus(errno, "mkdir", dir));
  }
  std::vector<int64_t> taken(test->label_names.size(), 0);
  for (size_t i = 0; i < test->size(); ++i) {
    const int32_t label = test->labels[i];
    if (taken[label] >= a.Int("per_class")) continue;
    ++taken[label];
    std::string name = test->label_names[label];
    for (char& ch : name) {
      if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
    }
    const std::string path = absl::StrCat(dir, "/", i, "-", name, ".png");
    absl::StatusOr<std::string> png = EncodePng(test->GetImage(i));
    if (!png.ok()) return LocalError(c, png.status());
    if (absl::Status s = WriteFileAtomically(path, *png); !s.ok()) {
      return LocalError(c, s);
    }
    c.out << path << "\n";
  }
  return kExitOk;
}

const std::vector<Command>& Commands() {
  static const auto* const kCommands = new std::vector<Command>{
      {"search", "IMAGE... [--ids ID,...]",
       "nearest gallery images to each query image, as a ranked table",
       {{"k", Kind::kInt, "10", "hits per query"},
        {"labels", Kind::kString, "", "only hits with these label names (comma list)"},
        {"json", Kind::kBool, "false", "print JSON instead of tables"},
        {"sheet", Kind::kString, "", "also write a contact sheet PNG here"},
        {"ids", Kind::kString, "", "also query by stored image ids (comma list)"},
        {"nprobe", Kind::kInt, "0", "IVF search effort (0 = server default)"},
        {"ef_search", Kind::kInt, "0", "HNSW search effort (0 = server default)"}},
       RunSearch},
      {"encode", "IMAGE", "the embedding the server computes for an image",
       {{"json", Kind::kBool, "false", "print JSON with the model version"}},
       RunEncode},
      {"add", "--label NAME IMAGE...", "add images to the gallery (needs --token)",
       {{"label", Kind::kString, "", "label name of the new images"},
        {"source", Kind::kString, "", "source text (default: the file path)"},
        {"json", Kind::kBool, "false", "print JSON"}},
       RunAdd},
      {"remove", "ID...", "remove images from the gallery (needs --token)",
       {{"json", Kind::kBool, "false", "print JSON"}},
       RunRemove},
      {"get", "ID [-o FILE]", "save a stored image as PNG",
       {{"o", Kind::kString, "", "output file (default: ID.png)"}},
       RunGet},
      {"info", "", "model, index, gallery and per-method latency of the server",
       {{"json", Kind::kBool, "false", "print JSON"}},
       RunInfo},
      {"health", "", "gRPC health check; exit 0 only when SERVING",
       {{"service", Kind::kString, "", "service name to check (default: server)"}},
       RunHealth},
      {"reload", "BUNDLE", "make the server load another bundle (needs --token)",
       {}, RunReload},
      {"bench", "[IMAGE...]",
       "load generator for Search: throughput, latency percentiles, errors",
       {{"concurrency", Kind::kInt, "1", "calls in flight"},
        {"duration", Kind::kDouble, "10", "seconds to run (unless --requests)"},
        {"requests", Kind::kInt, "0", "number of calls (instead of --duration)"},
        {"k", Kind::kInt, "10", "hits per query"},
        {"channels", Kind::kInt, "1", "TCP connections to spread calls over"},
        {"warmup", Kind::kInt, "0", "calls sent first and not counted"},
        {"stream", Kind::kBool, "false",
         "send the queries over SearchStream, one stream per --concurrency slot"},
        {"dataset_dir", Kind::kString, kDefaultFashionMnistDir,
         "Fashion-MNIST dir (queries from t10k, when no IMAGE is given)"},
        {"num_images", Kind::kInt, "1000", "how many test images to cycle through"},
        {"json", Kind::kBool, "false", "print one JSON object"}},
       RunBenchCommand},
      {"samples", "--out DIR",
       "write Fashion-MNIST test images as PNG files to query with (no server)",
       {{"out", Kind::kString, "samples", "output directory"},
        {"per_class", Kind::kInt, "1", "images per class"},
        {"dataset_dir", Kind::kString, kDefaultFashionMnistDir,
         "Fashion-MNIST dir (gzipped IDX)"}},
       RunSamples},
  };
  return *kCommands;
}

std::string CommandHelp(const Command& command) {
  std::vector<FlagDef> globals = GlobalFlags();
  return absl::StrCat("usage: embedsearch-client [global flags] ", command.name,
                      command.synopsis.empty() ? "" : " ", command.synopsis,
                      "\n\n", command.summary, "\n",
                      command.flags.empty() ? "" : "\nflags:\n",
                      FlagsHelp(command.flags), "\nglobal flags:\n",
                      FlagsHelp(globals));
}

}  // namespace

std::string ProgramUsage() {
  std::string out =
      "usage: embedsearch-client [global flags] COMMAND [args] "
      "(COMMAND --help for its flags)\n\ncommands:\n";
  for (const Command& command : Commands()) {
    absl::StrAppend(&out, absl::StrFormat("  %-8s %s\n", command.name,
                                          command.summary));
  }
  absl::StrAppend(&out, "\nglobal flags:\n", FlagsHelp(GlobalFlags()),
                  "\nexit codes: 0 ok, 1 error (server or local), 2 usage\n");
  return out;
}

int RunClient(const std::vector<std::string>& args, std::ostream& out,
              std::ostream& err) {
  // The subcommand is the first argument that is neither a flag nor the
  // value of a global flag given as "--flag value".
  const std::vector<FlagDef> globals = GlobalFlags();
  size_t sub = 0;
  bool after_dashes = false;
  for (; sub < args.size(); ++sub) {
    const std::string& arg = args[sub];
    if (arg == "--") {
      after_dashes = true;
      ++sub;
      break;
    }
    if (arg.empty() || arg[0] != '-' || arg == "-") break;
    if (arg.find('=') != std::string::npos) continue;
    const std::string name = arg.substr(arg.rfind('-') + 1);
    for (const FlagDef& def : globals) {
      if (def.name == name && def.kind != Kind::kBool) ++sub;  // its value
    }
  }
  std::vector<std::string> before(args.begin(), args.begin() + std::min(sub, args.size()));
  if (after_dashes) before.pop_back();
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(globals, before);
  if (parsed.ok() && parsed->help) {
    out << ProgramUsage();
    return kExitOk;
  }
  if (!parsed.ok()) {
    err << "error: " << parsed.status().message()
        << " (try: embedsearch-client --help)\n";
    return kExitUsage;
  }
  ClientOptions options;
  ApplyEnvironment(options);  // flags take precedence
  ApplyGlobalFlags(*parsed, options);
  if (sub >= args.size()) {
    err << "error: no command given\n\n" << ProgramUsage();
    return kExitUsage;
  }
  const std::vector<std::string> rest(args.begin() + sub + 1, args.end());
  return RunCommand(args[sub], rest, options, out, err);
}

int RunCommand(const std::string& name, const std::vector<std::string>& args,
               ClientOptions options, std::ostream& out, std::ostream& err) {
  if (name == "help") {
    out << ProgramUsage();
    return kExitOk;
  }
  const Command* command = nullptr;
  for (const Command& candidate : Commands()) {
    if (candidate.name == name) command = &candidate;
  }
  if (command == nullptr) {
    err << "error: unknown command '" << name
        << "' (try: embedsearch-client --help)\n";
    return kExitUsage;
  }
  std::vector<FlagDef> defs = command->flags;
  for (FlagDef& global : GlobalFlags()) defs.push_back(std::move(global));
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(defs, args);
  if (!parsed.ok()) {
    err << "error: " << name << ": " << parsed.status().message()
        << " (see embedsearch-client " << name << " --help)\n";
    return kExitUsage;
  }
  if (parsed->help) {
    out << CommandHelp(*command);
    return kExitOk;
  }
  ApplyGlobalFlags(*parsed, options);
  Call call{name, *parsed, options, out, err};
  return command->run(call);
}

}  // namespace embedsearch
