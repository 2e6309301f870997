#include "server/BlochService.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>

namespace bloch::server {

using grpc::Status;
using grpc::StatusCode;

namespace {

/// Compares without an early exit, so the time taken does not reveal a matching prefix.
bool equal_constant_time(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ (i < b.size() ? b[i] : 0);
  return diff == 0;
}

}  // namespace

BlochService::BlochService(Catalog& catalog, Metrics& metrics, std::string token)
    : catalog_(catalog), metrics_(metrics), token_(std::move(token)) {}

Status BlochService::authenticate(const grpc::ServerContext* context) const {
  if (token_.empty()) return Status::OK;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return Status(StatusCode::UNAUTHENTICATED, "authorization: missing bearer token");
  }
  const std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (!value.starts_with(kBearer) || !equal_constant_time(value.substr(kBearer.size()), token_)) {
    return Status(StatusCode::UNAUTHENTICATED, "authorization: invalid bearer token");
  }
  return Status::OK;
}

template <typename Body>
Status BlochService::serve(const char* method, grpc::ServerContext* context, Body&& body) {
  const auto start = std::chrono::steady_clock::now();
  Status status = authenticate(context);
  if (status.ok()) {
    try {
      status = body();
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", method, e.what());
      status = Status(StatusCode::INTERNAL, std::string(method) + ": " + e.what());
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_.observe_rpc(method, status.error_code(), seconds);
  return status;
}

Status BlochService::CreateCollection(grpc::ServerContext* context,
                                      const v1::CreateCollectionRequest* request,
                                      v1::CollectionInfo* response) {
  return serve("CreateCollection", context, [&] { return catalog_.create(*request, response); });
}

Status BlochService::DropCollection(grpc::ServerContext* context,
                                    const v1::DropCollectionRequest* request,
                                    v1::DropCollectionResponse*) {
  return serve("DropCollection", context, [&] { return catalog_.drop(request->name()); });
}

Status BlochService::ListCollections(grpc::ServerContext* context,
                                     const v1::ListCollectionsRequest*,
                                     v1::ListCollectionsResponse* response) {
  return serve("ListCollections", context, [&] {
    for (const auto& collection : catalog_.list()) {
      collection->describe(response->add_collections());
    }
    return Status::OK;
  });
}

Status BlochService::DescribeCollection(grpc::ServerContext* context,
                                        const v1::DescribeCollectionRequest* request,
                                        v1::CollectionInfo* response) {
  return serve("DescribeCollection", context, [&] {
    std::shared_ptr<Collection> collection;
    Status s = catalog_.find(request->name(), &collection);
    if (s.ok()) collection->describe(response);
    return s;
  });
}

Status BlochService::TrainHead(grpc::ServerContext* context, const v1::TrainHeadRequest* request,
                               grpc::ServerWriter<v1::TrainProgress>* writer) {
  return serve("TrainHead", context, [&] {
    std::shared_ptr<Collection> collection;
    Status s = catalog_.find(request->collection(), &collection);
    if (!s.ok()) return s;
    // A client that goes away cancels the run (the previous head stays).
    return collection->train(*request, [&](const v1::TrainProgress& progress) {
      return !context->IsCancelled() && writer->Write(progress);
    });
  });
}

Status BlochService::Upsert(grpc::ServerContext* context, const v1::UpsertRequest* request,
                            v1::UpsertResponse* response) {
  return serve("Upsert", context, [&] {
    std::shared_ptr<Collection> collection;
    Status s = catalog_.find(request->collection(), &collection);
    return s.ok() ? collection->upsert(*request, response) : s;
  });
}

Status BlochService::UpsertStream(grpc::ServerContext* context,
                                  grpc::ServerReader<v1::UpsertRequest>* reader,
                                  v1::UpsertResponse* response) {
  return serve("UpsertStream", context, [&] {
    v1::UpsertRequest request;
    size_t batch = 0;
    Status s;
    for (; s.ok() && reader->Read(&request); ++batch) {
      std::shared_ptr<Collection> collection;
      s = catalog_.find(request.collection(), &collection);
      if (s.ok()) s = collection->upsert(request, response);
      if (!s.ok()) {
        s = Status(s.error_code(), "batch " + std::to_string(batch) + ": " + s.error_message());
      }
    }
    context->AddTrailingMetadata("bloch-upserted", std::to_string(response->upserted()));
    return s;
  });
}

Status BlochService::Delete(grpc::ServerContext* context, const v1::DeleteRequest* request,
                            v1::DeleteResponse* response) {
  return serve("Delete", context, [&] {
    std::shared_ptr<Collection> collection;
    Status s = catalog_.find(request->collection(), &collection);
    return s.ok() ? collection->remove(*request, response) : s;
  });
}

Status BlochService::Get(grpc::ServerContext* context, const v1::GetRequest* request,
                         v1::GetResponse* response) {
  return serve("Get", context, [&] {
    std::shared_ptr<Collection> collection;
    Status s = catalog_.find(request->collection(), &collection);
    return s.ok() ? collection->get(*request, response) : s;
  });
}

Status BlochService::Search(grpc::ServerContext* context, const v1::SearchRequest* request,
                            v1::SearchResponse* response) {
  return serve("Search", context, [&] {
    std::shared_ptr<Collection> collection;
    Status s = catalog_.find(request->collection(), &collection);
    return s.ok() ? collection->search(*request, response) : s;
  });
}

}  // namespace bloch::server
