// The C++ client library (client/include/bloch/Client.h) against a real in-process Daemon on
// loopback: every operation, typed errors with the server's message, retries on UNAVAILABLE
// only, tokens, and the bounded bulk writer.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <thread>

#include "ServerTestKit.h"
#include "bloch/Client.h"
#include "server/Daemon.h"

namespace bloch::testing {
namespace {

constexpr int kDim = 16;
constexpr int kQubits = 8;

ClientOptions options_for(const std::string& address, const std::string& token = "") {
  ClientOptions options;
  options.address = address;
  options.token = token;
  return options;
}

/// A loopback port that was free a moment ago.
int free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(
      io, {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(0)});
  return acceptor.local_endpoint().port();
}

std::unique_ptr<server::Daemon> start_daemon(const ScratchDir& dir, const std::string& listen,
                                             const std::string& token = "") {
  server::ServerConfig config;
  config.data_dir = dir / "data";
  config.listen = listen;
  config.admin_listen = "";
  config.snapshot_interval_s = 0;
  config.token = token;
  auto daemon = std::make_unique<server::Daemon>(config);
  const grpc::Status s = daemon->start();
  EXPECT_TRUE(s.ok()) << s.error_message();
  return daemon;
}

v1::UpsertRequest batch_of(const std::string& collection, size_t n, uint64_t seed, size_t offset) {
  return upsert_request(collection, make_documents(n, kDim, seed, offset));
}

TEST(Client, EveryOperationRoundTrips) {
  ScratchDir dir("client");
  auto daemon = start_daemon(dir, "127.0.0.1:0");
  Client client(options_for("127.0.0.1:" + std::to_string(daemon->grpc_port())));
  bool serving = false;
  ASSERT_TRUE(client.health(&serving).ok());
  EXPECT_TRUE(serving);

  v1::CreateCollectionRequest create;
  create.set_name("docs");
  create.set_dimension(kDim);
  create.set_index_spec("QC8,Flat");
  v1::CollectionInfo info;
  ASSERT_TRUE(client.create_collection(create, &info).ok());
  EXPECT_EQ(info.head_state(), v1::CollectionInfo::UNTRAINED);
  v1::UpsertResponse upserted;
  ASSERT_TRUE(client.upsert(batch_of("docs", 300, 1, 0), &upserted).ok());
  EXPECT_EQ(upserted.upserted(), 300u);

  v1::TrainHeadRequest train;
  train.set_collection("docs");
  train.set_max_epochs(2);
  std::vector<v1::TrainProgress::Stage> stages;
  ASSERT_TRUE(
      client.train_head(train, [&](const v1::TrainProgress& p) { stages.push_back(p.stage()); })
          .ok());
  ASSERT_FALSE(stages.empty());
  EXPECT_EQ(stages.back(), v1::TrainProgress::DONE);

  const auto docs = make_documents(300, kDim, 1);
  std::vector<float> queries;
  for (int i = 0; i < 3; ++i)
    queries.insert(queries.end(), docs[i].vector().begin(), docs[i].vector().end());
  v1::SearchResponse found;
  ASSERT_TRUE(
      client.search(Client::search_request("docs", queries.data(), 3, kDim, 4), &found).ok());
  ASSERT_EQ(found.results_size(), 3);
  EXPECT_EQ(found.results(0).hits_size(), 4);

  v1::GetResponse got;
  ASSERT_TRUE(client.get("docs", {"doc-5", "missing"}, true, &got).ok());
  ASSERT_EQ(got.documents_size(), 1);
  EXPECT_EQ(got.documents(0).vector_size(), kDim);
  EXPECT_EQ(got.missing_ids(0), "missing");
  v1::DeleteResponse deleted;
  ASSERT_TRUE(client.remove("docs", {"doc-5", "doc-6"}, &deleted).ok());
  EXPECT_EQ(deleted.deleted(), 2u);
  ASSERT_TRUE(client.describe_collection("docs", &info).ok());
  EXPECT_EQ(info.documents(), 298u);
  std::vector<v1::CollectionInfo> all;
  ASSERT_TRUE(client.list_collections(&all).ok());
  ASSERT_EQ(all.size(), 1u);
  ASSERT_TRUE(client.drop_collection("docs").ok());

  // Errors are typed statuses carrying the server's message; they are not retried.
  const grpc::Status missing = client.describe_collection("docs", &info);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(missing.error_message().find("'docs'"), std::string::npos);
}

TEST(Client, RetriesUnavailableUntilTheServerComesUp) {
  ScratchDir dir("client-retry");
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  ClientOptions options = options_for(address);
  options.max_attempts = 40;
  options.initial_backoff = std::chrono::milliseconds(50);
  options.max_backoff = std::chrono::milliseconds(200);
  Client client(options);
  std::atomic<bool> started{false};
  std::unique_ptr<server::Daemon> daemon;
  std::thread starter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    daemon = start_daemon(dir, address);
    started = true;
  });
  std::vector<v1::CollectionInfo> all;
  const grpc::Status s = client.list_collections(&all);
  starter.join();
  EXPECT_TRUE(started);
  EXPECT_TRUE(s.ok()) << s.error_message();

  // Without retries the same call against a dead address fails with UNAVAILABLE.
  ClientOptions once = options_for("127.0.0.1:" + std::to_string(free_port()));
  once.max_attempts = 1;
  EXPECT_EQ(Client(once).list_collections(&all).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(Client, SendsItsToken) {
  ScratchDir dir("client-token");
  auto daemon = start_daemon(dir, "127.0.0.1:0", "tok3n");
  const std::string address = "127.0.0.1:" + std::to_string(daemon->grpc_port());
  std::vector<v1::CollectionInfo> all;
  EXPECT_TRUE(Client(options_for(address, "tok3n")).list_collections(&all).ok());
  EXPECT_EQ(Client(options_for(address, "nope")).list_collections(&all).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST(Client, BulkWriterAcknowledgesEveryBatchAndStopsAtTheFirstError) {
  ScratchDir dir("client-bulk");
  auto daemon = start_daemon(dir, "127.0.0.1:0");
  Client client(options_for("127.0.0.1:" + std::to_string(daemon->grpc_port())));
  v1::CreateCollectionRequest create = create_request("bulk", kDim, kQubits, "QC8,Flat");
  ASSERT_TRUE(client.create_collection(create).ok());
  {
    auto writer = client.bulk_writer(3);
    std::atomic<int> callbacks{0};
    writer->on_acknowledged = [&](const v1::UpsertRequest&, const v1::UpsertResponse&) {
      ++callbacks;
    };
    for (size_t b = 0; b < 20; ++b)
      ASSERT_TRUE(writer->write(batch_of("bulk", 50, b, b * 50)).ok());
    ASSERT_TRUE(writer->finish().ok());
    EXPECT_EQ(writer->acknowledged_documents(), 1000u);
    EXPECT_EQ(writer->acknowledged_batches(), 20u);
    EXPECT_EQ(callbacks.load(), 20);
  }
  v1::CollectionInfo info;
  ASSERT_TRUE(client.describe_collection("bulk", &info).ok());
  EXPECT_EQ(info.documents(), 1000u);

  auto writer = client.bulk_writer(1);
  auto bad = batch_of("bulk", 10, 99, 5000);
  bad.mutable_documents(4)->mutable_vector()->RemoveLast();
  ASSERT_TRUE(writer->write(bad).ok());
  const grpc::Status s = writer->finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("documents[4].vector"), std::string::npos);
  EXPECT_FALSE(writer->write(batch_of("bulk", 10, 100, 6000)).ok());
}

/// TLS end to end: a self-signed certificate for 127.0.0.1 made with the openssl tool; the client
/// trusts it as its root. A plaintext client cannot talk to the TLS server.
TEST(Client, TlsWithTheServersCertificateAsRoot) {
  ScratchDir dir("client-tls");
  const std::string command =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext "
      "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
      (dir / "key.pem") + " -out " + (dir / "cert.pem") + " > " + (dir / "openssl.log") + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << "openssl failed, see " << (dir / "openssl.log");
  server::ServerConfig config;
  config.data_dir = dir / "data";
  config.listen = "127.0.0.1:0";
  config.admin_listen = "";
  config.tls_cert = dir / "cert.pem";
  config.tls_key = dir / "key.pem";
  server::Daemon daemon(config);
  ASSERT_TRUE(daemon.start().ok());
  ClientOptions options = options_for("127.0.0.1:" + std::to_string(daemon.grpc_port()));
  options.tls = true;
  options.tls_root_certs_file = dir / "cert.pem";
  std::vector<v1::CollectionInfo> all;
  const grpc::Status s = Client(options).list_collections(&all);
  EXPECT_TRUE(s.ok()) << s.error_message();
  ClientOptions plaintext = options_for(options.address);
  plaintext.max_attempts = 1;
  EXPECT_EQ(Client(plaintext).list_collections(&all).error_code(), grpc::StatusCode::UNAVAILABLE);
}

/// One Client shared by several threads.
TEST(Client, CallsFromManyThreadsShareOneClient) {
  ScratchDir dir("client-threads");
  auto daemon = start_daemon(dir, "127.0.0.1:0");
  Client client(options_for("127.0.0.1:" + std::to_string(daemon->grpc_port())));
  v1::CreateCollectionRequest create = create_request("shared", kDim, kQubits, "QC8,Flat");
  ASSERT_TRUE(client.create_collection(create).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        failures +=
            !client.upsert(batch_of("shared", 20, uint64_t(t * 100 + i), size_t(t * 1000 + i * 20)))
                 .ok();
        const auto q = make_documents(1, kDim, uint64_t(t));
        v1::SearchResponse found;
        failures += !client.search(search_request("shared", q, 5), &found).ok();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  v1::CollectionInfo info;
  ASSERT_TRUE(client.describe_collection("shared", &info).ok());
  EXPECT_EQ(info.documents(), 800u);
}

}  // namespace
}  // namespace bloch::testing
