#include "client/errors.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace embedsearch {
namespace {

std::string OneLine(absl::string_view text) {
  std::string line = absl::StrReplaceAll(text, {{"\r\n", " "}, {"\n", " "}});
  return line;
}

// gRPC's own wording when no connection could be made (refused, DNS, TLS
// handshake): none of these come from our server's handlers.
bool LooksLikeConnectFailure(absl::string_view message) {
  for (absl::string_view marker :
       {"failed to connect", "Failed to connect", "Connection refused",
        "DNS resolution failed", "Socket closed", "Connection reset",
        "connections to all backends failing", "Handshake failed",
        "failed to pick subchannel", "Ssl handshake"}) {
    if (absl::StrContains(message, marker)) return true;
  }
  return false;
}

}  // namespace

std::string GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

std::string RpcErrorLine(const grpc::Status& status, absl::string_view server) {
  const std::string code = GrpcCodeName(status.error_code());
  const std::string& message = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      LooksLikeConnectFailure(message)) {
    return absl::StrCat("error: UNAVAILABLE: cannot reach ", server,
                        " (is the server running? check --server, --tls)");
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::StrCat("error: DEADLINE_EXCEEDED: no answer from ", server,
                        " in time (raise --timeout, or is it the right port?)");
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::StrCat("error: UNAUTHENTICATED: ", OneLine(message),
                        " (pass --token or set EMBEDSEARCH_TOKEN)");
  }
  return absl::StrCat("error: ", code, ": ", OneLine(message));
}

std::string LocalErrorLine(const absl::Status& status) {
  return absl::StrCat("error: ", OneLine(status.message()));
}

}  // namespace embedsearch
