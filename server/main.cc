// embedsearch-server: parses flags and calls RunServer.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/index/pg_catalog.h"
#include "server/server.h"

ABSL_FLAG(std::string, bundle, "",
          "Bundle directory to serve. Empty: start without one "
          "(UNAVAILABLE until Reload).");
ABSL_FLAG(std::string, address, "0.0.0.0:50051",
          "host:port to listen on; port 0 picks a free port (logged).");
ABSL_FLAG(int, port, -1,
          "If >= 0, replaces the port of --address (0 picks a free port).");
ABSL_FLAG(std::string, token, "",
          "Bearer token required by AddImages, RemoveImages and Reload. "
          "Falls back to $EMBEDSEARCH_TOKEN; empty: no auth.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain (enables TLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key (with --tls_cert).");
ABSL_FLAG(int, max_message_bytes, 16 << 20,
          "Largest request or response message; bigger requests get "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_k, 1000, "Largest k a query may ask for.");
ABSL_FLAG(int, max_concurrent_streams, 64,
          "Concurrent calls per client connection (HTTP/2 streams).");
ABSL_FLAG(int, threads, 0,
          "Requests computing at once (each single-threaded); 0: one per "
          "CPU core.");
ABSL_FLAG(int, max_grpc_threads, 256,
          "gRPC handler threads (mostly idle); keep above the number of "
          "concurrent calls.");
ABSL_FLAG(int64_t, max_image_pixels, 40'000'000,
          "Images with more pixels are refused (INVALID_ARGUMENT) before "
          "any pixel buffer is allocated.");
ABSL_FLAG(int, max_image_side, 20'000,
          "Images wider or taller than this are refused.");
ABSL_FLAG(int, max_picture_side, 256,
          "AddImages: longest side of the pictures the gallery stores (larger "
          "ones are shrunk; 0: as given)");
ABSL_FLAG(std::string, allowed_bundle_roots, "",
          "Comma-separated directories Reload may load bundles from. Empty: "
          "the parent directory of --bundle (or Reload disabled without it).");
ABSL_FLAG(std::string, metrics_address, "",
          "host:port for Prometheus metrics over HTTP (GET /metrics), e.g. "
          "0.0.0.0:9464. Empty: no metrics endpoint.");
ABSL_FLAG(std::string, catalog, "",
          "Shared PostgreSQL catalog (postgresql://user@host:port/db or "
          "key=value) that replicas serve and write together; falls back to "
          "$EMBEDSEARCH_CATALOG. Empty: the bundle's own SQLite catalog. "
          "Give the password through PGPASSWORD or ~/.pgpass; a DSN on the "
          "command line is blanked out of the process arguments.");
ABSL_FLAG(int, catalog_poll_ms, 500,
          "With --catalog: longest wait for a change notification before "
          "polling the change log anyway (bounds how late another "
          "replica's write shows up when a notification is lost).");
ABSL_FLAG(std::string, log_format, "text",
          "Request log on stderr: text (key=value), json or none.");

namespace {

// "a/b/" and "a/b" both give "a"; a bare name gives ".".
std::string ParentDirectory(const std::string& path) {
  std::filesystem::path p(path);
  if (!p.has_filename()) p = p.parent_path();  // trailing '/'
  std::filesystem::path parent = p.parent_path();
  return parent.empty() ? "." : parent.string();
}

// Overwrites the value of --catalog in the process's own argument memory
// (what ps and /proc/PID/cmdline show), since it may carry a password.
void ScrubCatalogArgument(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") return;
    for (const char* name : {"--catalog", "-catalog"}) {
      const std::string with_value = absl::StrCat(name, "=");
      if (arg.rfind(with_value, 0) == 0) {
        std::memset(argv[i] + with_value.size(), '*',
                    arg.size() - with_value.size());
      } else if (arg == name && i + 1 < argc) {
        std::memset(argv[i + 1], '*', std::strlen(argv[i + 1]));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists, so every thread inherits the mask and only
  // RunServer's sigwait sees SIGTERM/SIGINT.
  embedsearch::BlockTerminationSignals();
  absl::SetProgramUsageMessage(
      "Serves embedsearch.v1.ImageSearch from a bundle.\n"
      "  embedsearch-server --bundle=DIR [--address=0.0.0.0:50051] "
      "[--token=T] [--tls_cert=F --tls_key=F]");
  absl::ParseCommandLine(argc, argv);
  ScrubCatalogArgument(argc, argv);

  embedsearch::ServerOptions options;
  options.bundle_path = absl::GetFlag(FLAGS_bundle);
  options.address = absl::GetFlag(FLAGS_address);
  if (const int port = absl::GetFlag(FLAGS_port); port >= 0) {
    const size_t colon = options.address.rfind(':');
    const std::string host = colon == std::string::npos
                                 ? options.address
                                 : options.address.substr(0, colon);
    options.address = absl::StrCat(host, ":", port);
  }
  options.token = absl::GetFlag(FLAGS_token);
  if (options.token.empty()) {
    if (const char* env = std::getenv("EMBEDSEARCH_TOKEN")) options.token = env;
  }
  options.tls_cert_path = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_path = absl::GetFlag(FLAGS_tls_key);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.max_grpc_threads = absl::GetFlag(FLAGS_max_grpc_threads);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.service.max_k = absl::GetFlag(FLAGS_max_k);
  options.service.compute_threads = absl::GetFlag(FLAGS_threads);
  options.service.decode_limits.max_pixels = absl::GetFlag(FLAGS_max_image_pixels);
  options.service.decode_limits.max_side = absl::GetFlag(FLAGS_max_image_side);
  options.service.max_picture_side = absl::GetFlag(FLAGS_max_picture_side);
  for (absl::string_view root :
       absl::StrSplit(absl::GetFlag(FLAGS_allowed_bundle_roots), ',',
                      absl::SkipWhitespace())) {
    options.service.allowed_bundle_roots.emplace_back(root);
  }
  if (options.service.allowed_bundle_roots.empty() &&
      !options.bundle_path.empty()) {
    options.service.allowed_bundle_roots.push_back(
        ParentDirectory(options.bundle_path));
  }
  if (!embedsearch::ParseLogFormat(absl::GetFlag(FLAGS_log_format),
                                   &options.log_format)) {
    std::fprintf(stderr, "--log_format must be text, json or none\n");
    return 2;
  }
  options.service.catalog = absl::GetFlag(FLAGS_catalog);
  if (options.service.catalog.empty()) {
    if (const char* env = std::getenv("EMBEDSEARCH_CATALOG")) {
      options.service.catalog = env;
    }
  }
  options.service.catalog_poll_interval =
      absl::Milliseconds(std::max(1, absl::GetFlag(FLAGS_catalog_poll_ms)));
  if (!options.service.catalog.empty() &&
      !embedsearch::IsPostgresDsn(options.service.catalog)) {
    std::fprintf(stderr,
                 "--catalog must be a PostgreSQL connection string "
                 "(postgresql://user@host:port/dbname or host=... "
                 "dbname=...)\n");
    return 2;
  }
  if (options.service.max_k < 1) {
    std::fprintf(stderr, "--max_k must be at least 1\n");
    return 2;
  }

  const absl::Status status = embedsearch::RunServer(options);
  if (!status.ok()) {
    std::fprintf(stderr, "embedsearch-server: %s\n",
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}
