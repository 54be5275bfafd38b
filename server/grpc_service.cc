#include "server/grpc_service.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/auth.h"
#include "server/status_util.h"

namespace embedsearch {

StopCheck GrpcStopCheck(grpc::ServerContextBase* context) {
  return [context](absl::string_view stage) -> absl::Status {
    const bool past_deadline =
        context->deadline() <= std::chrono::system_clock::now();
    if (past_deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("deadline exceeded while ", stage));
    }
    if (context->IsCancelled()) {
      return absl::CancelledError(
          absl::StrCat("call cancelled by the client while ", stage));
    }
    return absl::OkStatus();
  };
}

GrpcImageSearch::GrpcImageSearch(SearchService* service, std::string token,
                                 LogFormat log_format)
    : service_(service), token_(std::move(token)), log_format_(log_format) {}

absl::Status GrpcImageSearch::Authorize(grpc::ServerContextBase* context) const {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return CheckBearerToken(token_, nullptr);
  const absl::string_view value(it->second.data(), it->second.size());
  return CheckBearerToken(token_, &value);
}

grpc::Status GrpcImageSearch::Finish(const char* method,
                                     grpc::ServerContextBase* context,
                                     absl::Time start,
                                     const absl::Status& status,
                                     absl::string_view detail) {
  const absl::Duration latency = absl::Now() - start;
  const double ms = absl::ToDoubleMilliseconds(latency);
  service_->stats().Record(method, ms, status.ok());
  service_->metrics()->RecordRequest(method, status.code(), latency);
  WriteRequestLog(log_format_, {method, status, ms, context->peer(), detail});
  return ToGrpcStatus(status);
}

#define ES_UNARY(Method, needs_auth, call)                                \
  const absl::Time start = absl::Now();                                   \
  absl::Status status;                                                    \
  if (needs_auth) status = Authorize(context);                            \
  if (status.ok()) {                                                      \
    auto result = (call);                                                 \
    status = result.status();                                             \
    if (result.ok()) *response = *std::move(result);                      \
  }                                                                       \
  return Finish(Method, context, start, status)

grpc::ServerUnaryReactor* GrpcImageSearch::Search(
    grpc::CallbackServerContext* context, const v1::SearchRequest* request,
    v1::SearchResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Time start = absl::Now();  // Queueing counts in the latency.
  // gRPC keeps context, request and response alive until Finish.
  service_->SearchAsync(
      request, GrpcStopCheck(context),
      [this, context, response, reactor, start](absl::StatusOr<v1::SearchResponse> result) {
        if (result.ok()) *response = *std::move(result);
        reactor->Finish(Finish("Search", context, start, result.status()));
      });
  return reactor;
}

grpc::Status GrpcImageSearch::Encode(grpc::ServerContext* context,
                                     const v1::EncodeRequest* request,
                                     v1::EncodeResponse* response) {
  ES_UNARY("Encode", false,
           service_->Encode(*request, GrpcStopCheck(context)));
}

grpc::Status GrpcImageSearch::AddImages(grpc::ServerContext* context,
                                        const v1::AddImagesRequest* request,
                                        v1::AddImagesResponse* response) {
  ES_UNARY("AddImages", true,
           service_->AddImages(*request, GrpcStopCheck(context)));
}

grpc::Status GrpcImageSearch::RemoveImages(
    grpc::ServerContext* context, const v1::RemoveImagesRequest* request,
    v1::RemoveImagesResponse* response) {
  ES_UNARY("RemoveImages", true, service_->RemoveImages(*request));
}

grpc::Status GrpcImageSearch::GetImage(grpc::ServerContext* context,
                                       const v1::GetImageRequest* request,
                                       v1::GetImageResponse* response) {
  ES_UNARY("GetImage", false, service_->GetImage(*request));
}

grpc::Status GrpcImageSearch::GetInfo(grpc::ServerContext* context,
                                      const v1::GetInfoRequest* request,
                                      v1::GetInfoResponse* response) {
  ES_UNARY("GetInfo", false, service_->GetInfo(*request));
}

grpc::Status GrpcImageSearch::Reload(grpc::ServerContext* context,
                                     const v1::ReloadRequest* request,
                                     v1::ReloadResponse* response) {
  ES_UNARY("Reload", true, service_->Reload(*request));
}

#undef ES_UNARY

grpc::Status GrpcImageSearch::SearchStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::SearchResponse, v1::SearchRequest>* stream) {
  const absl::Time start = absl::Now();
  const StopCheck stop = GrpcStopCheck(context);
  absl::Status status;
  uint64_t sequence = 0;
  v1::SearchRequest request;
  while (stream->Read(&request)) {
    absl::StatusOr<v1::SearchResponse> result =
        service_->Search(request, stop);
    if (!result.ok()) {
      // The stream ends at the first bad message; say which one it was.
      status = absl::Status(
          result.status().code(),
          absl::StrCat("SearchStream message ", sequence, ": ",
                       result.status().message()));
      break;
    }
    result->set_sequence(sequence);
    if (!stream->Write(*result)) {
      status = absl::CancelledError(absl::StrCat(
          "client stopped reading at SearchStream message ", sequence));
      break;
    }
    ++sequence;
  }
  // A client that half-closes normally ends the loop with Read() == false;
  // one that cancels or runs out of time does too, so ask why.
  if (status.ok()) status = stop("reading the stream");
  return Finish("SearchStream", context, start, status,
                absl::StrCat("messages=", sequence));
}

}  // namespace embedsearch
