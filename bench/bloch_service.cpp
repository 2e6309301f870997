// The service benchmark: blochd (in-process Daemon, real gRPC on loopback, RocksDB in a scratch
// directory) driven through the C++ client.
//
//  1. bulk load: n generated clustered d-dimensional vectors through the client's BulkWriter
//     (batches of --batch, --in-flight in flight) into a collection with an uploaded head:
//     vectors/s, against the raw write rate of the storage alone — the same rows (payload,
//     record with code, raw vector) written as synced RocksDB WriteBatches of the same size
//     into a fresh database, one writer: once through blochd's own store (server/Storage:
//     column families, keys, blob files, direct I/O) and once into plain RocksDB with default
//     options, the baseline a user would write themselves;
//  2. search latency: one client issuing single-query searches for --seconds, p50/p99/max,
//     first alone, then while another client upserts batches without pause (the ingest rate
//     during that phase is reported too).
//
// Prints a markdown table; nothing here is a test.

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <thread>

#include "SyntheticData.h"
#include "WallClock.h"
#include "bloch/Client.h"
#include "index/FidelityHead.h"
#include "server/Daemon.h"
#include "server/Storage.h"

#include <spdlog/spdlog.h>

namespace bloch::bench {
namespace {

struct Options {
  size_t n = 200000;
  int dim = 768;
  std::string spec = "QC128,Flat";
  size_t batch = 1000;
  size_t in_flight = 4;
  double seconds = 10;
  std::string dir = (std::filesystem::temp_directory_path() / "bloch-service-bench").string();
};

/// Clustered rows (tests/SyntheticData.h): 64 centres N(0,1), points = centre + 0.3·N(0,1).
std::vector<float> make_rows(size_t n, int d, uint64_t seed) {
  return testing::make_clustered(n, d, 64, 1.0f, 0.3f, seed).x;
}

v1::UpsertRequest batch_request(const std::vector<float>& rows, int d, size_t begin, size_t end,
                                const std::string& prefix) {
  v1::UpsertRequest request;
  request.set_collection("bench");
  for (size_t i = begin; i < end; ++i) {
    v1::Document* doc = request.add_documents();
    doc->set_id(prefix + std::to_string(i));
    doc->mutable_vector()->Add(rows.begin() + long(i * d), rows.begin() + long((i + 1) * d));
    doc->set_payload_json("{\"n\":" + std::to_string(i) + "}");
  }
  return request;
}

struct Latency {
  double p50 = 0, p99 = 0, max = 0;
  size_t count = 0;
};

Latency summarise(std::vector<double> ms) {
  Latency out;
  if (ms.empty()) return out;
  std::sort(ms.begin(), ms.end());
  out.count = ms.size();
  out.p50 = ms[ms.size() / 2];
  out.p99 = ms[std::min(ms.size() - 1, size_t(double(ms.size()) * 0.99))];
  out.max = ms.back();
  return out;
}

/// Single-query searches for `seconds`; latencies in ms.
std::vector<double> search_loop(Client& client, const std::vector<float>& queries, int d,
                                double seconds) {
  std::vector<double> ms;
  const auto start = Clock::now();
  for (size_t i = 0; seconds_since(start) < seconds; ++i) {
    const size_t q = i % (queries.size() / size_t(d));
    auto request = Client::search_request("bench", queries.data() + q * d, 1, size_t(d), 10);
    v1::SearchResponse response;
    const auto t0 = Clock::now();
    const grpc::Status s = client.search(request, &response);
    ms.push_back(seconds_since(t0) * 1000);
    if (!s.ok()) {
      std::fprintf(stderr, "search failed: %s\n", s.error_message().c_str());
      break;
    }
  }
  return ms;
}

/// Where the three rows of one document go: a column family and a key for each.
struct RowLayout {
  rocksdb::ColumnFamilyHandle* docs = nullptr;
  rocksdb::ColumnFamilyHandle* records = nullptr;
  rocksdb::ColumnFamilyHandle* vectors = nullptr;
  std::function<std::string(const std::string& id)> doc_key;
  std::function<std::string(uint64_t label)> record_key;
  std::function<std::string(uint64_t label)> vector_key;
};

/// The rows an upsert writes — per document a payload, a record (id + code) and the raw vector —
/// laid out by `layout`, as one WriteBatch per `batch` documents written by `commit(batch)`
/// (synced), one writer; vectors/s.
template <typename Commit>
double storage_write_rate(const Options& o, const std::vector<float>& rows, size_t code_bytes,
                          const RowLayout& layout, Commit commit) {
  const std::string code(code_bytes, '\x5a');
  const auto start = Clock::now();
  for (size_t b = 0; b < o.n; b += o.batch) {
    rocksdb::WriteBatch batch;
    for (size_t i = b; i < std::min(o.n, b + o.batch); ++i) {
      const std::string id = "doc-" + std::to_string(i);
      batch.Put(layout.docs, layout.doc_key(id), "{\"n\":" + std::to_string(i) + "}");
      batch.Put(layout.records, layout.record_key(i), id + code);
      batch.Put(layout.vectors, layout.vector_key(i),
                rocksdb::Slice(reinterpret_cast<const char*>(rows.data() + i * o.dim),
                               size_t(o.dim) * sizeof(float)));
    }
    if (!commit(batch)) return 0;
  }
  return double(o.n) / seconds_since(start);
}

/// Plain RocksDB with default options: one column family, keys "d"+id, "r"+label, "v"+label.
double plain_rocksdb_rate(const Options& o, const std::vector<float>& rows, size_t code_bytes) {
  const std::string path = o.dir + "/plain-rocksdb";
  std::filesystem::remove_all(path);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(options, path, &db).ok()) return 0;
  rocksdb::WriteOptions sync;
  sync.sync = true;
  RowLayout layout;
  layout.docs = layout.records = layout.vectors = db->DefaultColumnFamily();
  layout.doc_key = [](const std::string& id) { return "d" + id; };
  layout.record_key = [](uint64_t label) { return "r" + std::to_string(label); };
  layout.vector_key = [](uint64_t label) { return "v" + std::to_string(label); };
  const double rate = storage_write_rate(o, rows, code_bytes, layout, [&](rocksdb::WriteBatch& b) {
    return db->Write(sync, &b).ok();
  });
  delete db;
  std::filesystem::remove_all(path);
  return rate;
}

/// blochd's own store (server/Storage: its column families, keys and options).
double blochd_storage_rate(const Options& o, const std::vector<float>& rows, size_t code_bytes) {
  const std::string path = o.dir + "/blochd-storage";
  std::filesystem::remove_all(path);
  double rate = 0;
  {
    std::unique_ptr<server::Storage> storage;
    if (!server::Storage::Open(path, &storage).ok()) return 0;
    constexpr uint32_t kUid = 1, kGeneration = 1;
    RowLayout layout;
    layout.docs = storage->docs();
    layout.records = storage->records();
    layout.vectors = storage->vectors();
    layout.doc_key = [](const std::string& id) { return server::Storage::doc_key(kUid, id); };
    layout.record_key = layout.vector_key = [](uint64_t label) {
      return server::Storage::label_key(kUid, kGeneration, label);
    };
    rate = storage_write_rate(o, rows, code_bytes, layout,
                              [&](rocksdb::WriteBatch& b) { return storage->write(b).ok(); });
  }
  std::filesystem::remove_all(path);
  return rate;
}

int run(const Options& o) {
  std::filesystem::remove_all(o.dir);
  std::filesystem::create_directories(o.dir);
  std::fprintf(stderr, "generating %zu × %d rows\n", o.n, o.dim);
  const std::vector<float> rows = make_rows(o.n, o.dim, 1);
  const std::vector<float> queries = make_rows(1000, o.dim, 2);
  const std::vector<float> extra = make_rows(200000, o.dim, 3);

  server::ServerConfig config;
  config.data_dir = o.dir + "/data";
  config.listen = "127.0.0.1:0";
  config.admin_listen = "";
  config.snapshot_interval_s = 0;
  config.log_level = "warn";
  spdlog::set_level(spdlog::level::warn);
  server::Daemon daemon(config);
  if (const grpc::Status s = daemon.start(); !s.ok()) {
    std::fprintf(stderr, "cannot start: %s\n", s.error_message().c_str());
    return 1;
  }
  ClientOptions client_options;
  client_options.address = "127.0.0.1:" + std::to_string(daemon.grpc_port());
  Client client(client_options);

  // An untrained head (seeded) is enough to time the machinery; training is not measured here.
  v1::CreateCollectionRequest create;
  create.set_name("bench");
  create.set_dimension(uint32_t(o.dim));
  create.set_index_spec(o.spec);
  const int q = std::stoi(o.spec.substr(2, o.spec.find_first_not_of("0123456789", 2) - 2));
  create.set_head_file(FidelityHead::make(HeadSpec{o.dim, q}).to_bytes());
  v1::CollectionInfo info;
  if (const grpc::Status s = client.create_collection(create, &info); !s.ok()) {
    std::fprintf(stderr, "create: %s\n", s.error_message().c_str());
    return 1;
  }

  std::fprintf(stderr, "bulk load\n");
  auto start = Clock::now();
  {
    auto writer = client.bulk_writer(o.in_flight);
    for (size_t b = 0; b < o.n; b += o.batch) {
      if (!writer->write(batch_request(rows, o.dim, b, std::min(o.n, b + o.batch), "doc-")).ok()) {
        break;
      }
    }
    if (const grpc::Status s = writer->finish(); !s.ok()) {
      std::fprintf(stderr, "load: %s\n", s.error_message().c_str());
      return 1;
    }
  }
  const double load_rate = double(o.n) / seconds_since(start);
  std::fprintf(stderr, "storage alone\n");
  const double plain_rate = plain_rocksdb_rate(o, rows, info.code_bytes());
  const double storage_rate = blochd_storage_rate(o, rows, info.code_bytes());

  std::fprintf(stderr, "search alone\n");
  const Latency alone = summarise(search_loop(client, queries, o.dim, o.seconds));
  std::fprintf(stderr, "search during ingest\n");
  std::atomic<bool> stop{false};
  std::atomic<size_t> ingested{0};
  std::thread ingest([&] {
    Client writer_client(client_options);
    const size_t extra_rows = extra.size() / size_t(o.dim);
    for (size_t b = 0; !stop; b += o.batch) {
      const size_t begin = b % extra_rows;
      const size_t end = std::min(extra_rows, begin + o.batch);
      if (!writer_client
               .upsert(batch_request(extra, o.dim, begin, end,
                                     "extra-" + std::to_string(b / extra_rows) + "-"))
               .ok()) {
        break;
      }
      ingested += end - begin;
    }
  });
  start = Clock::now();
  const Latency busy = summarise(search_loop(client, queries, o.dim, o.seconds));
  const double ingest_rate = double(ingested.load()) / seconds_since(start);
  stop = true;
  ingest.join();

  std::printf(
      "| spec | d | n | batch | in flight | load vectors/s | blochd storage alone vectors/s | "
      "plain RocksDB vectors/s | load / blochd storage | load / plain RocksDB |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  std::printf("| %s | %d | %zu | %zu | %zu | %.0f | %.0f | %.0f | %.2f | %.2f |\n\n",
              o.spec.c_str(), o.dim, o.n, o.batch, o.in_flight, load_rate, storage_rate, plain_rate,
              load_rate / storage_rate, load_rate / plain_rate);
  std::printf(
      "| search (k=10, 1 query/call) | searches | p50 ms | p99 ms | max ms | ingest vectors/s |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::printf("| alone | %zu | %.2f | %.2f | %.2f | – |\n", alone.count, alone.p50, alone.p99,
              alone.max);
  std::printf("| during ingest | %zu | %.2f | %.2f | %.2f | %.0f |\n", busy.count, busy.p50,
              busy.p99, busy.max, ingest_rate);
  daemon.stop();
  std::filesystem::remove_all(o.dir);
  return 0;
}

}  // namespace
}  // namespace bloch::bench

int main(int argc, char** argv) {
  bloch::bench::Options o;
  CLI::App app{
      "bloch_service: bulk-load rate (vs the storage alone) and search latency with and "
      "without concurrent ingest, through gRPC on loopback"};
  app.add_option("--n", o.n, "vectors to bulk-load")->capture_default_str();
  app.add_option("--dim", o.dim, "dimension")->capture_default_str();
  app.add_option("--spec", o.spec, "index factory spec")->capture_default_str();
  app.add_option("--batch", o.batch, "vectors per upsert batch")->capture_default_str();
  app.add_option("--in-flight", o.in_flight, "batches in flight")->capture_default_str();
  app.add_option("--seconds", o.seconds, "seconds of each search phase")->capture_default_str();
  app.add_option("--dir", o.dir, "scratch directory (removed)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return bloch::bench::run(o);
}
