// blochd in-process: a real Daemon (gRPC on loopback, RocksDB in a scratch directory, admin
// HTTP) driven through the generated bloch.v1 stubs. Every RPC and every documented error.

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <map>
#include <regex>
#include <thread>

#include "ServerTestKit.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "index/IndexFidelityFlat.h"
#include "server/Daemon.h"

namespace bloch::testing {
namespace {

constexpr int kDim = 32;
constexpr int kQubits = 16;
using idx_t = faiss::Index::idx_t;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }
  void TearDown() override { daemon_.reset(); }

  void start(const std::string& token = "") {
    server::ServerConfig config;
    config.data_dir = dir_ / "data";
    config.listen = "127.0.0.1:0";
    config.admin_listen = "127.0.0.1:0";
    config.snapshot_interval_s = 0;
    config.compact_interval_s = compact_interval_s_;
    config.max_batch = 500;
    config.max_k = 100;
    config.max_collections = 4;
    config.token = token;
    daemon_ = std::make_unique<server::Daemon>(config);
    const grpc::Status s = daemon_->start();
    ASSERT_TRUE(s.ok()) << s.error_message();
    stub_ = connect(daemon_->grpc_port());
  }
  void restart() {
    daemon_.reset();
    start();
  }

  /// A trained collection from an uploaded head.
  void create(const std::string& name, const std::string& spec = "QC16,Flat") {
    v1::CreateCollectionRequest request = create_request(name, kDim, kQubits, spec);
    v1::CollectionInfo info;
    grpc::ClientContext context;
    const grpc::Status s = stub_->CreateCollection(&context, request, &info);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(info.head_state(), v1::CollectionInfo::TRAINED);
  }
  grpc::Status upsert(const std::string& name, const std::vector<v1::Document>& docs,
                      v1::UpsertResponse* response = nullptr) {
    v1::UpsertResponse ignored;
    grpc::ClientContext context;
    return stub_->Upsert(&context, upsert_request(name, docs), response ? response : &ignored);
  }
  v1::SearchResponse search(const v1::SearchRequest& request) {
    v1::SearchResponse response;
    grpc::ClientContext context;
    const grpc::Status s = stub_->Search(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  v1::CollectionInfo describe(const std::string& name) {
    v1::DescribeCollectionRequest request;
    request.set_name(name);
    v1::CollectionInfo info;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->DescribeCollection(&context, request, &info).ok());
    return info;
  }

  /// A supervised TrainHead request: queries[i] → docs[i] for the first `pairs` documents.
  static v1::TrainHeadRequest supervised_request(const std::string& name,
                                                 const std::vector<v1::Document>& docs, int pairs,
                                                 uint64_t query_seed) {
    v1::TrainHeadRequest train;
    train.set_collection(name);
    train.set_max_epochs(2);
    const auto queries = make_documents(size_t(pairs), kDim, query_seed);
    for (int i = 0; i < pairs; ++i) {
      auto* pair = train.mutable_supervised()->add_pairs();
      *pair->mutable_query() = queries[size_t(i)].vector();
      pair->set_positive_id(docs[size_t(i)].id());
    }
    return train;
  }
  /// Runs a TrainHead stream to its end; `last` receives the final progress message.
  grpc::Status run_training(const v1::TrainHeadRequest& train, v1::TrainProgress* last = nullptr) {
    grpc::ClientContext context;
    auto reader = stub_->TrainHead(&context, train);
    v1::TrainProgress progress;
    while (reader->Read(&progress)) {
    }
    if (last) *last = progress;
    return reader->Finish();
  }

  double compact_interval_s_ = 0;  // no timed compaction unless a test asks for it
  ScratchDir dir_{"service"};
  std::unique_ptr<server::Daemon> daemon_;
  std::unique_ptr<v1::Bloch::Stub> stub_;
};

void expect_status(const grpc::Status& s, grpc::StatusCode code, const std::string& fragment) {
  EXPECT_EQ(s.error_code(), code) << s.error_message();
  EXPECT_NE(s.error_message().find(fragment), std::string::npos)
      << "message '" << s.error_message() << "' lacks '" << fragment << "'";
}

TEST_F(ServiceTest, CollectionsCreateListDescribeDrop) {
  create("alpha");
  create("beta", "QC16x4,HNSW8");
  v1::ListCollectionsResponse list;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ListCollections(&context, {}, &list).ok());
  }
  ASSERT_EQ(list.collections_size(), 2);
  EXPECT_EQ(list.collections(0).name(), "alpha");
  const v1::CollectionInfo beta = describe("beta");
  EXPECT_EQ(beta.dimension(), uint32_t(kDim));
  EXPECT_EQ(beta.qubits(), uint32_t(kQubits));
  EXPECT_EQ(beta.code_bits(), 4u);
  EXPECT_EQ(beta.code_bytes(), 8u);
  EXPECT_GT(beta.head_parameters(), 0u);
  v1::DropCollectionRequest drop;
  drop.set_name("alpha");
  v1::DropCollectionResponse dropped;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->DropCollection(&context, drop, &dropped).ok());
  }
  {
    grpc::ClientContext context;
    expect_status(stub_->DropCollection(&context, drop, &dropped), grpc::StatusCode::NOT_FOUND,
                  "alpha");
  }
  // A dropped name can be created again, empty.
  create("alpha");
  EXPECT_EQ(describe("alpha").documents(), 0u);
}

TEST_F(ServiceTest, CreateErrorsNameTheField) {
  auto try_create = [&](v1::CreateCollectionRequest request) {
    v1::CollectionInfo info;
    grpc::ClientContext context;
    return stub_->CreateCollection(&context, request, &info);
  };
  v1::CreateCollectionRequest good;
  good.set_name("c");
  good.set_dimension(kDim);
  auto bad = good;
  bad.set_name("no spaces");
  expect_status(try_create(bad), grpc::StatusCode::INVALID_ARGUMENT, "name");
  bad = good;
  bad.set_dimension(0);
  expect_status(try_create(bad), grpc::StatusCode::INVALID_ARGUMENT, "dimension");
  bad = good;
  bad.set_index_spec("QC16,Nope");
  expect_status(try_create(bad), grpc::StatusCode::INVALID_ARGUMENT, "index_spec");
  bad = good;
  bad.set_head_file("not a head");
  expect_status(try_create(bad), grpc::StatusCode::INVALID_ARGUMENT, "head_file");
  bad = good;
  bad.set_head_file(head_file_bytes(kDim + 1, kQubits));
  expect_status(try_create(bad), grpc::StatusCode::INVALID_ARGUMENT, "head_file");
  bad = good;
  bad.set_index_spec("QC16,IVF4");
  bad.set_discard_vectors(true);
  expect_status(try_create(bad), grpc::StatusCode::INVALID_ARGUMENT, "discard_vectors");
  ASSERT_TRUE(try_create(good).ok());
  expect_status(try_create(good), grpc::StatusCode::ALREADY_EXISTS, "'c'");
  for (const char* name : {"d", "e", "f"}) {
    auto more = good;
    more.set_name(name);
    ASSERT_TRUE(try_create(more).ok());
  }
  auto fifth = good;
  fifth.set_name("g");
  expect_status(try_create(fifth), grpc::StatusCode::RESOURCE_EXHAUSTED, "max_collections");
}

/// The service's results equal an in-process exact index with the same head and data.
TEST_F(ServiceTest, SearchEqualsInProcessExactIndex) {
  create("docs");
  const auto docs = make_documents(450, kDim, 11);
  ASSERT_TRUE(upsert("docs", docs).ok());
  IndexFidelityFlat local(FidelityHead::from_bytes(head_file_bytes(kDim, kQubits), "head"),
                          CodeType::k8bit);
  std::vector<float> x;
  for (const auto& doc : docs) x.insert(x.end(), doc.vector().begin(), doc.vector().end());
  local.add(idx_t(docs.size()), x.data());

  const auto queries = make_documents(20, kDim, 12);
  auto request = search_request("docs", queries, 10);
  request.set_with_payload(true);
  const v1::SearchResponse response = search(request);
  ASSERT_EQ(response.results_size(), 20);
  for (int qi = 0; qi < 20; ++qi) {
    std::vector<float> scores(docs.size());
    std::vector<idx_t> labels(docs.size());
    local.search(1, queries[qi].vector().data(), idx_t(docs.size()), scores.data(), labels.data());
    std::map<std::string, float> score_of;
    for (size_t j = 0; j < docs.size(); ++j)
      score_of["doc-" + std::to_string(labels[j])] = scores[j];
    const auto& hits = response.results(qi).hits();
    ASSERT_EQ(hits.size(), 10);
    for (int j = 0; j < 10; ++j) {
      EXPECT_FLOAT_EQ(hits[j].log_fidelity(), scores[size_t(j)]) << "query " << qi << " rank " << j;
      EXPECT_FLOAT_EQ(hits[j].log_fidelity(), score_of[hits[j].id()]);
      EXPECT_NEAR(hits[j].fidelity(), std::exp(hits[j].log_fidelity()), 1e-12);
      EXPECT_EQ(hits[j].payload_json(), "{\"n\":" + hits[j].id().substr(4) + "}");
    }
  }
}

// A fast-scan collection re-ranks k · rerank_factor candidates with its 8-bit codes: with every
// document a candidate, its hits are the exact index's, with the same scores (within the
// kernels' tolerance: the re-ranking scores decoded angles, the exact index a table).
TEST_F(ServiceTest, FastScanSearchWithEveryDocumentACandidateIsExact) {
  create("fastscan", "QC16x4fs,Refine(QC16x8)");
  const auto docs = make_documents(400, kDim, 13);
  ASSERT_TRUE(upsert("fastscan", docs).ok());
  IndexFidelityFlat local(FidelityHead::from_bytes(head_file_bytes(kDim, kQubits), "head"),
                          CodeType::k8bit);
  std::vector<float> x;
  for (const auto& doc : docs) x.insert(x.end(), doc.vector().begin(), doc.vector().end());
  local.add(idx_t(docs.size()), x.data());
  const auto queries = make_documents(10, kDim, 14);
  auto request = search_request("fastscan", queries, 10);
  request.set_rerank_factor(40);
  const v1::SearchResponse response = search(request);
  ASSERT_EQ(response.results_size(), 10);
  for (int qi = 0; qi < 10; ++qi) {
    std::vector<float> scores(10);
    std::vector<idx_t> labels(10);
    local.search(1, queries[qi].vector().data(), 10, scores.data(), labels.data());
    const auto& hits = response.results(qi).hits();
    ASSERT_EQ(hits.size(), 10);
    for (int j = 0; j < 10; ++j) {
      EXPECT_NEAR(hits[j].log_fidelity(), scores[size_t(j)], 1e-4) << "query " << qi;
      // Ties aside, the same documents in the same order.
      if (j + 1 < 10 && scores[size_t(j)] - scores[size_t(j) + 1] > 1e-3 &&
          (j == 0 || scores[size_t(j) - 1] - scores[size_t(j)] > 1e-3)) {
        EXPECT_EQ(hits[j].id(), "doc-" + std::to_string(labels[size_t(j)])) << "query " << qi;
      }
    }
  }
  EXPECT_EQ(describe("fastscan").code_bytes(), 16u);
}

TEST_F(ServiceTest, UpsertReplacesAndDeleteRemoves) {
  const std::map<std::string, std::string> kinds = {
      {"flat", "QC16,Flat"}, {"graph", "QC16,HNSW8"}, {"fastscan", "QC16x4fs,Refine(QC16x8)"}};
  for (const auto& [name, spec] : kinds) {
    create(name, spec);
    auto docs = make_documents(300, kDim, 21);
    ASSERT_TRUE(upsert(name, docs).ok());
    // Replace doc-0 by a copy of doc-1's vector: both are then equally close to that vector.
    auto replacement = docs[1];
    replacement.set_id("doc-0");
    replacement.set_payload_json("{\"replaced\":true}");
    v1::UpsertResponse response;
    ASSERT_TRUE(upsert(name, {replacement}, &response).ok());
    EXPECT_EQ(response.upserted(), 1u);
    EXPECT_EQ(response.replaced(), 1u);
    EXPECT_EQ(describe(name).documents(), 300u);
    auto request = search_request(name, {docs[1]}, 2);
    request.set_with_payload(true);
    auto hits = search(request).results(0).hits();
    ASSERT_EQ(hits.size(), 2);
    std::set<std::string> top{hits[0].id(), hits[1].id()};
    EXPECT_EQ(top, (std::set<std::string>{"doc-0", "doc-1"})) << spec;

    v1::DeleteRequest del;
    del.set_collection(name);
    for (int i = 0; i < 300; i += 2) del.add_ids("doc-" + std::to_string(i));
    del.add_ids("never-stored");
    v1::DeleteResponse deleted;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Delete(&context, del, &deleted).ok());
    EXPECT_EQ(deleted.deleted(), 150u);
    EXPECT_EQ(deleted.not_found(), 1u);
    EXPECT_EQ(describe(name).documents(), 150u);
    const auto queries = make_documents(10, kDim, 21);  // the stored vectors themselves
    const auto results = search(search_request(name, queries, 50));
    for (const auto& result : results.results()) {
      EXPECT_EQ(result.hits_size(), 50) << spec;
      for (const auto& hit : result.hits()) {
        EXPECT_EQ(std::stoi(hit.id().substr(4)) % 2, 1) << spec << ": deleted " << hit.id();
      }
    }
  }
}

TEST_F(ServiceTest, GetReturnsPayloadsVectorsAndMissingIds) {
  create("docs");
  const auto docs = make_documents(5, kDim, 31);
  ASSERT_TRUE(upsert("docs", docs).ok());
  v1::GetRequest request;
  request.set_collection("docs");
  request.add_ids("doc-3");
  request.add_ids("nope");
  request.add_ids("doc-1");
  request.set_with_vectors(true);
  v1::GetResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->Get(&context, request, &response).ok());
  ASSERT_EQ(response.documents_size(), 2);
  EXPECT_EQ(response.documents(0).id(), "doc-3");
  EXPECT_EQ(response.documents(0).payload_json(), docs[3].payload_json());
  ASSERT_EQ(response.documents(0).vector_size(), kDim);
  for (int j = 0; j < kDim; ++j) EXPECT_EQ(response.documents(0).vector(j), docs[3].vector(j));
  EXPECT_EQ(response.documents(1).id(), "doc-1");
  ASSERT_EQ(response.missing_ids_size(), 1);
  EXPECT_EQ(response.missing_ids(0), "nope");
}

TEST_F(ServiceTest, BadWritesAreRefusedAndLeaveTheCollectionUnchanged) {
  create("docs");
  const auto good = make_documents(10, kDim, 41);
  ASSERT_TRUE(upsert("docs", good).ok());
  struct Case {
    std::function<void(std::vector<v1::Document>&)> spoil;
    grpc::StatusCode code;
    std::string fragment;
  };
  const float nan = std::nanf("");
  const std::vector<Case> cases = {
      {[](auto& d) { d[3].mutable_vector()->RemoveLast(); }, grpc::StatusCode::INVALID_ARGUMENT,
       "documents[3].vector has 31 values"},
      {[&](auto& d) { d[4].set_vector(7, nan); }, grpc::StatusCode::INVALID_ARGUMENT,
       "documents[4].vector[7] is NaN"},
      {[](auto& d) { d[2].set_vector(0, INFINITY); }, grpc::StatusCode::INVALID_ARGUMENT,
       "documents[2].vector[0] is infinite"},
      {[](auto& d) { d[5].set_id(""); }, grpc::StatusCode::INVALID_ARGUMENT,
       "documents[5].id is empty"},
      {[](auto& d) { d[6].set_id(d[1].id()); }, grpc::StatusCode::INVALID_ARGUMENT,
       "documents[6].id 'new-1' repeats documents[1].id"},
      {[](auto& d) { d[7].set_payload_json("{\"a\":"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "documents[7].payload_json is not valid JSON"},
      {[](auto& d) { d.resize(501, d[0]); }, grpc::StatusCode::RESOURCE_EXHAUSTED, "max_batch"},
  };
  for (const Case& c : cases) {
    auto docs = make_documents(10, kDim, 42);
    for (size_t i = 0; i < docs.size(); ++i) docs[i].set_id("new-" + std::to_string(i));
    c.spoil(docs);
    expect_status(upsert("docs", docs), c.code, c.fragment);
    EXPECT_EQ(describe("docs").documents(), 10u) << c.fragment;
  }
  expect_status(upsert("nope", good), grpc::StatusCode::NOT_FOUND, "'nope'");
}

TEST_F(ServiceTest, BadSearchesNameTheField) {
  create("docs");
  create("graph", "QC16,HNSW8");
  ASSERT_TRUE(upsert("docs", make_documents(10, kDim, 51)).ok());
  const auto queries = make_documents(1, kDim, 52);
  auto check = [&](v1::SearchRequest request, grpc::StatusCode code, const std::string& fragment) {
    v1::SearchResponse response;
    grpc::ClientContext context;
    expect_status(stub_->Search(&context, request, &response), code, fragment);
  };
  check(search_request("docs", queries, 0), grpc::StatusCode::INVALID_ARGUMENT, "k = 0");
  check(search_request("docs", queries, 101), grpc::StatusCode::RESOURCE_EXHAUSTED, "max_k = 100");
  check(search_request("docs", {}, 5), grpc::StatusCode::INVALID_ARGUMENT, "queries");
  auto wrong_dim = search_request("docs", queries, 5);
  wrong_dim.mutable_queries(0)->mutable_values()->Add(1.0f);
  check(wrong_dim, grpc::StatusCode::INVALID_ARGUMENT, "queries[0].values has 33 values");
  auto nprobe = search_request("docs", queries, 5);
  nprobe.set_nprobe(4);
  check(nprobe, grpc::StatusCode::INVALID_ARGUMENT, "nprobe");
  auto ef = search_request("docs", queries, 5);
  ef.set_ef(64);
  check(ef, grpc::StatusCode::INVALID_ARGUMENT, "ef");
  auto small_ef = search_request("graph", queries, 5);
  small_ef.set_ef(2);
  check(small_ef, grpc::StatusCode::INVALID_ARGUMENT, "ef = 2");
  auto rerank = search_request("docs", queries, 5);
  rerank.set_rerank_factor(4);
  check(rerank, grpc::StatusCode::INVALID_ARGUMENT, "rerank_factor: collection 'docs'");
  create("fastscan", "QC16x4fs,Refine(QC16x8)");
  auto deep = search_request("fastscan", queries, 5);
  deep.set_rerank_factor(257);
  check(deep, grpc::StatusCode::INVALID_ARGUMENT, "rerank_factor = 257 exceeds 256");
  check(search_request("nope", queries, 5), grpc::StatusCode::NOT_FOUND, "'nope'");
}

TEST_F(ServiceTest, UntrainedCollectionTrainsOnRequestAndThenSearches) {
  v1::CreateCollectionRequest create_request;
  create_request.set_name("raw");
  create_request.set_dimension(kDim);
  create_request.set_index_spec("QC16,Flat");
  v1::CollectionInfo info;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->CreateCollection(&context, create_request, &info).ok());
  }
  EXPECT_EQ(info.head_state(), v1::CollectionInfo::UNTRAINED);
  const auto docs = make_documents(400, kDim, 61);
  ASSERT_TRUE(upsert("raw", docs).ok());
  {
    v1::SearchResponse response;
    grpc::ClientContext context;
    expect_status(stub_->Search(&context, search_request("raw", {docs[0]}, 5), &response),
                  grpc::StatusCode::FAILED_PRECONDITION, "untrained");
  }
  v1::TrainHeadRequest train;
  train.set_collection("raw");
  train.mutable_unsupervised()->set_sample_size(300);
  train.set_max_epochs(2);
  grpc::ClientContext context;
  auto reader = stub_->TrainHead(&context, train);
  v1::TrainProgress progress;
  std::vector<v1::TrainProgress::Stage> stages;
  while (reader->Read(&progress)) stages.push_back(progress.stage());
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_FALSE(stages.empty());
  EXPECT_EQ(stages.back(), v1::TrainProgress::DONE);
  EXPECT_NE(std::find(stages.begin(), stages.end(), v1::TrainProgress::TRAINING), stages.end());
  EXPECT_EQ(progress.encoded(), 400u);
  EXPECT_EQ(describe("raw").head_state(), v1::CollectionInfo::TRAINED);
  // Every stored vector finds itself first (or an exact tie).
  const auto results = search(search_request("raw", docs, 1)).results();
  size_t self = 0;
  for (size_t i = 0; i < docs.size(); ++i) self += results[int(i)].hits(0).id() == docs[i].id();
  EXPECT_GT(self, docs.size() * 9 / 10);
  // Retraining keeps every document and its payload.
  grpc::ClientContext again;
  auto second = stub_->TrainHead(&again, train);
  while (second->Read(&progress)) {
  }
  ASSERT_TRUE(second->Finish().ok());
  EXPECT_EQ(describe("raw").documents(), 400u);
  EXPECT_EQ(describe("raw").index_entries(), 400u);
}

TEST_F(ServiceTest, TrainOnFirstNTrainsInTheBackground) {
  v1::CreateCollectionRequest request;
  request.set_name("auto");
  request.set_dimension(kDim);
  request.set_index_spec("QC16,Flat");
  request.set_train_on_first_n(200);
  v1::CollectionInfo info;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->CreateCollection(&context, request, &info).ok());
  const auto docs = make_documents(300, kDim, 71);
  ASSERT_TRUE(upsert("auto", docs).ok());
  for (int i = 0; i < 600 && describe("auto").head_state() != v1::CollectionInfo::TRAINED; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(describe("auto").head_state(), v1::CollectionInfo::TRAINED);
  ASSERT_TRUE(upsert("auto", make_documents(50, kDim, 72, 1000)).ok());
  EXPECT_EQ(describe("auto").documents(), 350u);
  EXPECT_EQ(search(search_request("auto", {docs[0]}, 5)).results(0).hits_size(), 5);
}

/// Inverted lists: trained from stored vectors, nprobe per query, deletions never returned,
/// identical answers after restarts with and without a snapshot (the centroids are stored).
TEST_F(ServiceTest, IvfCollectionsTrainSearchDeleteAndRestart) {
  v1::CreateCollectionRequest request;
  request.set_name("lists");
  request.set_dimension(kDim);
  request.set_index_spec("QC16,IVF8");
  request.set_train_on_first_n(300);
  v1::CollectionInfo info;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->CreateCollection(&context, request, &info).ok());
  }
  {
    auto with_head = request;
    with_head.set_name("lists2");
    with_head.set_head_file(head_file_bytes(kDim, kQubits));
    grpc::ClientContext context;
    expect_status(stub_->CreateCollection(&context, with_head, &info),
                  grpc::StatusCode::INVALID_ARGUMENT, "head_file");
  }
  const auto docs = make_documents(400, kDim, 161);
  ASSERT_TRUE(upsert("lists", docs).ok());
  for (int i = 0; i < 600 && describe("lists").head_state() != v1::CollectionInfo::TRAINED; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(describe("lists").head_state(), v1::CollectionInfo::TRAINED);
  v1::DeleteRequest del;
  del.set_collection("lists");
  for (int i = 0; i < 400; i += 3) del.add_ids("doc-" + std::to_string(i));
  v1::DeleteResponse deleted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Delete(&context, del, &deleted).ok());
  }
  auto all_lists = search_request("lists", make_documents(10, kDim, 161), 20);
  all_lists.set_nprobe(8);
  const v1::SearchResponse before = search(all_lists);
  for (const auto& result : before.results()) {
    EXPECT_EQ(result.hits_size(), 20);
    for (const auto& hit : result.hits()) EXPECT_NE(std::stoi(hit.id().substr(4)) % 3, 0);
  }
  auto too_many = all_lists;
  too_many.set_nprobe(9);
  {
    v1::SearchResponse response;
    grpc::ClientContext context;
    expect_status(stub_->Search(&context, too_many, &response), grpc::StatusCode::INVALID_ARGUMENT,
                  "nprobe = 9");
  }
  restart();
  EXPECT_EQ(search(all_lists).DebugString(), before.DebugString());
  std::filesystem::remove_all(dir_ / "data/snapshots");
  restart();
  EXPECT_EQ(search(all_lists).DebugString(), before.DebugString());
}

/// Compaction rebuilds the index from the live documents with the current head: the entries of
/// replaced and deleted documents are gone and answers are unchanged (Flat: exactly; a Flat
/// collection that discards raw vectors compacts from its stored codes).
TEST_F(ServiceTest, CompactionDropsDeadEntriesAndKeepsAnswers) {
  create("flat");
  create("graph", "QC16,HNSW8");
  {
    v1::CreateCollectionRequest request = create_request("codes-only", kDim, kQubits, "QC16,Flat");
    request.set_discard_vectors(true);
    v1::CollectionInfo info;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->CreateCollection(&context, request, &info).ok());
  }
  const auto queries = make_documents(8, kDim, 211);
  for (const std::string name : {"flat", "graph", "codes-only"}) {
    ASSERT_TRUE(upsert(name, make_documents(300, kDim, 212)).ok());
    ASSERT_TRUE(upsert(name, make_documents(50, kDim, 213)).ok());  // replaces doc-0 … doc-49
    v1::DeleteRequest del;
    del.set_collection(name);
    for (int i = 100; i < 200; ++i) del.add_ids("doc-" + std::to_string(i));
    v1::DeleteResponse deleted;
    {
      grpc::ClientContext context;
      ASSERT_TRUE(stub_->Delete(&context, del, &deleted).ok());
    }
    EXPECT_EQ(describe(name).index_entries(), 350u);
    const v1::SearchResponse before = search(search_request(name, queries, 10));

    v1::TrainHeadRequest compact;
    compact.set_collection(name);
    compact.mutable_compact();
    grpc::ClientContext context;
    auto reader = stub_->TrainHead(&context, compact);
    v1::TrainProgress progress;
    while (reader->Read(&progress)) {
    }
    const grpc::Status s = reader->Finish();
    ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
    EXPECT_EQ(describe(name).index_entries(), 200u) << name;
    EXPECT_EQ(describe(name).documents(), 200u) << name;
    const v1::SearchResponse after = search(search_request(name, queries, 10));
    if (name != "graph") {
      EXPECT_EQ(after.DebugString(), before.DebugString()) << name;
    } else {
      for (const auto& result : after.results()) EXPECT_EQ(result.hits_size(), 10);
    }
  }
}

/// The compaction timer compacts a collection once a quarter of its index entries are dead,
/// with the same answers; one below that is left alone.
TEST_F(ServiceTest, TimedCompactionDropsDeadEntriesPastTheThreshold) {
  compact_interval_s_ = 0.2;
  restart();
  create("churned");
  create("quiet", "QC16x4fs,Refine(QC16x8)");
  const auto docs = make_documents(200, kDim, 181);
  for (const std::string name : {"churned", "quiet"}) ASSERT_TRUE(upsert(name, docs).ok());
  auto delete_ids = [&](const std::string& name, int every) {
    v1::DeleteRequest del;
    del.set_collection(name);
    for (int i = 0; i < 200; i += every) del.add_ids("doc-" + std::to_string(i));
    v1::DeleteResponse deleted;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Delete(&context, del, &deleted).ok());
  };
  delete_ids("churned", 2);  // 100 of 200 entries dead
  delete_ids("quiet", 10);   // 20 of 200: below 0.25
  const auto queries = make_documents(5, kDim, 182);
  const std::string before = search(search_request("churned", queries, 10)).DebugString();
  for (int i = 0; i < 300 && describe("churned").index_entries() != 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(describe("churned").index_entries(), 100u);
  EXPECT_EQ(describe("churned").documents(), 100u);
  EXPECT_EQ(search(search_request("churned", queries, 10)).DebugString(), before);
  EXPECT_EQ(describe("quiet").index_entries(), 200u);
  EXPECT_EQ(describe("quiet").documents(), 180u);
}

TEST_F(ServiceTest, SupervisedTrainingUsesStoredPositives) {
  create("sup");
  const auto docs = make_documents(200, kDim, 81);
  ASSERT_TRUE(upsert("sup", docs).ok());
  v1::TrainHeadRequest train = supervised_request("sup", docs, 100, 82);
  v1::TrainProgress progress;
  ASSERT_TRUE(run_training(train, &progress).ok());
  EXPECT_EQ(progress.stage(), v1::TrainProgress::DONE);
  train.mutable_supervised()->mutable_pairs(5)->set_positive_id("missing");
  expect_status(run_training(train), grpc::StatusCode::INVALID_ARGUMENT,
                "supervised.pairs[5].positive_id 'missing'");
}

TEST_F(ServiceTest, SupervisedFourBitCollectionKeepsItsFittedRangesAcrossRestarts) {
  create("sup4", "QC16x4,Flat");
  const auto docs = make_documents(300, kDim, 91);
  ASSERT_TRUE(upsert("sup4", docs).ok());
  ASSERT_TRUE(run_training(supervised_request("sup4", docs, 20, 92)).ok());
  EXPECT_NE(describe("sup4").head_description().find("angle ranges fitted"), std::string::npos)
      << describe("sup4").head_description();
  // Each stored document finds itself first (or an exact tie) through its 4-bit code.
  const auto before = search(search_request("sup4", docs, 3));
  size_t self = 0;
  for (size_t i = 0; i < docs.size(); ++i)
    self += before.results(int(i)).hits(0).id() == docs[i].id();
  EXPECT_GT(self, docs.size() * 8 / 10) << self;
  // Stored codes are only meaningful under the ranges they were encoded with: after a
  // restart, the head (and its ranges) come back from storage and score them alike.
  restart();
  EXPECT_EQ(search(search_request("sup4", docs, 3)).DebugString(), before.DebugString());
}

TEST_F(ServiceTest, UpsertStreamCommitsBatchesUntilTheFirstBadOne) {
  create("bulk");
  const auto docs = make_documents(300, kDim, 91);
  grpc::ClientContext context;
  v1::UpsertResponse response;
  auto writer = stub_->UpsertStream(&context, &response);
  ASSERT_TRUE(writer->Write(upsert_request("bulk", docs, 0, 100)));
  ASSERT_TRUE(writer->Write(upsert_request("bulk", docs, 100, 200)));
  auto bad = upsert_request("bulk", docs, 200, 300);
  bad.mutable_documents(3)->mutable_vector()->RemoveLast();
  writer->Write(bad);
  writer->WritesDone();
  const grpc::Status s = writer->Finish();
  expect_status(s, grpc::StatusCode::INVALID_ARGUMENT, "batch 2: documents[3].vector");
  const auto trailing = context.GetServerTrailingMetadata();
  auto it = trailing.find("bloch-upserted");
  ASSERT_NE(it, trailing.end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "200");
  EXPECT_EQ(describe("bulk").documents(), 200u);
}

TEST_F(ServiceTest, RestartKeepsEverythingAndSearchesAlike) {
  const std::vector<std::string> names = {"flat", "graph", "fastscan"};
  create("flat");
  create("graph", "QC16,HNSW8");
  create("fastscan", "QC16x4fs,Refine(QC16x8)");
  const auto docs = make_documents(500, kDim, 101);
  const auto queries = make_documents(10, kDim, 102);
  std::map<std::string, v1::SearchResponse> before;
  for (const std::string& name : names) {
    ASSERT_TRUE(upsert(name, docs).ok());
    v1::DeleteRequest del;
    del.set_collection(name);
    del.add_ids("doc-7");
    v1::DeleteResponse deleted;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Delete(&context, del, &deleted).ok());
    before[name] = search(search_request(name, queries, 10));
  }
  // The first restart snapshots on the way down; the second also replays writes made after
  // that snapshot.
  restart();
  for (const std::string& name : names) {
    EXPECT_EQ(search(search_request(name, queries, 10)).DebugString(), before[name].DebugString());
    ASSERT_TRUE(upsert(name, make_documents(50, kDim, 103, 5000)).ok());
    before[name] = search(search_request(name, queries, 10));
  }
  std::filesystem::remove_all(dir_ / "data/snapshots");
  restart();
  for (const std::string& name : names) {
    EXPECT_EQ(describe(name).documents(), 549u);
    EXPECT_EQ(search(search_request(name, queries, 10)).DebugString(), before[name].DebugString());
  }
}

TEST_F(ServiceTest, TokenAuthentication) {
  daemon_.reset();
  start("s3cret");
  auto call = [&](const std::string& authorization) {
    grpc::ClientContext context;
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    v1::ListCollectionsResponse response;
    return stub_->ListCollections(&context, {}, &response);
  };
  expect_status(call(""), grpc::StatusCode::UNAUTHENTICATED, "missing bearer token");
  expect_status(call("Bearer wrong"), grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
  EXPECT_TRUE(call("Bearer s3cret").ok());
  // Health needs no token.
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(daemon_->grpc_port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, {}, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

std::string http_get(int port, const std::string& target, unsigned* status) {
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  http::write(socket, request);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  *status = response.result_int();
  return response.body();
}

TEST_F(ServiceTest, MetricsEndpointCountsRequestsAndDocuments) {
  create("docs");
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(upsert("docs", make_documents(10, kDim, 111, 10 * i)).ok());
  EXPECT_FALSE(upsert("docs", {v1::Document()}).ok());
  unsigned status = 0;
  const std::string text = http_get(daemon_->admin_port(), "/metrics", &status);
  EXPECT_EQ(status, 200u);
  // Every sample line parses as name{labels} value.
  const std::regex sample(R"(^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$)");
  std::map<std::string, double> samples;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    ASSERT_TRUE(std::regex_match(line, sample)) << line;
    const auto space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  EXPECT_EQ(samples["bloch_rpc_requests_total{method=\"Upsert\",code=\"OK\"}"], 3);
  EXPECT_EQ(samples["bloch_rpc_requests_total{method=\"Upsert\",code=\"INVALID_ARGUMENT\"}"], 1);
  EXPECT_EQ(samples["bloch_rpc_latency_seconds_count{method=\"Upsert\"}"], 4);
  EXPECT_EQ(samples["bloch_collection_documents{collection=\"docs\"}"], 30);
  EXPECT_EQ(samples["bloch_collection_index_bytes{collection=\"docs\"}"], 30 * kQubits);
  EXPECT_EQ(http_get(daemon_->admin_port(), "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200u);
  http_get(daemon_->admin_port(), "/nope", &status);
  EXPECT_EQ(status, 404u);
}

/// Searches over gRPC while batches are upserted and deleted: every search succeeds with k hits,
/// and afterwards no deleted id is returned. (The TSan pass runs the same at the Collection
/// level, CollectionThreads.ConcurrentSearchesDuringIngestAndRetraining: Debian's gRPC is not
/// built for TSan, so its internals would drown the report.)
TEST_F(ServiceTest, SearchesDuringIngestOverGrpc) {
  create("live");
  create("graph", "QC16,HNSW8");
  for (const std::string name : {"live", "graph"}) {
    ASSERT_TRUE(upsert(name, make_documents(200, kDim, 121)).ok());
  }
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> searchers;
  for (int t = 0; t < 3; ++t) {
    searchers.emplace_back([&, t] {
      auto stub = connect(daemon_->grpc_port());
      const auto queries = make_documents(4, kDim, 130 + t);
      while (!done) {
        for (const std::string name : {"live", "graph"}) {
          v1::SearchResponse response;
          grpc::ClientContext context;
          if (!stub->Search(&context, search_request(name, queries, 10), &response).ok()) {
            ++failures;
          }
          for (const auto& result : response.results()) failures += result.hits_size() != 10;
        }
      }
    });
  }
  for (int batch = 0; batch < 15; ++batch) {
    for (const std::string name : {"live", "graph"}) {
      auto docs = make_documents(40, kDim, 140 + batch, 1000 * (batch + 1));
      for (size_t i = 0; i < 10; ++i) docs[i].set_id("gone-" + std::to_string(batch * 10 + i));
      ASSERT_TRUE(upsert(name, docs).ok());
      v1::DeleteRequest del;
      del.set_collection(name);
      for (size_t i = 0; i < 10; ++i) del.add_ids(docs[i].id());
      v1::DeleteResponse deleted;
      grpc::ClientContext context;
      ASSERT_TRUE(stub_->Delete(&context, del, &deleted).ok());
    }
  }
  done = true;
  for (auto& t : searchers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(describe("live").documents(), 200u + 15 * 30);
  for (const std::string name : {"live", "graph"}) {
    const auto results = search(search_request(name, make_documents(20, kDim, 150), 100));
    for (const auto& result : results.results()) {
      for (const auto& hit : result.hits()) EXPECT_FALSE(hit.id().starts_with("gone-")) << hit.id();
    }
  }
}

}  // namespace
}  // namespace bloch::testing

namespace bloch::testing {
namespace {

/// The collection's locking without gRPC (run under TSan by tests/run.sh): three threads search
/// while the main thread upserts, deletes, and retrains the head (which swaps the index in).
TEST(CollectionThreads, ConcurrentSearchesDuringIngestAndRetraining) {
  ScratchDir dir("collection-threads");
  server::CatalogOptions options;
  options.data_dir = dir / "data";
  std::unique_ptr<server::Catalog> catalog;
  ASSERT_TRUE(server::Catalog::Open(options, &catalog).ok());
  for (const std::string spec : {"QC16,Flat", "QC16,HNSW8"}) {
    const std::string name = spec == "QC16,Flat" ? "flat" : "graph";
    v1::CreateCollectionRequest create = create_request(name, kDim, kQubits, spec);
    v1::CollectionInfo info;
    ASSERT_TRUE(catalog->create(create, &info).ok());
    std::shared_ptr<server::Collection> collection;
    ASSERT_TRUE(catalog->find(name, &collection).ok());
    v1::UpsertResponse upserted;
    ASSERT_TRUE(
        collection->upsert(upsert_request(name, make_documents(200, kDim, 171)), &upserted).ok());

    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> searchers;
    for (int t = 0; t < 3; ++t) {
      searchers.emplace_back([&, t] {
        const auto request = search_request(name, make_documents(4, kDim, 180 + t), 10);
        while (!done) {
          v1::SearchResponse response;
          failures += !collection->search(request, &response).ok();
          for (const auto& result : response.results()) failures += result.hits_size() != 10;
        }
      });
    }
    for (int batch = 0; batch < 12; ++batch) {
      auto docs = make_documents(30, kDim, 190 + batch, 1000 * (batch + 1));
      for (size_t i = 0; i < 10; ++i) docs[i].set_id("gone-" + std::to_string(batch * 10 + i));
      ASSERT_TRUE(collection->upsert(upsert_request(name, docs), &upserted).ok());
      v1::DeleteRequest del;
      del.set_collection(name);
      for (size_t i = 0; i < 10; ++i) del.add_ids(docs[i].id());
      v1::DeleteResponse deleted;
      ASSERT_TRUE(collection->remove(del, &deleted).ok());
      if (batch == 5) {
        v1::TrainHeadRequest train;
        train.set_collection(name);
        train.set_max_epochs(1);
        ASSERT_TRUE(collection->train(train, [](const v1::TrainProgress&) { return true; }).ok());
      }
    }
    done = true;
    for (auto& t : searchers) t.join();
    EXPECT_EQ(failures.load(), 0) << spec;
    v1::SearchResponse response;
    ASSERT_TRUE(
        collection->search(search_request(name, make_documents(20, kDim, 199), 100), &response)
            .ok());
    for (const auto& result : response.results()) {
      for (const auto& hit : result.hits()) EXPECT_FALSE(hit.id().starts_with("gone-")) << hit.id();
    }
  }
}

}  // namespace
}  // namespace bloch::testing
