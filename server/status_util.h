// absl::Status <-> grpc::Status. The canonical codes are the same numbers in
// both, so the mapping is 1:1 and keeps the message.
#ifndef EMBEDSEARCH_SERVER_STATUS_UTIL_H_
#define EMBEDSEARCH_SERVER_STATUS_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace embedsearch {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_STATUS_UTIL_H_
