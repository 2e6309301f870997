#pragma once

// The C++ client of the bloch service (proto/bloch/v1/bloch.proto). Depends on gRPC and the
// generated API only. Thread-safe: one Client may be shared by any number of threads.
//
// Every call has a deadline (ClientOptions::deadline). Calls that failed with UNAVAILABLE (the
// server is unreachable or restarting) are retried with exponential backoff and jitter — every
// bloch RPC but TrainHead is safe to repeat: an upsert of the same documents stores the same
// state. Any other error is returned at once as a grpc::Status carrying the server's code and
// message (which names the offending field).
//
//   bloch::ClientOptions options;
//   options.address = "127.0.0.1:50051";
//   bloch::Client client(options);
//   bloch::v1::SearchResponse hits;
//   grpc::Status s = client.search(bloch::Client::search_request("docs", queries, n, d, 10),
//   &hits);

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bloch/v1/bloch.grpc.pb.h"

namespace bloch {

struct ClientOptions {
  /// host:port of blochd.
  std::string address = "127.0.0.1:50051";
  /// Use TLS; the server certificate is checked against `tls_root_certs_file` (PEM), or the
  /// system roots when that is empty.
  bool tls = false;
  std::string tls_root_certs_file;
  /// Bearer token sent with every call ("" for none).
  std::string token;
  /// Deadline of each attempt of each call.
  std::chrono::milliseconds deadline{std::chrono::seconds(60)};
  /// Attempts of a call that keeps failing with UNAVAILABLE (1: no retry).
  int max_attempts = 6;
  /// Wait before the first retry; doubled (× backoff_multiplier) up to max_backoff, with up to
  /// ±20 % jitter so that many clients do not retry in lockstep.
  std::chrono::milliseconds initial_backoff{100};
  double backoff_multiplier = 2.0;
  std::chrono::milliseconds max_backoff{std::chrono::seconds(5)};
  /// Largest message sent or received, bytes (the server has its own limit).
  int max_message_bytes = 64 << 20;
};

class BulkWriter;

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  const ClientOptions& options() const { return options_; }

  grpc::Status create_collection(const v1::CreateCollectionRequest& request,
                                 v1::CollectionInfo* info = nullptr);
  grpc::Status drop_collection(const std::string& name);
  grpc::Status list_collections(std::vector<v1::CollectionInfo>* collections);
  grpc::Status describe_collection(const std::string& name, v1::CollectionInfo* info);

  /// One all-or-nothing batch, durable when this returns OK.
  grpc::Status upsert(const v1::UpsertRequest& request, v1::UpsertResponse* response = nullptr);
  grpc::Status remove(const std::string& collection, const std::vector<std::string>& ids,
                      v1::DeleteResponse* response = nullptr);
  grpc::Status get(const std::string& collection, const std::vector<std::string>& ids,
                   bool with_vectors, v1::GetResponse* response);
  grpc::Status search(const v1::SearchRequest& request, v1::SearchResponse* response);

  /// Trains the collection's head; `on_progress` (may be empty) sees every progress message.
  /// Not retried. No deadline unless `deadline` is set: training can take minutes.
  grpc::Status train_head(const v1::TrainHeadRequest& request,
                          const std::function<void(const v1::TrainProgress&)>& on_progress,
                          std::chrono::milliseconds deadline = std::chrono::milliseconds(0));

  /// grpc.health.v1 Check of the whole server: OK with *serving set, or the failure.
  grpc::Status health(bool* serving);

  /// A writer that keeps up to `max_in_flight` upsert batches in flight; see BulkWriter.
  std::unique_ptr<BulkWriter> bulk_writer(size_t max_in_flight = 4);

  /// Search request for n queries of dimension d (row-major).
  static v1::SearchRequest search_request(const std::string& collection, const float* queries,
                                          size_t n, size_t d, uint32_t k);

 private:
  friend class BulkWriter;
  /// Runs `attempt` (one RPC with a fresh context) until it succeeds, fails with anything but
  /// UNAVAILABLE, or max_attempts is reached.
  grpc::Status with_retries(const std::function<grpc::Status(grpc::ClientContext&)>& attempt);
  void prepare(grpc::ClientContext& context,
               std::chrono::milliseconds deadline = std::chrono::milliseconds(-1)) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Bloch::Stub> stub_;
};

/// Upserts batches concurrently with at most max_in_flight of them outstanding: write() blocks
/// while the limit is reached, so memory stays bounded however fast the producer is. Each batch
/// is acknowledged on its own (with the client's retries); the first failure stops the writer
/// and is returned by every later write() and by finish(). Batches in flight at the same time
/// may commit in any order: an id should not appear in two batches in flight together.
class BulkWriter {
 public:
  BulkWriter(Client& client, size_t max_in_flight);
  ~BulkWriter();

  /// Queues one batch; blocks while max_in_flight batches are outstanding. Returns the first
  /// error seen so far (the batch is then not queued).
  grpc::Status write(v1::UpsertRequest batch);
  /// Waits for every queued batch; returns the first error, if any.
  grpc::Status finish();

  /// Documents acknowledged so far, and batches acknowledged so far.
  uint64_t acknowledged_documents() const;
  uint64_t acknowledged_batches() const;
  /// Called (from a worker thread) after each acknowledged batch; set before the first write.
  std::function<void(const v1::UpsertRequest& batch, const v1::UpsertResponse& response)>
      on_acknowledged;

 private:
  void work();

  Client& client_;
  const size_t max_in_flight_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<v1::UpsertRequest> queue_;
  size_t in_flight_ = 0;
  bool closing_ = false;
  grpc::Status error_;
  uint64_t documents_ = 0;
  uint64_t batches_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace bloch
