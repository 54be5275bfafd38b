// The embedsearch gRPC server: ImageSearch + grpc.health.v1 + reflection.
//
//   auto server = EmbedSearchServer::Start(options);   // listening
//   (*server)->port();                                 // bound port
//   (*server)->Shutdown();                             // drain and stop
//
// Health: the overall service ("") and "embedsearch.v1.ImageSearch" report
// NOT_SERVING until a bundle is loaded, SERVING after, NOT_SERVING again
// once Shutdown starts.
#ifndef EMBEDSEARCH_SERVER_SERVER_H_
#define EMBEDSEARCH_SERVER_SERVER_H_

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/grpc_service.h"
#include "server/metrics_endpoint.h"
#include "server/request_log.h"
#include "server/service.h"

namespace embedsearch {

struct ServerOptions {
  std::string address = "0.0.0.0:50051";  // default; "127.0.0.1:0" picks a port
  // Bundle directory loaded by Start before it returns; empty (default):
  // start without one (UNAVAILABLE / NOT_SERVING until Reload).
  std::string bundle_path;
  // Bearer token for AddImages/RemoveImages/Reload; empty (default): no auth.
  std::string token;
  // PEM files; both empty (default): plaintext. Both set: TLS.
  std::string tls_cert_path;
  std::string tls_key_path;
  int max_message_bytes = 16 << 20;  // default: 16 MiB per message each way
  int max_concurrent_streams = 64;   // default: per HTTP/2 connection
  // gRPC sync-server threads (mostly blocked waiting for a compute slot or
  // the network). Must exceed the expected concurrent calls, since gRPC
  // refuses calls once its thread quota is spent.
  int max_grpc_threads = 256;        // default: 256
  LogFormat log_format = LogFormat::kText;  // default: key=value lines
  // host:port of the Prometheus /metrics endpoint ("127.0.0.1:0" picks a
  // port). Empty (default): no endpoint; off by default because a fixed
  // default port would collide between servers on one host and would expose
  // process details on every interface unasked. deploy/ turns it on.
  std::string metrics_address;
  ServiceOptions service;            // max_k, compute threads, reload roots
};

class EmbedSearchServer {
 public:
  // Binds, starts serving and (if options.bundle_path is set) loads the
  // bundle. Errors: the address or the metrics address cannot be bound
  // (UNAVAILABLE), TLS files unreadable, the bundle does not load.
  static absl::StatusOr<std::unique_ptr<EmbedSearchServer>> Start(
      const ServerOptions& options);
  ~EmbedSearchServer();  // Shuts down if still running.
  EmbedSearchServer(const EmbedSearchServer&) = delete;
  EmbedSearchServer& operator=(const EmbedSearchServer&) = delete;

  int port() const { return port_; }
  // Port of the /metrics endpoint; 0 when options.metrics_address is empty.
  int metrics_port() const {
    return metrics_endpoint_ == nullptr ? 0 : metrics_endpoint_->port();
  }
  SearchService& service() { return *service_; }
  // Loads (or replaces) the bundle; health turns SERVING on success.
  absl::Status LoadBundle(const std::string& dir);

  // Stops accepting calls, lets in-flight calls finish until `grace` has
  // passed, then cancels the rest. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(10));
  // Blocks until the server has shut down.
  void Wait();

 private:
  EmbedSearchServer() = default;

  ServerOptions options_;
  std::unique_ptr<SearchService> service_;
  std::unique_ptr<GrpcImageSearch> grpc_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
  int port_ = 0;
  std::mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

// Start + wait for SIGTERM/SIGINT + graceful shutdown. Returns OK after a
// clean drain. The caller must have blocked SIGTERM and SIGINT in every
// thread (see BlockTerminationSignals) before any thread was created.
absl::Status RunServer(const ServerOptions& options);

// Blocks SIGTERM and SIGINT in the calling thread (and so in threads created
// later), so that RunServer can take them with sigwait.
void BlockTerminationSignals();

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_SERVER_H_
