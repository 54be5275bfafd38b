// Turning failed calls into the one line a person reads.
#ifndef EMBEDSEARCH_CLIENT_ERRORS_H_
#define EMBEDSEARCH_CLIENT_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace embedsearch {

// Process exit codes of embedsearch-client.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,  // the server refused, could not be reached, or a local
                   // file could not be read/written
  kExitUsage = 2,  // bad arguments; nothing was sent
};

// "INVALID_ARGUMENT", "UNAVAILABLE", ... for a gRPC status code.
std::string GrpcCodeName(grpc::StatusCode code);

// One line without the trailing newline, e.g.
//   error: UNAVAILABLE: cannot reach localhost:50051 (is the server running?)
//   error: NOT_FOUND: no image with id 17
// Connection failures are recognised and explained; otherwise the server's
// message is shown as is, folded onto one line.
std::string RpcErrorLine(const grpc::Status& status, absl::string_view server);

// "error: <message>" for a local failure (e.g. an unreadable image file).
std::string LocalErrorLine(const absl::Status& status);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CLIENT_ERRORS_H_
