// How the client reaches the server: address, TLS, token and deadline.
//
// The token travels as the "authorization: Bearer <token>" metadata entry on
// every call (the server checks it on mutations). Thread safety: a channel is
// thread-safe; a ClientContext is per call.
#ifndef EMBEDSEARCH_CLIENT_CONNECTION_H_
#define EMBEDSEARCH_CLIENT_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace embedsearch {

struct ClientOptions {
  std::string server = "localhost:50051";  // default: localhost:50051
  std::string token;                       // default: none
  bool tls = false;                        // default: plaintext
  std::string ca_cert;  // default: system roots (only with tls)
  double timeout_seconds = 10;  // default: 10 s per call
};

// Reads EMBEDSEARCH_SERVER and EMBEDSEARCH_TOKEN into `options` where set.
void ApplyEnvironment(ClientOptions& options);

// A channel for `options`. `separate_connection` gives the channel its own
// TCP connection (the bench uses several to spread load). Errors: the CA
// certificate file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const ClientOptions& options, bool separate_connection = false);

// Sets the deadline and the token on a fresh context.
void ConfigureContext(const ClientOptions& options,
                      grpc::ClientContext& context);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CLIENT_CONNECTION_H_
