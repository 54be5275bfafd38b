#include "server/server.h"

#include <signal.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/file.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace embedsearch {
namespace {

constexpr char kServiceName[] = "embedsearch.v1.ImageSearch";

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const ServerOptions& options) {
  if (options.tls_cert_path.empty() && options.tls_key_path.empty()) {
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_path.empty() || options.tls_key_path.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls_cert and --tls_key");
  }
  absl::StatusOr<std::string> cert = ReadFile(options.tls_cert_path);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(options.tls_key_path);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

void SetHealth(grpc::Server* server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);  // The overall "" service.
  health->SetServingStatus(kServiceName, serving);
}

// " catalog=..." for a gallery on a shared catalog (its description has no
// password); "" otherwise, so SQLite log lines are unchanged.
std::string SharedCatalogLogField(const Gallery& gallery) {
  if (!gallery.replication().shared) return "";
  return absl::StrCat(" catalog=\"", gallery.catalog_description(), "\"");
}

}  // namespace

absl::StatusOr<std::unique_ptr<EmbedSearchServer>> EmbedSearchServer::Start(
    const ServerOptions& options) {
  if (options.max_message_bytes <= 0) {
    return absl::InvalidArgumentError("max_message_bytes must be positive");
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      MakeCredentials(options);
  if (!creds.ok()) return creds.status();

  std::unique_ptr<EmbedSearchServer> s(new EmbedSearchServer());
  s->options_ = options;
  s->service_ = std::make_unique<SearchService>(options.service);
  s->grpc_service_ = std::make_unique<GrpcImageSearch>(
      s->service_.get(), options.token, options.log_format);
  // Before gRPC listens, so a taken metrics port fails start-up cleanly.
  if (!options.metrics_address.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
        MetricsEndpoint::Start(options.metrics_address, s->service_->metrics());
    if (!endpoint.ok()) return endpoint.status();
    s->metrics_endpoint_ = *std::move(endpoint);
    WriteEventLog(options.log_format, "metrics_listening",
                  absl::StrCat("address=", options.metrics_address,
                               " port=", s->metrics_endpoint_->port(),
                               " path=/metrics"));
  }

  // Both must be set before the builder is created.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, *creds, &s->port_);
  builder.RegisterService(s->grpc_service_.get());
  // Oversized requests are refused by gRPC with RESOURCE_EXHAUSTED.
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_concurrent_streams);
  grpc::ResourceQuota quota("embedsearch-server");
  quota.SetMaxThreads(options.max_grpc_threads);
  builder.SetResourceQuota(quota);
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address,
                     " (address in use, malformed or not permitted)"));
  }
  // The default health service starts SERVING; no bundle yet means not.
  SetHealth(s->server_.get(), false);
  grpc::Server* raw = s->server_.get();
  const LogFormat log_format = options.log_format;
  s->service_->SetBundleListener([raw, log_format](const Bundle& bundle) {
    SetHealth(raw, true);
    WriteEventLog(log_format, "bundle_loaded",
                  absl::StrCat("path=", bundle.dir(), " model_version=",
                               bundle.model_version(),
                               " gallery_size=", bundle.gallery().size(),
                               SharedCatalogLogField(bundle.gallery())));
  });
  WriteEventLog(options.log_format, "listening",
                absl::StrCat("address=", options.address, " port=", s->port_,
                             " tls=",
                             options.tls_cert_path.empty() ? "off" : "on",
                             " compute_threads=",
                             ComputeSlots(options.service.compute_threads)
                                 .slots()));
  if (!options.bundle_path.empty()) {
    absl::Status loaded = s->LoadBundle(options.bundle_path);
    if (!loaded.ok()) {
      s->Shutdown(absl::ZeroDuration());
      return loaded;
    }
  }
  return s;
}

EmbedSearchServer::~EmbedSearchServer() {
  if (server_ == nullptr) return;  // Start failed before gRPC was built.
  Shutdown(absl::Seconds(5));
  Wait();
}

absl::Status EmbedSearchServer::LoadBundle(const std::string& dir) {
  return service_->LoadBundle(dir);
}

void EmbedSearchServer::Shutdown(absl::Duration grace) {
  {
    std::unique_lock lock(shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  // Probes see NOT_SERVING first, so load balancers stop sending.
  if (grpc::HealthCheckServiceInterface* health =
          server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  WriteEventLog(options_.log_format, "shutting_down",
                absl::StrCat("grace_ms=", absl::ToInt64Milliseconds(grace)));
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void EmbedSearchServer::Wait() { server_->Wait(); }

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

absl::Status RunServer(const ServerOptions& options) {
  // Listen first and load after, so probes see NOT_SERVING while a large
  // bundle loads instead of a refused connection.
  ServerOptions without_bundle = options;
  without_bundle.bundle_path.clear();
  absl::StatusOr<std::unique_ptr<EmbedSearchServer>> server =
      EmbedSearchServer::Start(without_bundle);
  if (!server.ok()) return server.status();
  if (!options.bundle_path.empty()) {
    absl::Status loaded = (*server)->LoadBundle(options.bundle_path);
    if (!loaded.ok()) {
      (*server)->Shutdown(absl::ZeroDuration());
      (*server)->Wait();
      return loaded;
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int signal_number = 0;
  sigwait(&set, &signal_number);
  WriteEventLog(options.log_format, "signal",
                signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(absl::Seconds(10));
  (*server)->Wait();
  WriteEventLog(options.log_format, "stopped", "drained");
  return absl::OkStatus();
}

}  // namespace embedsearch
