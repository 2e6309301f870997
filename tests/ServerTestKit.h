#pragma once

// Shared pieces of the service tests: a scratch directory, documents from the clustered
// generator, a head file, and request builders over the generated bloch.v1 stubs.

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "SyntheticData.h"
#include "bloch/v1/bloch.grpc.pb.h"
#include "index/FidelityHead.h"

namespace bloch::testing {

/// A fresh directory under the system temp dir, removed with the object.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("bloch-" + tag + "-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    if (getenv("KEEP")) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// n documents "doc-<offset+i>" of a clustered set in R^d, payload {"n": i}.
inline std::vector<v1::Document> make_documents(size_t n, int d, uint64_t seed, size_t offset = 0) {
  const ClusteredSet set = make_clustered(n, d, 8, 1.0f, 0.3f, seed);
  std::vector<v1::Document> docs(n);
  for (size_t i = 0; i < n; ++i) {
    docs[i].set_id("doc-" + std::to_string(offset + i));
    docs[i].mutable_vector()->Add(set.x.begin() + long(i * d), set.x.begin() + long((i + 1) * d));
    docs[i].set_payload_json("{\"n\":" + std::to_string(offset + i) + "}");
  }
  return docs;
}

inline v1::UpsertRequest upsert_request(const std::string& collection,
                                        const std::vector<v1::Document>& docs, size_t begin = 0,
                                        size_t end = size_t(-1)) {
  v1::UpsertRequest request;
  request.set_collection(collection);
  for (size_t i = begin; i < std::min(end, docs.size()); ++i) *request.add_documents() = docs[i];
  return request;
}

inline v1::SearchRequest search_request(const std::string& collection,
                                        const std::vector<v1::Document>& queries, uint32_t k) {
  v1::SearchRequest request;
  request.set_collection(collection);
  request.set_k(k);
  for (const auto& q : queries) *request.add_queries()->mutable_values() = q.vector();
  return request;
}

/// Bytes of a fresh (untrained, seeded) head file: enough for exact-search comparisons.
inline std::string head_file_bytes(int d, int q, int butterflies = 1, uint64_t seed = 7) {
  return FidelityHead::make(HeadSpec{d, q, butterflies, seed}).to_bytes();
}

/// A create request for collection `name` of dimension d under `spec`, with an uploaded fresh
/// head of q qubits (trained and searchable at once; exact-search comparisons can rebuild the
/// same head from head_file_bytes(d, q)).
inline v1::CreateCollectionRequest create_request(const std::string& name, int d, int q,
                                                  const std::string& spec) {
  v1::CreateCollectionRequest request;
  request.set_name(name);
  request.set_dimension(uint32_t(d));
  request.set_index_spec(spec);
  request.set_head_file(head_file_bytes(d, q));
  return request;
}

inline std::unique_ptr<v1::Bloch::Stub> connect(int port) {
  return v1::Bloch::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
}

}  // namespace bloch::testing
