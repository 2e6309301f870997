#include "bloch/Client.h"

#include <fstream>
#include <random>
#include <sstream>

#include "grpc/health/v1/health.grpc.pb.h"

namespace bloch {

namespace {

std::shared_ptr<grpc::ChannelCredentials> credentials_of(const ClientOptions& options) {
  if (!options.tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_root_certs_file.empty()) {
    std::ifstream in(options.tls_root_certs_file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    ssl.pem_root_certs = text.str();
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

Client::Client(ClientOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(options_.max_message_bytes);
  arguments.SetMaxSendMessageSize(options_.max_message_bytes);
  channel_ = grpc::CreateCustomChannel(options_.address, credentials_of(options_), arguments);
  stub_ = v1::Bloch::NewStub(channel_);
}

Client::~Client() = default;

void Client::prepare(grpc::ClientContext& context, std::chrono::milliseconds deadline) const {
  if (deadline.count() < 0) deadline = options_.deadline;
  if (deadline.count() > 0) context.set_deadline(std::chrono::system_clock::now() + deadline);
  if (!options_.token.empty()) context.AddMetadata("authorization", "Bearer " + options_.token);
}

grpc::Status Client::with_retries(
    const std::function<grpc::Status(grpc::ClientContext&)>& attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  double backoff_ms = double(options_.initial_backoff.count());
  grpc::Status status;
  for (int i = 0; i < std::max(1, options_.max_attempts); ++i) {
    if (i > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(int64_t(backoff_ms * jitter(rng))));
      backoff_ms =
          std::min(backoff_ms * options_.backoff_multiplier, double(options_.max_backoff.count()));
    }
    grpc::ClientContext context;
    prepare(context);
    status = attempt(context);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return status;
  }
  return status;
}

grpc::Status Client::create_collection(const v1::CreateCollectionRequest& request,
                                       v1::CollectionInfo* info) {
  v1::CollectionInfo ignored;
  return with_retries([&](grpc::ClientContext& context) {
    return stub_->CreateCollection(&context, request, info ? info : &ignored);
  });
}

grpc::Status Client::drop_collection(const std::string& name) {
  v1::DropCollectionRequest request;
  request.set_name(name);
  v1::DropCollectionResponse response;
  return with_retries([&](grpc::ClientContext& context) {
    return stub_->DropCollection(&context, request, &response);
  });
}

grpc::Status Client::list_collections(std::vector<v1::CollectionInfo>* collections) {
  v1::ListCollectionsResponse response;
  grpc::Status s = with_retries([&](grpc::ClientContext& context) {
    return stub_->ListCollections(&context, v1::ListCollectionsRequest(), &response);
  });
  collections->assign(response.collections().begin(), response.collections().end());
  return s;
}

grpc::Status Client::describe_collection(const std::string& name, v1::CollectionInfo* info) {
  v1::DescribeCollectionRequest request;
  request.set_name(name);
  return with_retries([&](grpc::ClientContext& context) {
    return stub_->DescribeCollection(&context, request, info);
  });
}

grpc::Status Client::upsert(const v1::UpsertRequest& request, v1::UpsertResponse* response) {
  v1::UpsertResponse ignored;
  return with_retries([&](grpc::ClientContext& context) {
    return stub_->Upsert(&context, request, response ? response : &ignored);
  });
}

grpc::Status Client::remove(const std::string& collection, const std::vector<std::string>& ids,
                            v1::DeleteResponse* response) {
  v1::DeleteRequest request;
  request.set_collection(collection);
  for (const auto& id : ids) request.add_ids(id);
  v1::DeleteResponse ignored;
  return with_retries([&](grpc::ClientContext& context) {
    return stub_->Delete(&context, request, response ? response : &ignored);
  });
}

grpc::Status Client::get(const std::string& collection, const std::vector<std::string>& ids,
                         bool with_vectors, v1::GetResponse* response) {
  v1::GetRequest request;
  request.set_collection(collection);
  request.set_with_vectors(with_vectors);
  for (const auto& id : ids) request.add_ids(id);
  return with_retries([&](grpc::ClientContext& context) {
    response->Clear();
    return stub_->Get(&context, request, response);
  });
}

grpc::Status Client::search(const v1::SearchRequest& request, v1::SearchResponse* response) {
  return with_retries([&](grpc::ClientContext& context) {
    response->Clear();
    return stub_->Search(&context, request, response);
  });
}

grpc::Status Client::train_head(const v1::TrainHeadRequest& request,
                                const std::function<void(const v1::TrainProgress&)>& on_progress,
                                std::chrono::milliseconds deadline) {
  grpc::ClientContext context;
  prepare(context, deadline);
  auto reader = stub_->TrainHead(&context, request);
  v1::TrainProgress progress;
  while (reader->Read(&progress)) {
    if (on_progress) on_progress(progress);
  }
  return reader->Finish();
}

grpc::Status Client::health(bool* serving) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status s = with_retries([&](grpc::ClientContext& context) {
    return stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  });
  *serving = s.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  return s;
}

std::unique_ptr<BulkWriter> Client::bulk_writer(size_t max_in_flight) {
  return std::make_unique<BulkWriter>(*this, max_in_flight);
}

v1::SearchRequest Client::search_request(const std::string& collection, const float* queries,
                                         size_t n, size_t d, uint32_t k) {
  v1::SearchRequest request;
  request.set_collection(collection);
  request.set_k(k);
  for (size_t i = 0; i < n; ++i) {
    request.add_queries()->mutable_values()->Add(queries + i * d, queries + (i + 1) * d);
  }
  return request;
}

// ---------------------------------------------------------------------------------------------

BulkWriter::BulkWriter(Client& client, size_t max_in_flight)
    : client_(client), max_in_flight_(std::max<size_t>(1, max_in_flight)) {
  for (size_t i = 0; i < max_in_flight_; ++i) workers_.emplace_back([this] { work(); });
}

BulkWriter::~BulkWriter() {
  finish();
}

grpc::Status BulkWriter::write(v1::UpsertRequest batch) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !error_.ok() || queue_.size() + in_flight_ < max_in_flight_; });
  if (!error_.ok()) return error_;
  queue_.push_back(std::move(batch));
  changed_.notify_all();
  return grpc::Status::OK;
}

grpc::Status BulkWriter::finish() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
    changed_.notify_all();
  }
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  std::lock_guard lock(mutex_);
  return error_;
}

uint64_t BulkWriter::acknowledged_documents() const {
  std::lock_guard lock(mutex_);
  return documents_;
}

uint64_t BulkWriter::acknowledged_batches() const {
  std::lock_guard lock(mutex_);
  return batches_;
}

void BulkWriter::work() {
  for (;;) {
    v1::UpsertRequest batch;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return closing_ || !queue_.empty() || !error_.ok(); });
      if (!error_.ok() || queue_.empty()) return;
      batch = std::move(queue_.front());
      queue_.pop_front();
      ++in_flight_;
    }
    v1::UpsertResponse response;
    const grpc::Status s = client_.upsert(batch, &response);
    if (s.ok() && on_acknowledged) on_acknowledged(batch, response);
    std::lock_guard lock(mutex_);
    --in_flight_;
    if (s.ok()) {
      documents_ += uint64_t(batch.documents_size());
      ++batches_;
    } else if (error_.ok()) {
      error_ = s;
    }
    changed_.notify_all();
  }
}

}  // namespace bloch
