// bloch-indexer: bulk-loads an embedding file into a bloch collection.
//
//   bloch-indexer --collection docs --create --spec QC128,Flat corpus.npy
//       --ids corpus.jsonl.gz --id-field _id --payloads corpus.jsonl.gz      (one command)
//
// Steps: open and check the file (shape, dtype, truncation); create the collection when asked
// (dimension from the file); if its head is untrained, train it — unsupervised on the first
// --train-sample rows, which are loaded first, or supervised from (query, relevant document)
// pairs after every row is loaded; stream the rows in batches with a bounded number in flight.
// Re-running after an interruption skips the rows whose ids the collection already holds
// (--no-resume sends everything again), so it ends with the same collection. A bad row (NaN,
// infinite, wrong dimension) stops the load with the file and row named, leaving every batch
// before it committed, unless --skip-bad-rows, which counts it and goes on.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "ConnectionFlags.h"
#include "LineReader.h"
#include "Progress.h"
#include "StatusCheck.h"
#include "VectorSource.h"

namespace bloch::tools {
namespace {

struct IndexerFlags {
  std::string collection;
  std::string file;
  std::string format = "auto";
  std::string dataset = "train";
  std::string ids_file;
  std::string id_field = "_id";
  std::string id_prefix;
  std::string payloads_file;
  std::string payload_id_field = "_id";
  bool create = false;
  std::string spec;
  bool discard_vectors = false;
  uint64_t seed = 0;
  size_t train_sample = 50000;
  uint32_t epochs = 0;
  std::string train_queries;
  std::string train_query_ids;
  std::string train_qrels;
  size_t batch = 1000;
  size_t in_flight = 4;
  bool skip_bad_rows = false;
  bool no_resume = false;
  ConnectionFlags connection;
};

/// id → payload JSON from a JSONL(.gz) sidecar; the id field is left out of the payload.
std::unordered_map<std::string, std::string> read_payloads(const std::string& path,
                                                           const std::string& id_field) {
  std::unordered_map<std::string, std::string> payloads;
  for_each_jsonl_record(path, id_field, [&](std::string id, nlohmann::json& object) {
    object.erase(id_field);
    payloads[std::move(id)] = object.dump();
  });
  return payloads;
}

class Indexer {
 public:
  explicit Indexer(IndexerFlags flags)
      : flags_(std::move(flags)), client_(client_options(flags_.connection)) {}

  int run() {
    source_ = open_vector_source(flags_.file, flags_.format, flags_.dataset);
    const size_t d = source_->dimension();
    if (!flags_.ids_file.empty()) {
      ids_ = read_ids(flags_.ids_file, flags_.id_field);
      if (source_->rows() && ids_.size() != *source_->rows()) {
        throw ToolError("file '" + flags_.ids_file + "' has " + std::to_string(ids_.size()) +
                        " ids for the " + std::to_string(*source_->rows()) + " rows of '" +
                        flags_.file + "'");
      }
    }
    if (!flags_.payloads_file.empty()) {
      payloads_ = read_payloads(flags_.payloads_file, flags_.payload_id_field);
    }
    v1::CollectionInfo info = prepare_collection(d);
    const bool supervised = !flags_.train_qrels.empty();
    const bool untrained =
        info.head_state() == v1::CollectionInfo::UNTRAINED && info.train_on_first_n() == 0;
    std::fprintf(stderr, "%s: %s rows of %zu values into '%s' (%s, head %s)\n", flags_.file.c_str(),
                 source_->rows() ? with_thousands(*source_->rows()).c_str() : "?", d,
                 flags_.collection.c_str(), info.index_spec().c_str(),
                 untrained ? "untrained: trains on the way" : "ready");

    Progress progress("load", source_->rows());
    auto writer = new_writer();
    bool trained_now = false;
    for (;;) {
      // An untrained head is trained (unsupervised) once its sample is stored: read exactly up
      // to the sample, train, then stream the rest, which the server encodes on arrival.
      const bool sampling = untrained && !supervised && !trained_now;
      const size_t want =
          sampling ? std::min(flags_.batch, flags_.train_sample - read_) : flags_.batch;
      std::vector<VectorRow> rows;
      const size_t n = source_->read(want, rows);
      if (n > 0) send(rows, *writer);
      progress.update(read_);
      if (sampling && (read_ >= flags_.train_sample || n == 0)) {
        check(writer->finish(), "upsert");
        train_unsupervised();
        trained_now = true;
        writer = new_writer();
        continue;
      }
      if (n == 0) break;
    }
    check(writer->finish(), "upsert");
    progress.finish();
    if (untrained && supervised) train_supervised();
    summary(progress.seconds());
    return 0;
  }

 private:
  std::unique_ptr<BulkWriter> new_writer() {
    auto writer = client_.bulk_writer(flags_.in_flight);
    writer->on_acknowledged = [this](const v1::UpsertRequest& batch, const v1::UpsertResponse&) {
      acknowledged_ += size_t(batch.documents_size());
    };
    return writer;
  }

  v1::CollectionInfo prepare_collection(size_t d) {
    v1::CollectionInfo info;
    grpc::Status s = client_.describe_collection(flags_.collection, &info);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
      if (!flags_.create) {
        throw ToolError("collection '" + flags_.collection +
                        "' does not exist; pass --create (with --spec) to create it");
      }
      v1::CreateCollectionRequest request;
      request.set_name(flags_.collection);
      request.set_dimension(uint32_t(d));
      request.set_index_spec(flags_.spec);
      request.set_discard_vectors(flags_.discard_vectors);
      request.set_seed(flags_.seed);
      check(client_.create_collection(request, &info), "create collection");
      return info;
    }
    check(s, "describe collection '" + flags_.collection + "'");
    if (info.dimension() != d) {
      throw ToolError("file '" + flags_.file + "' has dimension " + std::to_string(d) +
                      " but collection '" + flags_.collection + "' has dimension " +
                      std::to_string(info.dimension()));
    }
    return info;
  }

  std::string id_of_row(size_t row, const VectorRow& parsed) const {
    if (!ids_.empty()) return ids_[row];
    if (!parsed.id.empty()) return parsed.id;
    return flags_.id_prefix + std::to_string(row);
  }

  /// Validates, resumes (drops ids the server has) and queues one chunk of rows.
  void send(std::vector<VectorRow>& rows, BulkWriter& writer) {
    v1::UpsertRequest batch;
    batch.set_collection(flags_.collection);
    std::unordered_map<std::string, size_t> row_of_id;
    for (auto& row : rows) {
      const size_t index = read_++;
      std::string problem = non_finite_value(row.values);
      const std::string id = id_of_row(index, row);
      if (problem.empty() && ids_.empty() == false && index >= ids_.size()) problem = "no id";
      if (problem.empty() && row_of_id.count(id)) {
        problem = "id '" + id + "' repeats row " + std::to_string(row_of_id[id]);
      }
      if (!problem.empty()) {
        const std::string message =
            "file '" + flags_.file + "' row " + std::to_string(index) + ": " + problem;
        if (!flags_.skip_bad_rows) throw ToolError(message);
        if (rejected_.size() < 10) rejected_.push_back(message);
        ++rejected_count_;
        continue;
      }
      row_of_id[id] = index;
      v1::Document* doc = batch.add_documents();
      doc->set_id(id);
      doc->mutable_vector()->Add(row.values.begin(), row.values.end());
      if (!row.payload_json.empty()) {
        doc->set_payload_json(row.payload_json);
      } else if (auto it = payloads_.find(id); it != payloads_.end()) {
        doc->set_payload_json(it->second);
      }
    }
    if (!flags_.no_resume && batch.documents_size() > 0) drop_stored(batch);
    if (batch.documents_size() > 0) check(writer.write(std::move(batch)), "upsert");
  }

  /// Resume: removes from the batch every id the collection already holds.
  void drop_stored(v1::UpsertRequest& batch) {
    std::vector<std::string> ids;
    for (const auto& doc : batch.documents()) ids.push_back(doc.id());
    v1::GetResponse found;
    check(client_.get(flags_.collection, ids, false, &found), "resume check");
    if (found.documents_size() == 0) return;
    std::unordered_set<std::string> stored;
    for (const auto& doc : found.documents()) stored.insert(doc.id());
    v1::UpsertRequest kept;
    kept.set_collection(batch.collection());
    for (auto& doc : *batch.mutable_documents()) {
      if (stored.count(doc.id())) {
        ++skipped_;
      } else {
        *kept.add_documents() = std::move(doc);
      }
    }
    batch = std::move(kept);
  }

  void train(const v1::TrainHeadRequest& request, const std::string& what) {
    std::fprintf(stderr, "training the head (%s)\n", what.c_str());
    std::optional<Progress> progress;  // of the re-encoding pass, once it starts
    uint32_t last_epoch = 0;
    const grpc::Status s = client_.train_head(request, [&](const v1::TrainProgress& p) {
      if (p.stage() == v1::TrainProgress::TRAINING && p.epoch() != last_epoch) {
        last_epoch = p.epoch();
        std::fprintf(stderr, "  epoch %u/%u  train loss %.4f  held-out loss %.4f\n", p.epoch(),
                     p.max_epochs(), p.train_loss(), p.holdout_loss());
      }
      if (p.stage() == v1::TrainProgress::ENCODING) {
        if (!progress) progress.emplace("encode", p.to_encode());
        progress->update(p.encoded());
      }
    });
    check(s, "train head");
    if (progress) progress->finish();
  }

  void train_unsupervised() {
    v1::TrainHeadRequest request;
    request.set_collection(flags_.collection);
    request.mutable_unsupervised()->set_sample_size(uint32_t(flags_.train_sample));
    request.set_max_epochs(flags_.epochs);
    train(request, "unsupervised, on the rows loaded so far");
  }

  void train_supervised() {
    if (flags_.train_queries.empty() || flags_.train_query_ids.empty()) {
      throw ToolError("--train-qrels needs --train-queries and --train-query-ids");
    }
    auto queries = open_vector_source(flags_.train_queries);
    const auto query_ids = read_ids(flags_.train_query_ids, flags_.id_field);
    std::unordered_map<std::string, size_t> query_row;
    for (size_t i = 0; i < query_ids.size(); ++i) query_row[query_ids[i]] = i;
    std::vector<VectorRow> rows;
    while (queries->read(4096, rows) > 0) {
    }
    if (rows.size() != query_ids.size()) {
      throw ToolError("file '" + flags_.train_queries + "' has " + std::to_string(rows.size()) +
                      " rows for " + std::to_string(query_ids.size()) + " query ids");
    }
    v1::TrainHeadRequest request;
    request.set_collection(flags_.collection);
    request.set_max_epochs(flags_.epochs);
    LineReader qrels(flags_.train_qrels);
    for (std::string line; qrels.next(line);) {
      std::istringstream fields(line);
      std::string query, doc, score;
      fields >> query >> doc >> score;
      if (query == "query-id" || query.empty()) continue;  // header
      auto it = query_row.find(query);
      if (it == query_row.end()) continue;
      if (!score.empty() && std::stod(score) <= 0) continue;
      auto* pair = request.mutable_supervised()->add_pairs();
      pair->mutable_query()->Add(rows[it->second].values.begin(), rows[it->second].values.end());
      pair->set_positive_id(doc);
    }
    train(request, "supervised, " + std::to_string(request.supervised().pairs_size()) + " pairs");
  }

  void summary(double seconds) const {
    std::fprintf(stderr,
                 "done: %s rows read, %s upserted, %s already stored (skipped), %s rejected, "
                 "%.1f s, %s rows/s\n",
                 with_thousands(read_).c_str(), with_thousands(acknowledged_).c_str(),
                 with_thousands(skipped_).c_str(), with_thousands(rejected_count_).c_str(), seconds,
                 with_thousands(uint64_t(double(read_) / std::max(seconds, 1e-9))).c_str());
    for (const auto& message : rejected_) std::fprintf(stderr, "  rejected: %s\n", message.c_str());
    if (rejected_count_ > rejected_.size()) {
      std::fprintf(stderr, "  ... and %zu more\n", rejected_count_ - rejected_.size());
    }
  }

  IndexerFlags flags_;
  Client client_;
  std::unique_ptr<VectorSource> source_;
  std::vector<std::string> ids_;
  std::unordered_map<std::string, std::string> payloads_;
  size_t read_ = 0;
  std::atomic<size_t> acknowledged_{0};
  size_t skipped_ = 0;
  size_t rejected_count_ = 0;
  std::vector<std::string> rejected_;
};

}  // namespace
}  // namespace bloch::tools

int main(int argc, char** argv) {
  using bloch::tools::IndexerFlags;
  IndexerFlags flags;
  CLI::App app{
      "bloch-indexer: bulk-load embeddings (.npy float32/float16, .fvecs, "
      "ann-benchmarks .hdf5, or JSONL {\"id\",\"vector\",\"payload\"}) into a bloch "
      "collection. Resumable: re-running skips rows the collection already holds."};
  app.add_option("file", flags.file, "embedding file")->required();
  app.add_option("-c,--collection", flags.collection, "collection to load into")->required();
  app.add_option("--format", flags.format, "npy|fvecs|hdf5|jsonl|auto (by extension)")
      ->capture_default_str();
  app.add_option("--dataset", flags.dataset, "HDF5 dataset to read")->capture_default_str();
  app.add_option(
      "--ids", flags.ids_file,
      "ids, one per row: a text file (one per line) or a .jsonl[.gz] (field --id-field)");
  app.add_option("--id-field", flags.id_field, "id field of .jsonl id/query-id files")
      ->capture_default_str();
  app.add_option("--id-prefix", flags.id_prefix,
                 "without --ids or JSONL ids, row i gets the id <prefix><i>");
  app.add_option("--payloads", flags.payloads_file,
                 "JSONL(.gz) of payload objects joined to rows by id (e.g. BEIR corpus.jsonl)");
  app.add_option("--payload-id-field", flags.payload_id_field, "id field of --payloads")
      ->capture_default_str();
  app.add_flag("--create", flags.create, "create the collection if it does not exist");
  app.add_option("--spec", flags.spec,
                 "index factory string for --create, e.g. QC128,Flat or QC128,HNSW32 (default: "
                 "the server's, QC<min(128,d)>,Flat)");
  app.add_flag("--discard-vectors", flags.discard_vectors,
               "with --create: keep codes only (no retraining later)");
  app.add_option("--seed", flags.seed, "with --create: head seed (0: server default)");
  app.add_option("--train-sample", flags.train_sample,
                 "untrained head: rows loaded first and trained on (unsupervised)")
      ->capture_default_str()
      ->check(CLI::Range(size_t(2), size_t(10000000)));
  app.add_option("--epochs", flags.epochs, "training epochs (0: server default)");
  app.add_option("--train-queries", flags.train_queries,
                 "supervised training: query embeddings (any supported format)");
  app.add_option("--train-query-ids", flags.train_query_ids,
                 "supervised training: query ids aligned with --train-queries");
  app.add_option("--train-qrels", flags.train_qrels,
                 "supervised training: TSV query-id, corpus-id, score (BEIR qrels)");
  app.add_option("--batch", flags.batch, "rows per upsert batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--in-flight", flags.in_flight, "batches in flight at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_flag("--skip-bad-rows", flags.skip_bad_rows,
               "count and skip bad rows instead of stopping at the first");
  app.add_flag("--no-resume", flags.no_resume, "send every row even if the collection has its id");
  bloch::tools::add_connection_flags(app, flags.connection);
  CLI11_PARSE(app, argc, argv);
  try {
    return bloch::tools::Indexer(std::move(flags)).run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nbloch-indexer: %s\n", e.what());
    return 1;
  }
}
