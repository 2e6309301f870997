#pragma once

// The bloch.v1.Bloch gRPC service: request plumbing around the Catalog. Every handler goes
// through serve(), which checks the bearer token (when one is configured), turns exceptions
// into INTERNAL statuses and records the request in Metrics.

#include <grpcpp/grpcpp.h>

#include <string>

#include "bloch/v1/bloch.grpc.pb.h"
#include "server/Catalog.h"
#include "server/Metrics.h"

namespace bloch::server {

class BlochService final : public v1::Bloch::Service {
 public:
  /// `token` empty: no authentication; otherwise every call needs the metadata
  /// "authorization: Bearer <token>".
  BlochService(Catalog& catalog, Metrics& metrics, std::string token);

  grpc::Status CreateCollection(grpc::ServerContext* context,
                                const v1::CreateCollectionRequest* request,
                                v1::CollectionInfo* response) override;
  grpc::Status DropCollection(grpc::ServerContext* context,
                              const v1::DropCollectionRequest* request,
                              v1::DropCollectionResponse* response) override;
  grpc::Status ListCollections(grpc::ServerContext* context,
                               const v1::ListCollectionsRequest* request,
                               v1::ListCollectionsResponse* response) override;
  grpc::Status DescribeCollection(grpc::ServerContext* context,
                                  const v1::DescribeCollectionRequest* request,
                                  v1::CollectionInfo* response) override;
  grpc::Status TrainHead(grpc::ServerContext* context, const v1::TrainHeadRequest* request,
                         grpc::ServerWriter<v1::TrainProgress>* writer) override;
  grpc::Status Upsert(grpc::ServerContext* context, const v1::UpsertRequest* request,
                      v1::UpsertResponse* response) override;
  grpc::Status UpsertStream(grpc::ServerContext* context,
                            grpc::ServerReader<v1::UpsertRequest>* reader,
                            v1::UpsertResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context, const v1::DeleteRequest* request,
                      v1::DeleteResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const v1::GetRequest* request,
                   v1::GetResponse* response) override;
  grpc::Status Search(grpc::ServerContext* context, const v1::SearchRequest* request,
                      v1::SearchResponse* response) override;

 private:
  template <typename Body>
  grpc::Status serve(const char* method, grpc::ServerContext* context, Body&& body);
  grpc::Status authenticate(const grpc::ServerContext* context) const;

  Catalog& catalog_;
  Metrics& metrics_;
  const std::string token_;
};

}  // namespace bloch::server
