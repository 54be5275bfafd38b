#include "client/connection.h"

#include <chrono>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/util/file.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace embedsearch {

void ApplyEnvironment(ClientOptions& options) {
  if (const char* server = std::getenv("EMBEDSEARCH_SERVER");
      server != nullptr && *server != '\0') {
    options.server = server;
  }
  if (const char* token = std::getenv("EMBEDSEARCH_TOKEN");
      token != nullptr && *token != '\0') {
    options.token = token;
  }
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const ClientOptions& options, bool separate_connection) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_cert.empty()) {
      absl::StatusOr<std::string> pem = ReadFile(options.ca_cert);
      if (!pem.ok()) {
        return absl::Status(pem.status().code(),
                            absl::StrCat("--ca_cert: ", pem.status().message()));
      }
      ssl.pem_root_certs = *std::move(pem);
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // Search responses with include_images can be large; the server sets the
  // real limit, the client should not be the one to refuse.
  args.SetMaxReceiveMessageSize(64 << 20);
  if (separate_connection) {
    // Channels with identical arguments share one connection through the
    // global subchannel pool; a local pool gives this channel its own.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  return grpc::CreateCustomChannel(options.server, credentials, args);
}

void ConfigureContext(const ClientOptions& options,
                      grpc::ClientContext& context) {
  if (options.timeout_seconds > 0) {
    context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::microseconds(
            static_cast<int64_t>(options.timeout_seconds * 1e6)));
  }
  if (!options.token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
  }
}

}  // namespace embedsearch
