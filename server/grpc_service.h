// embedsearch.v1.ImageSearch over gRPC: auth, deadlines, per-request log
// line and stats around SearchService.
#ifndef EMBEDSEARCH_SERVER_GRPC_SERVICE_H_
#define EMBEDSEARCH_SERVER_GRPC_SERVICE_H_

#include <string>

#include "embedsearch/v1/search.grpc.pb.h"
#include "server/request_log.h"
#include "server/service.h"

namespace embedsearch {

// Search, the hot path, uses gRPC's callback API: the handler only queues
// the query on SearchService's workers (why: server/batch_queue.h), which
// finish the call. Every other method is a plain sync handler.
class GrpcImageSearch final
    : public v1::ImageSearch::WithCallbackMethod_Search<v1::ImageSearch::Service> {
 public:
  // `service` must outlive this object and the grpc::Server (queued
  // Searches finish on its workers). An empty `token` disables auth.
  GrpcImageSearch(SearchService* service, std::string token,
                  LogFormat log_format);

  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* context,
                                   const v1::SearchRequest* request,
                                   v1::SearchResponse* response) override;
  grpc::Status SearchStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::SearchResponse, v1::SearchRequest>* stream)
      override;
  grpc::Status Encode(grpc::ServerContext* context,
                      const v1::EncodeRequest* request,
                      v1::EncodeResponse* response) override;
  grpc::Status AddImages(grpc::ServerContext* context,
                         const v1::AddImagesRequest* request,
                         v1::AddImagesResponse* response) override;
  grpc::Status RemoveImages(grpc::ServerContext* context,
                            const v1::RemoveImagesRequest* request,
                            v1::RemoveImagesResponse* response) override;
  grpc::Status GetImage(grpc::ServerContext* context,
                        const v1::GetImageRequest* request,
                        v1::GetImageResponse* response) override;
  grpc::Status GetInfo(grpc::ServerContext* context,
                       const v1::GetInfoRequest* request,
                       v1::GetInfoResponse* response) override;
  grpc::Status Reload(grpc::ServerContext* context,
                      const v1::ReloadRequest* request,
                      v1::ReloadResponse* response) override;

 private:
  absl::Status Authorize(grpc::ServerContextBase* context) const;
  // Logs, records stats and converts the status.
  grpc::Status Finish(const char* method, grpc::ServerContextBase* context,
                      absl::Time start, const absl::Status& status,
                      absl::string_view detail = {});

  SearchService* const service_;
  const std::string token_;
  const LogFormat log_format_;
};

// The StopCheck of a gRPC call: DEADLINE_EXCEEDED once the deadline has
// passed, CANCELLED when the client went away.
StopCheck GrpcStopCheck(grpc::ServerContextBase* context);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_GRPC_SERVICE_H_
