// blochd as a real process on loopback: kill -9 in the middle of ingest loses no acknowledged
// write, SIGTERM shuts down cleanly and a restart answers alike, and settings come from flags,
// the environment and a config file in that order of precedence.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "BlochdProcess.h"
#include "ServerTestKit.h"

namespace bloch::testing {
namespace {

constexpr int kDim = 24;
constexpr int kQubits = 12;

void create_collection(v1::Bloch::Stub& stub, const std::string& name, const std::string& spec) {
  v1::CreateCollectionRequest request = create_request(name, kDim, kQubits, spec);
  v1::CollectionInfo info;
  grpc::ClientContext context;
  const grpc::Status s = stub.CreateCollection(&context, request, &info);
  ASSERT_TRUE(s.ok()) << s.error_message();
}

/// How many of `ids` the server holds.
size_t count_stored(v1::Bloch::Stub& stub, const std::string& collection,
                    const std::vector<std::string>& ids) {
  v1::GetRequest request;
  request.set_collection(collection);
  for (const auto& id : ids) request.add_ids(id);
  v1::GetResponse response;
  grpc::ClientContext context;
  const grpc::Status s = stub.Get(&context, request, &response);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return size_t(response.documents_size());
}

TEST(BlochdProcess, KillNineLosesNoAcknowledgedWrite) {
  ScratchDir dir("kill9");
  const std::vector<std::string> collections = {"flat", "graph"};
  std::map<std::string, std::vector<std::string>> acknowledged;
  std::map<std::string, std::vector<std::vector<std::string>>> in_flight;
  std::mt19937 rng(5);
  for (int round = 0; round < 3; ++round) {
    BlochdProcess process(dir);
    ASSERT_TRUE(process.wait_ready()) << "blochd did not start, see " << (dir / "blochd.log");
    auto stub = connect(process.port());
    if (round == 0) {
      create_collection(*stub, "flat", "QC12,Flat");
      create_collection(*stub, "graph", "QC12,HNSW8");
    }
    // Everything acknowledged in earlier rounds survived the kill; a batch that was in flight
    // is all there or not at all.
    for (const auto& name : collections) {
      EXPECT_EQ(count_stored(*stub, name, acknowledged[name]), acknowledged[name].size())
          << name << " round " << round;
      for (const auto& batch : in_flight[name]) {
        const size_t n = count_stored(*stub, name, batch);
        EXPECT_TRUE(n == 0 || n == batch.size()) << name << ": " << n << " of " << batch.size();
      }
    }
    std::atomic<bool> failed{false};
    std::thread writer([&] {
      for (int batch = 0; !failed; ++batch) {
        for (const auto& name : collections) {
          auto docs = make_documents(25, kDim, uint64_t(round * 1000 + batch), 0);
          std::vector<std::string> ids;
          for (size_t i = 0; i < docs.size(); ++i) {
            // Built piecewise: GCC 12 warns (-Wrestrict) on a chain of '+' here.
            std::string id = "r";
            id += std::to_string(round);
            id += "-b";
            id += std::to_string(batch);
            id += "-";
            id += std::to_string(i);
            docs[i].set_id(id);
            ids.push_back(docs[i].id());
          }
          v1::UpsertResponse response;
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
          if (stub->Upsert(&context, upsert_request(name, docs), &response).ok()) {
            acknowledged[name].insert(acknowledged[name].end(), ids.begin(), ids.end());
          } else {
            in_flight[name].push_back(ids);
            failed = true;
            break;
          }
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(400 + rng() % 600));
    const int status = process.signal_and_wait(SIGKILL);
    writer.join();
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ASSERT_GT(acknowledged["flat"].size(), 0u);
  }
  // The index rebuilt after the kills (stale snapshot + replayed records) answers exactly as
  // the index a graceful restart loads from its final snapshot.
  std::map<std::string, std::string> replayed;
  {
    BlochdProcess process(dir);
    ASSERT_TRUE(process.wait_ready());
    auto stub = connect(process.port());
    for (const auto& name : collections) {
      EXPECT_EQ(count_stored(*stub, name, acknowledged[name]), acknowledged[name].size()) << name;
      v1::SearchResponse response;
      grpc::ClientContext context;
      ASSERT_TRUE(
          stub->Search(&context, search_request(name, make_documents(3, kDim, 1), 10), &response)
              .ok());
      for (const auto& result : response.results()) EXPECT_EQ(result.hits_size(), 10);
      replayed[name] = response.DebugString();
    }
    process.signal_and_wait(SIGTERM);
  }
  BlochdProcess process(dir);
  ASSERT_TRUE(process.wait_ready());
  auto stub = connect(process.port());
  for (const auto& name : collections) {
    v1::SearchResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(
        stub->Search(&context, search_request(name, make_documents(3, kDim, 1), 10), &response)
            .ok());
    EXPECT_EQ(response.DebugString(), replayed[name]) << name;
  }
}

TEST(BlochdProcess, SigtermShutsDownCleanlyAndRestartAnswersAlike) {
  ScratchDir dir("sigterm");
  const auto queries = make_documents(5, kDim, 9);
  std::string before;
  {
    BlochdProcess process(dir);
    ASSERT_TRUE(process.wait_ready());
    auto stub = connect(process.port());
    create_collection(*stub, "graph", "QC12,HNSW8");
    v1::UpsertResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(
        stub->Upsert(&context, upsert_request("graph", make_documents(400, kDim, 8)), &response)
            .ok());
    v1::SearchResponse found;
    grpc::ClientContext search_context;
    ASSERT_TRUE(stub->Search(&search_context, search_request("graph", queries, 10), &found).ok());
    before = found.DebugString();
    stub.reset();
    const int status = process.signal_and_wait(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  // The graceful stop wrote a snapshot of the graph.
  size_t snapshots = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "data/snapshots")) {
    snapshots += entry.path().extension() == ".bloch";
  }
  EXPECT_EQ(snapshots, 1u);
  BlochdProcess process(dir);
  ASSERT_TRUE(process.wait_ready());
  auto stub = connect(process.port());
  v1::SearchResponse found;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Search(&context, search_request("graph", queries, 10), &found).ok());
  EXPECT_EQ(found.DebugString(), before);
}

TEST(BlochdProcess, FlagsBeatEnvironmentWhichBeatsTheConfigFile) {
  ScratchDir dir("config");
  {
    std::ofstream config(dir / "blochd.toml");
    config << "max_k = 5\nmax_batch = 3\n";
  }
  BlochdProcess process(dir, {"--config", dir / "blochd.toml", "--max-k", "9"},
                        {"BLOCH_MAX_K=7", "BLOCH_MAX_BATCH=4"});
  ASSERT_TRUE(process.wait_ready());
  auto stub = connect(process.port());
  create_collection(*stub, "c", "QC12,Flat");
  const auto docs = make_documents(12, kDim, 3);
  auto upsert = [&](size_t n) {
    v1::UpsertResponse response;
    grpc::ClientContext context;
    return stub->Upsert(&context, upsert_request("c", docs, 0, n), &response);
  };
  EXPECT_TRUE(upsert(4).ok());  // environment (4) beats the file (3)
  EXPECT_EQ(upsert(5).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto search = [&](uint32_t k) {
    v1::SearchResponse response;
    grpc::ClientContext context;
    return stub->Search(&context, search_request("c", {docs[0]}, k), &response);
  };
  EXPECT_TRUE(search(9).ok());  // the flag (9) beats the environment (7)
  EXPECT_EQ(search(10).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(BlochdProcess, BadSettingsStopWithAMessage) {
  ScratchDir dir("badconfig");
  {
    std::ofstream config(dir / "blochd.toml");
    config << "max_kk = 5\n";
  }
  BlochdProcess process(dir, {"--config", dir / "blochd.toml"});
  const int status = process.wait_exit();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  std::ifstream log(dir / "blochd.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("key 'max_kk' is not a setting"), std::string::npos) << text;
}

}  // namespace
}  // namespace bloch::testing
