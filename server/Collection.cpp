#include "server/Collection.h"

#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "index/FidelityHeadModel.h"
#include "index/HeadTrainer.h"
#include "index/HnswLiveSearch.h"
#include "index/IndexFidelityFastScan.h"
#include "index/IndexIO.h"
#include "server/IndexKinds.h"

namespace bloch::server {

namespace {

using grpc::Status;
using idx_t = faiss::Index::idx_t;
using grpc::StatusCode;

constexpr size_t kMaxIdBytes = 512;
constexpr uint32_t kMaxDimension = 65536;
constexpr size_t kMaxNameLength = 128;
/// Documents read, encoded and written per step of a training run's re-encoding pass.
constexpr size_t kEncodeChunk = 4096;
/// Vectors inserted into a graph per hold of the exclusive lock, the longest a search then waits
/// behind a write: about 70 ms of HNSW32 insertion at d = 768 on 2 cores. Measured with
/// bench/bloch_service (docs/BENCHMARKS.md): 64 cut the p99 search latency during ingest from
/// 202 ms (whole 1000-vector batches) to 35 ms but slowed ingest 39 %; 256 gives 58 ms at the
/// full ingest rate.
constexpr size_t kGraphApplyChunk = 256;
// Upper bound on a search's rerank_factor: k · factor candidates are held and re-ranked per
// query, and past a few dozen the recall no longer moves (docs/BENCHMARKS.md).
constexpr uint32_t kMaxRerankFactor = 256;

Status invalid(const std::string& message) {
  return Status(StatusCode::INVALID_ARGUMENT, message);
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

std::string default_spec(uint32_t dimension) {
  return "QC" + std::to_string(std::min<uint32_t>(128, dimension)) + ",Flat";
}

/// An evenly strided sample of at most `wanted` of the labels.
std::vector<uint64_t> strided_sample(const std::vector<uint64_t>& labels, size_t wanted) {
  std::vector<uint64_t> sample;
  const size_t m = std::min(wanted, labels.size());
  for (size_t i = 0; i < m; ++i) sample.push_back(labels[i * labels.size() / m]);
  return sample;
}

/// Excludes dead labels from a search of any kind.
struct LiveSelector : faiss::IDSelector {
  explicit LiveSelector(const std::vector<uint8_t>& live) : live(live) {}
  bool is_member(idx_t id) const override { return live[size_t(id)] != 0; }
  const std::vector<uint8_t>& live;
};

Status check_payload(const std::string& payload, const std::string& field) {
  if (payload.empty()) return Status::OK;
  try {
    const auto parsed = nlohmann::json::parse(payload);
    (void)parsed;
  } catch (const nlohmann::json::parse_error& e) {
    return invalid(field + " is not valid JSON: " + e.what());
  }
  return Status::OK;
}

Status check_id(const std::string& id, const std::string& field) {
  if (id.empty()) return invalid(field + " is empty");
  if (id.size() > kMaxIdBytes) {
    return invalid(field + " has " + std::to_string(id.size()) + " bytes, more than " +
                   std::to_string(kMaxIdBytes));
  }
  return Status::OK;
}

std::string to_bytes(const float* values, size_t n) {
  return std::string(reinterpret_cast<const char*>(values), n * sizeof(float));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Labels

void Collection::Labels::add(const std::string& id) {
  const uint64_t label = ids.size();
  auto [it, inserted] = by_id.try_emplace(id, label);
  if (!inserted) {
    live[it->second] = 0;
    ++dead;
    it->second = label;
  }
  ids.push_back(id);
  live.push_back(1);
}

bool Collection::Labels::kill(const std::string& id) {
  auto it = by_id.find(id);
  if (it == by_id.end()) return false;
  live[it->second] = 0;
  ++dead;
  by_id.erase(it);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Creation and loading

Status Collection::Prepare(const v1::CreateCollectionRequest& request,
                           storage::StoredCollection* meta) {
  if (!valid_name(request.name())) {
    return invalid("name '" + request.name() + "' must be 1 to 128 characters of [A-Za-z0-9_.-]");
  }
  if (request.dimension() == 0 || request.dimension() > kMaxDimension) {
    return invalid("dimension " + std::to_string(request.dimension()) + " must be in [1, " +
                   std::to_string(kMaxDimension) + "]");
  }
  const std::string spec =
      request.index_spec().empty() ? default_spec(request.dimension()) : request.index_spec();
  std::unique_ptr<faiss::Index> index;
  const uint64_t seed = request.seed() != 0 ? request.seed() : 1234;
  Status s = make_index(request.dimension(), spec, seed, &index);
  if (!s.ok()) return s;
  if (adds_from_raw_vectors(*index) && request.discard_vectors()) {
    return invalid("discard_vectors: " + spec +
                   " keeps raw vectors (graph and list kinds are rebuilt from them after a "
                   "restart); use a Flat kind or keep vectors");
  }
  meta->set_name(request.name());
  meta->set_dimension(request.dimension());
  meta->set_index_spec(spec);
  meta->set_discard_vectors(request.discard_vectors());
  meta->set_seed(seed);
  meta->set_generation(0);
  if (request.head_case() == v1::CreateCollectionRequest::kTrainOnFirstN) {
    if (request.train_on_first_n() < 2) {
      return invalid("train_on_first_n must be at least 2 (got " +
                     std::to_string(request.train_on_first_n()) + ")");
    }
    meta->set_train_on_first_n(request.train_on_first_n());
  } else if (request.head_case() == v1::CreateCollectionRequest::kHeadFile) {
    if (has_lists(*index)) {
      return invalid("head_file: " + spec +
                     " trains its lists on stored vectors; create it with train_on_first_n or "
                     "call TrainHead");
    }
    try {
      FidelityHead head = FidelityHead::from_bytes(request.head_file(), "head_file");
      const int q = index_codec(*index).qubits();
      if (head.dim() != int(request.dimension()) || head.qubits() != q) {
        return invalid("head_file: head is d=" + std::to_string(head.dim()) +
                       " q=" + std::to_string(head.qubits()) + " but the collection is d=" +
                       std::to_string(request.dimension()) + " q=" + std::to_string(q));
      }
      install_head(index, std::move(head), 0, nullptr);
      meta->set_head(serialize_index(*index));
    } catch (const faiss::FaissException& e) {
      return invalid(e.what());
    }
    meta->set_generation(1);
  }
  return Status::OK;
}

Collection::Collection(Storage& storage, std::string snapshot_dir, CollectionLimits limits)
    : storage_(storage), snapshot_dir_(std::move(snapshot_dir)), limits_(limits) {}

Collection::~Collection() {
  stop_background_work();
}

Status Collection::Open(Storage& storage, storage::StoredCollection meta, std::string snapshot_dir,
                        CollectionLimits limits, std::shared_ptr<Collection>* out) {
  std::shared_ptr<Collection> collection(new Collection(storage, std::move(snapshot_dir), limits));
  Status s = collection->load(meta);
  if (!s.ok()) return s;
  *out = std::move(collection);
  return Status::OK;
}

storage::StoredCollection Collection::stored_record() const {
  storage::StoredCollection stored;
  stored.set_name(meta_.name);
  stored.set_uid(meta_.uid);
  stored.set_dimension(meta_.dimension);
  stored.set_index_spec(meta_.spec);
  stored.set_train_on_first_n(meta_.train_on_first_n);
  stored.set_discard_vectors(meta_.discard_vectors);
  stored.set_seed(meta_.seed);
  stored.set_generation(meta_.generation);
  stored.set_head(template_bytes_);
  return stored;
}

Status Collection::load(const storage::StoredCollection& stored) {
  meta_ = Meta{stored.name(),
               stored.uid(),
               stored.dimension(),
               stored.index_spec(),
               stored.train_on_first_n(),
               stored.discard_vectors(),
               stored.seed(),
               stored.generation()};
  template_bytes_ = stored.head();

  // A training run that died before its switch-over left rows of the next generation behind.
  rocksdb::WriteBatch cleanup;
  storage_.delete_generation_rows(meta_.uid, meta_.generation + 1, cleanup);
  Status s = storage_.write(cleanup);
  if (!s.ok()) return s;

  // Labels: the records of the current generation in label order, then liveness from docs.
  Labels labels;
  std::unordered_map<std::string, uint64_t> newest;
  {
    const std::string prefix = Storage::generation_prefix(meta_.uid, meta_.generation);
    std::unique_ptr<rocksdb::Iterator> it(
        storage_.db()->NewIterator(rocksdb::ReadOptions(), storage_.records()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      storage::StoredRecord record;
      if (!record.ParseFromArray(it->value().data(), int(it->value().size()))) {
        return Status(StatusCode::DATA_LOSS,
                      "collection '" + meta_.name + "': unreadable record at label " +
                          std::to_string(Storage::label_of_key(it->key().ToStringView())));
      }
      const uint64_t label = Storage::label_of_key(it->key().ToStringView());
      if (label != labels.ids.size()) {
        return Status(StatusCode::DATA_LOSS, "collection '" + meta_.name + "': record label " +
                                                 std::to_string(label) + " follows label " +
                                                 std::to_string(labels.ids.size()) + " - 1");
      }
      newest[record.id()] = label;
      labels.ids.push_back(record.id());
    }
    if (!it->status().ok()) return storage_error(it->status(), "read records");
  }
  labels.live.assign(labels.ids.size(), 0);
  {
    const std::string prefix = Storage::uid_prefix(meta_.uid);
    std::unique_ptr<rocksdb::Iterator> it(
        storage_.db()->NewIterator(rocksdb::ReadOptions(), storage_.docs()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const std::string id = it->key().ToString().substr(prefix.size());
      auto found = newest.find(id);
      if (found == newest.end()) continue;  // cannot happen: docs and records share a batch
      labels.live[found->second] = 1;
      labels.by_id.emplace(id, found->second);
    }
    if (!it->status().ok()) return storage_error(it->status(), "read docs");
  }
  labels.dead = labels.ids.size() - labels.by_id.size();
  labels_ = std::move(labels);
  // Untrained: describe() reports the form of the head a training run will start from.
  if (template_bytes_.empty())
    return make_index(meta_.dimension, meta_.spec, meta_.seed, &untrained_shape_);
  return rebuild_index_from_records();
}

Status Collection::rebuild_index_from_records() {
  std::unique_ptr<faiss::Index> index;
  // Newest snapshot of this generation first; it must hold the same head and no more entries
  // than the records.
  const std::string path = snapshot_path(meta_.generation);
  std::unique_ptr<faiss::Index> empty;
  try {
    empty = deserialize_index(template_bytes_, "stored index template of '" + meta_.name + "'");
  } catch (const faiss::FaissException& e) {
    return Status(StatusCode::DATA_LOSS, e.what());
  }
  if (std::filesystem::exists(path)) {
    try {
      auto loaded = read_index(path);
      if (typeid(*loaded) == typeid(*empty) && index_head(*loaded) == index_head(*empty) &&
          loaded->d == idx_t(meta_.dimension) && size_t(loaded->ntotal) <= labels_.ids.size()) {
        index = std::move(loaded);
        snapshot_entries_ = index->ntotal;
      } else {
        spdlog::warn("collection '{}': snapshot {} does not match the stored records; rebuilding",
                     meta_.name, path);
      }
    } catch (const faiss::FaissException& e) {
      spdlog::warn("collection '{}': snapshot {} unreadable ({}); rebuilding", meta_.name, path,
                   e.what());
    }
  }
  if (!index) index = std::move(empty);
  // Replay the records after the snapshot, in chunks.
  const uint64_t total = labels_.ids.size();
  const bool needs_raw = adds_from_raw_vectors(*index);
  const size_t code_bytes = index_code_size(*index);
  uint64_t next = uint64_t(index->ntotal);
  const std::string prefix = Storage::generation_prefix(meta_.uid, meta_.generation);
  std::unique_ptr<rocksdb::Iterator> it(
      storage_.db()->NewIterator(rocksdb::ReadOptions(), storage_.records()));
  it->Seek(Storage::label_key(meta_.uid, meta_.generation, next));
  while (next < total) {
    std::vector<uint64_t> chunk;
    std::string codes;
    for (; it->Valid() && it->key().starts_with(prefix) && chunk.size() < kEncodeChunk;
         it->Next()) {
      storage::StoredRecord record;
      record.ParseFromArray(it->value().data(), int(it->value().size()));
      if (record.code().size() != code_bytes) {
        return Status(StatusCode::DATA_LOSS, "collection '" + meta_.name + "': record " +
                                                 std::to_string(next + chunk.size()) +
                                                 " has a code of " +
                                                 std::to_string(record.code().size()) + " bytes");
      }
      chunk.push_back(next + chunk.size());
      codes += record.code();
    }
    if (chunk.empty()) break;
    std::vector<float> raw;
    if (needs_raw) {
      Status s = read_vectors(meta_.generation, chunk, &raw);
      if (!s.ok()) return s;
    }
    Status s = add_to_index(*index, next, chunk.size(), raw.data(), codes.data());
    if (!s.ok()) return s;
    next += chunk.size();
  }
  if (!it->status().ok()) return storage_error(it->status(), "replay records");
  index_ = std::move(index);
  spdlog::info("collection '{}': {} index entries ({} from the snapshot), {} live documents",
               meta_.name, index_->ntotal, std::max<int64_t>(snapshot_entries_, 0),
               labels_.by_id.size());
  return Status::OK;
}

Status Collection::add_to_index(faiss::Index& index, uint64_t first_label, size_t n,
                                const float* raw, const char* codes) const {
  if (uint64_t(index.ntotal) != first_label) {
    return Status(StatusCode::INTERNAL,
                  "collection '" + meta_.name + "': index holds " + std::to_string(index.ntotal) +
                      " entries, next label is " + std::to_string(first_label));
  }
  try {
    append(index, n, raw, reinterpret_cast<const uint8_t*>(codes));
  } catch (const faiss::FaissException& e) {
    return Status(StatusCode::INTERNAL, "index add: " + std::string(e.what()));
  }
  return Status::OK;
}

Status Collection::read_vectors(uint32_t generation, const std::vector<uint64_t>& labels,
                                std::vector<float>* out) const {
  const size_t d = meta_.dimension;
  std::vector<std::string> keys;
  keys.reserve(labels.size());
  for (uint64_t label : labels) keys.push_back(Storage::label_key(meta_.uid, generation, label));
  std::vector<std::string> values;
  const auto statuses = storage_.multi_get(storage_.vectors(), keys, &values);
  out->resize(labels.size() * d);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!statuses[i].ok() || values[i].size() != d * sizeof(float)) {
      return Status(StatusCode::DATA_LOSS, "collection '" + meta_.name + "': raw vector of label " +
                                               std::to_string(labels[i]) + " is missing");
    }
    std::memcpy(out->data() + i * d, values[i].data(), d * sizeof(float));
  }
  return Status::OK;
}

Status Collection::read_codes(uint32_t generation, const std::vector<uint64_t>& labels,
                              size_t code_bytes, std::string* out) const {
  std::vector<std::string> keys;
  for (uint64_t label : labels) keys.push_back(Storage::label_key(meta_.uid, generation, label));
  std::vector<std::string> values;
  const auto statuses = storage_.multi_get(storage_.records(), keys, &values);
  out->clear();
  for (size_t i = 0; i < labels.size(); ++i) {
    storage::StoredRecord record;
    if (!statuses[i].ok() || !record.ParseFromString(values[i]) ||
        record.code().size() != code_bytes) {
      return Status(StatusCode::DATA_LOSS, "collection '" + meta_.name + "': code of label " +
                                               std::to_string(labels[i]) + " is missing");
    }
    out->append(record.code());
  }
  return Status::OK;
}

// ---------------------------------------------------------------------------------------------
// Validation

Status Collection::check_vector(const google::protobuf::RepeatedField<float>& values,
                                const std::string& field) const {
  if (size_t(values.size()) != meta_.dimension) {
    return invalid(field + " has " + std::to_string(values.size()) + " values; collection '" +
                   meta_.name + "' has dimension " + std::to_string(meta_.dimension));
  }
  for (int j = 0; j < values.size(); ++j) {
    if (!std::isfinite(values[j])) {
      return invalid(field + "[" + std::to_string(j) + "] is " +
                     (std::isnan(values[j]) ? "NaN" : "infinite"));
    }
  }
  return Status::OK;
}

Status Collection::require_trained() const {
  if (trained()) return Status::OK;
  std::string how = meta_.train_on_first_n > 0
                        ? "it trains itself once " + std::to_string(meta_.train_on_first_n) +
                              " documents are stored"
                        : "call TrainHead";
  if (training_now_) how = "a training run is in progress";
  return Status(StatusCode::FAILED_PRECONDITION,
                "collection '" + meta_.name + "': head is untrained (" + how + ")");
}

// ---------------------------------------------------------------------------------------------
// Writes

Status Collection::upsert(const v1::UpsertRequest& request, v1::UpsertResponse* response) {
  const auto& docs = request.documents();
  const size_t n = size_t(docs.size());
  if (n > limits_.max_batch) {
    return Status(StatusCode::RESOURCE_EXHAUSTED,
                  "documents: " + std::to_string(n) +
                      " in one batch, more than max_batch = " + std::to_string(limits_.max_batch));
  }
  std::unordered_map<std::string_view, size_t> seen;
  for (size_t i = 0; i < n; ++i) {
    const std::string field = "documents[" + std::to_string(i) + "]";
    Status s = check_id(docs[int(i)].id(), field + ".id");
    if (s.ok()) s = check_vector(docs[int(i)].vector(), field + ".vector");
    if (s.ok()) s = check_payload(docs[int(i)].payload_json(), field + ".payload_json");
    if (!s.ok()) return s;
    auto [it, inserted] = seen.emplace(docs[int(i)].id(), i);
    if (!inserted) {
      return invalid(field + ".id '" + docs[int(i)].id() + "' repeats documents[" +
                     std::to_string(it->second) + "].id");
    }
  }
  if (n == 0) return Status::OK;

  const size_t d = meta_.dimension;
  std::vector<float> raw(n * d);
  for (size_t i = 0; i < n; ++i) {
    std::copy(docs[int(i)].vector().begin(), docs[int(i)].vector().end(), raw.begin() + i * d);
  }
  // The head runs before write_mutex_ is taken, so one batch's encoding overlaps another's
  // synced write. The head only changes in training, under write_mutex_, together with the
  // generation: a batch encoded under an older generation is encoded again below.
  std::shared_ptr<const faiss::Index> encoder;
  uint32_t encoded_generation = 0;
  {
    std::shared_lock index_lock(index_mutex_);
    encoder = index_;
    encoded_generation = meta_.generation;
  }
  std::string codes;
  auto encode_with = [&](const faiss::Index& index) {
    codes.resize(n * index_code_size(index));
    encode(index, n, raw.data(), reinterpret_cast<uint8_t*>(codes.data()));
  };
  if (encoder) encode_with(*encoder);

  std::lock_guard write_lock(write_mutex_);
  if (trained() && (!encoder || encoded_generation != meta_.generation)) encode_with(*index_);
  const uint64_t first = labels_.ids.size();
  const size_t code_bytes = trained() ? index_code_size(*index_) : 0;
  const bool keep_raw = !(trained() && meta_.discard_vectors);
  rocksdb::WriteBatch batch;
  size_t replaced = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto& doc = docs[int(i)];
    replaced += labels_.by_id.count(doc.id());
    batch.Put(storage_.docs(), Storage::doc_key(meta_.uid, doc.id()), doc.payload_json());
    storage::StoredRecord record;
    record.set_id(doc.id());
    if (code_bytes > 0) record.set_code(codes.substr(i * code_bytes, code_bytes));
    const std::string key = Storage::label_key(meta_.uid, meta_.generation, first + i);
    batch.Put(storage_.records(), key, record.SerializeAsString());
    if (keep_raw) batch.Put(storage_.vectors(), key, to_bytes(raw.data() + i * d, d));
  }
  Status s = storage_.write(batch);
  if (!s.ok()) return s;
  // Durable: now visible. A graph inserts slowly (distance computations per vector), so it is
  // fed in small chunks, each under the exclusive lock, and searches run in between; an id
  // becomes visible, and its previous version invisible, in the same chunk.
  const size_t chunk = trained() && is_graph(*index_) ? kGraphApplyChunk : n;
  for (size_t at = 0; at < n; at += chunk) {
    const size_t nb = std::min(chunk, n - at);
    std::unique_lock index_lock(index_mutex_);
    if (trained()) {
      s = add_to_index(*index_, first + at, nb, raw.data() + at * d,
                       codes.data() + at * code_bytes);
      if (!s.ok()) return s;
    }
    for (size_t i = at; i < at + nb; ++i) labels_.add(docs[int(i)].id());
  }
  response->set_upserted(response->upserted() + n);
  response->set_replaced(response->replaced() + replaced);
  maybe_start_background_training();
  return Status::OK;
}

Status Collection::remove(const v1::DeleteRequest& request, v1::DeleteResponse* response) {
  for (int i = 0; i < request.ids_size(); ++i) {
    Status s = check_id(request.ids(i), "ids[" + std::to_string(i) + "]");
    if (!s.ok()) return s;
  }
  if (size_t(request.ids_size()) > limits_.max_batch) {
    return Status(StatusCode::RESOURCE_EXHAUSTED,
                  "ids: " + std::to_string(request.ids_size()) + " in one batch, more than " +
                      "max_batch = " + std::to_string(limits_.max_batch));
  }
  std::lock_guard write_lock(write_mutex_);
  rocksdb::WriteBatch batch;
  std::unordered_set<std::string> found;
  for (const auto& id : request.ids()) {
    if (labels_.by_id.count(id) && found.insert(id).second) {
      batch.Delete(storage_.docs(), Storage::doc_key(meta_.uid, id));
    }
  }
  if (!found.empty()) {
    Status s = storage_.write(batch);
    if (!s.ok()) return s;
    std::unique_lock index_lock(index_mutex_);
    for (const auto& id : found) labels_.kill(id);
  }
  response->set_deleted(found.size());
  response->set_not_found(uint64_t(request.ids_size()) - found.size());
  return Status::OK;
}

// ---------------------------------------------------------------------------------------------
// Reads

Status Collection::get(const v1::GetRequest& request, v1::GetResponse* response) const {
  for (int i = 0; i < request.ids_size(); ++i) {
    Status s = check_id(request.ids(i), "ids[" + std::to_string(i) + "]");
    if (!s.ok()) return s;
  }
  if (request.with_vectors() && meta_.discard_vectors && trained()) {
    return Status(StatusCode::FAILED_PRECONDITION,
                  "with_vectors: collection '" + meta_.name + "' discards raw vectors");
  }
  std::shared_lock index_lock(index_mutex_);
  std::vector<std::string> keys;
  std::vector<uint64_t> labels;
  std::vector<std::string> ids;
  for (const auto& id : request.ids()) {
    auto it = labels_.by_id.find(id);
    if (it == labels_.by_id.end()) {
      response->add_missing_ids(id);
      continue;
    }
    keys.push_back(Storage::doc_key(meta_.uid, id));
    labels.push_back(it->second);
    ids.push_back(id);
  }
  std::vector<std::string> payloads;
  const auto statuses = storage_.multi_get(storage_.docs(), keys, &payloads);
  std::vector<float> raw;
  if (request.with_vectors()) {
    Status s = read_vectors(meta_.generation, labels, &raw);
    if (!s.ok()) return s;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!statuses[i].ok()) return storage_error(statuses[i], "get '" + ids[i] + "'");
    v1::Document* doc = response->add_documents();
    doc->set_id(ids[i]);
    doc->set_payload_json(payloads[i]);
    if (request.with_vectors()) {
      const float* v = raw.data() + i * meta_.dimension;
      doc->mutable_vector()->Add(v, v + meta_.dimension);
    }
  }
  return Status::OK;
}

Status Collection::search(const v1::SearchRequest& request, v1::SearchResponse* response) const {
  if (request.k() == 0 || request.k() > limits_.max_k) {
    return Status(request.k() == 0 ? StatusCode::INVALID_ARGUMENT : StatusCode::RESOURCE_EXHAUSTED,
                  "k = " + std::to_string(request.k()) +
                      " must be in [1, max_k = " + std::to_string(limits_.max_k) + "]");
  }
  const size_t nq = size_t(request.queries_size());
  if (nq == 0) return invalid("queries: empty (at least one query vector is needed)");
  if (nq > limits_.max_queries) {
    return Status(StatusCode::RESOURCE_EXHAUSTED, "queries: " + std::to_string(nq) +
                                                      " in one request, more than max_queries = " +
                                                      std::to_string(limits_.max_queries));
  }
  for (size_t i = 0; i < nq; ++i) {
    Status s =
        check_vector(request.queries(int(i)).values(), "queries[" + std::to_string(i) + "].values");
    if (!s.ok()) return s;
  }
  const size_t d = meta_.dimension;
  std::vector<float> x(nq * d);
  for (size_t i = 0; i < nq; ++i) {
    std::copy(request.queries(int(i)).values().begin(), request.queries(int(i)).values().end(),
              x.begin() + i * d);
  }

  std::vector<std::vector<std::pair<std::string, float>>> hits(nq);
  {
    std::shared_lock index_lock(index_mutex_);
    Status s = require_trained();
    if (!s.ok()) return s;
    const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(index_.get());
    const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index_.get());
    if (hnsw == nullptr && request.ef() != 0) {
      return invalid("ef: collection '" + meta_.name + "' is " + meta_.spec +
                     ", which has no graph (ef applies to HNSW kinds)");
    }
    if (ivf == nullptr && request.nprobe() != 0) {
      return invalid("nprobe: collection '" + meta_.name + "' is " + meta_.spec +
                     ", which has no inverted lists (nprobe applies to IVF kinds)");
    }
    const auto* fast_scan = dynamic_cast<const IndexFidelityFastScan*>(index_.get());
    if (fast_scan == nullptr && request.rerank_factor() != 0) {
      return invalid("rerank_factor: collection '" + meta_.name + "' is " + meta_.spec +
                     ", which does not re-rank (rerank_factor applies to fast-scan kinds)");
    }
    if (request.rerank_factor() > kMaxRerankFactor) {
      return invalid("rerank_factor = " + std::to_string(request.rerank_factor()) + " exceeds " +
                     std::to_string(kMaxRerankFactor));
    }
    if (ivf != nullptr && request.nprobe() > ivf->nlist) {
      return invalid("nprobe = " + std::to_string(request.nprobe()) + " exceeds the " +
                     std::to_string(ivf->nlist) + " lists of collection '" + meta_.name + "'");
    }
    const idx_t ntotal = index_->ntotal;
    // Dead entries are tombstones: every kind skips them through the selector (a graph while
    // it walks, hnsw_search_live), until compaction rebuilds the index without them.
    const idx_t k = std::min<idx_t>(request.k(), ntotal);
    LiveSelector selector(labels_.live);
    faiss::IDSelector* live = labels_.dead > 0 ? &selector : nullptr;
    faiss::SearchParametersIVF ivf_params;
    faiss::SearchParameters flat_params;
    SearchParametersFastScan fast_scan_params;
    const faiss::SearchParameters* params = nullptr;
    int ef = 0;
    if (hnsw != nullptr) {
      ef = request.ef() != 0 ? int(request.ef()) : hnsw->hnsw.efSearch;
      if (request.ef() != 0 && request.ef() < request.k()) {
        return invalid("ef = " + std::to_string(request.ef()) +
                       " must be at least k = " + std::to_string(request.k()));
      }
    } else if (ivf != nullptr) {
      ivf_params.nprobe = request.nprobe() != 0 ? request.nprobe() : ivf->nprobe;
      ivf_params.sel = live;
      params = &ivf_params;
    } else if (fast_scan != nullptr) {
      fast_scan_params.k_factor = float(request.rerank_factor());  // 0: the index's
      fast_scan_params.sel = live;
      params = &fast_scan_params;
    } else if (live != nullptr) {
      flat_params.sel = live;
      params = &flat_params;
    }
    if (k > 0) {
      std::vector<float> distances(nq * size_t(k));
      std::vector<idx_t> found(nq * size_t(k));
      try {
        if (hnsw != nullptr) {
          hnsw_search_live(*hnsw, idx_t(nq), x.data(), k, ef, live, labels_.by_id.size(),
                           distances.data(), found.data());
        } else {
          index_->search(idx_t(nq), x.data(), k, distances.data(), found.data(), params);
        }
      } catch (const faiss::FaissException& e) {
        return Status(StatusCode::INTERNAL, "search: " + std::string(e.what()));
      }
      for (size_t i = 0; i < nq; ++i) {
        for (idx_t j = 0; j < k; ++j) {
          const idx_t label = found[i * size_t(k) + size_t(j)];
          if (label < 0 || !labels_.live[size_t(label)]) continue;
          hits[i].emplace_back(labels_.ids[size_t(label)], distances[i * size_t(k) + size_t(j)]);
        }
      }
    }
  }

  std::vector<std::string> payloads;
  std::vector<rocksdb::Status> statuses;
  if (request.with_payload()) {
    std::vector<std::string> keys;
    for (const auto& query_hits : hits) {
      for (const auto& hit : query_hits) keys.push_back(Storage::doc_key(meta_.uid, hit.first));
    }
    statuses = storage_.multi_get(storage_.docs(), keys, &payloads);
  }
  size_t at = 0;
  for (const auto& query_hits : hits) {
    v1::QueryResult* result = response->add_results();
    for (const auto& [id, log_fidelity] : query_hits) {
      v1::Hit* hit = result->add_hits();
      hit->set_id(id);
      hit->set_log_fidelity(log_fidelity);
      hit->set_fidelity(std::exp(double(log_fidelity)));
      // A document deleted between the scan and this read keeps its hit without payload.
      if (request.with_payload() && statuses[at].ok()) hit->set_payload_json(payloads[at]);
      ++at;
    }
  }
  return Status::OK;
}

void Collection::describe(v1::CollectionInfo* info) const {
  std::shared_lock index_lock(index_mutex_);
  info->set_name(meta_.name);
  info->set_dimension(meta_.dimension);
  info->set_index_spec(meta_.spec);
  info->set_documents(labels_.by_id.size());
  info->set_keeps_vectors(!meta_.discard_vectors);
  info->set_train_on_first_n(meta_.train_on_first_n);
  info->set_head_state(training_now_ ? v1::CollectionInfo::TRAINING
                       : trained()   ? v1::CollectionInfo::TRAINED
                                     : v1::CollectionInfo::UNTRAINED);
  const faiss::Index* shape = index_ ? index_.get() : untrained_shape_.get();
  if (shape != nullptr) {
    info->set_qubits(uint32_t(index_codec(*shape).qubits()));
    info->set_code_bits(uint32_t(index_codec(*shape).bits()));
    info->set_code_bytes(uint32_t(index_code_size(*shape)));
    info->set_head_description(index_head(*shape).describe());
    info->set_head_parameters(index_head(*shape).num_parameters());
  }
  if (index_) {
    info->set_index_entries(uint64_t(index_->ntotal));
    info->set_index_bytes(index_memory_bytes(*index_));
  }
  std::lock_guard lock(training_mutex_);
  *info->mutable_training() = training_;
}

// ---------------------------------------------------------------------------------------------
// Training

void Collection::maybe_start_background_training() {
  {
    std::shared_lock index_lock(index_mutex_);
    if (meta_.train_on_first_n == 0 || trained()) return;
    if (labels_.by_id.size() < meta_.train_on_first_n) return;
  }
  bool expected = false;
  if (!training_now_.compare_exchange_strong(expected, true)) return;
  std::lock_guard lock(training_mutex_);
  if (background_training_.joinable()) background_training_.join();
  background_training_ = std::thread([this] {
    v1::TrainHeadRequest request;
    request.set_collection(meta_.name);
    request.mutable_unsupervised()->set_sample_size(meta_.train_on_first_n);
    spdlog::info("collection '{}': {} documents stored, training the head", meta_.name,
                 meta_.train_on_first_n);
    const Status s = train(request, nullptr);
    if (!s.ok())
      spdlog::error("collection '{}': training failed: {}", meta_.name, s.error_message());
  });
}

void Collection::stop_background_work() {
  cancel_training_ = true;
  std::thread thread;
  {
    std::lock_guard lock(training_mutex_);
    thread = std::move(background_training_);
  }
  if (thread.joinable()) thread.join();
}

Status Collection::train(const v1::TrainHeadRequest& request, const TrainProgressSink& sink) {
  // The background path has claimed training_now_ already; a TrainHead call claims it here.
  const bool background = !sink;
  if (!background) {
    bool expected = false;
    if (!training_now_.compare_exchange_strong(expected, true)) {
      return Status(StatusCode::FAILED_PRECONDITION,
                    "collection '" + meta_.name + "': a training run is in progress");
    }
  }
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag = false; }
  } release{training_now_};

  auto report = [&](v1::TrainProgress progress) {
    {
      std::lock_guard lock(training_mutex_);
      training_ = progress;
    }
    return !cancel_training_ && (!sink || sink(progress));
  };
  auto fail = [&](Status s) {
    v1::TrainProgress progress;
    progress.set_stage(v1::TrainProgress::FAILED);
    progress.set_message(s.error_message());
    report(progress);
    return s;
  };

  std::lock_guard write_lock(write_mutex_);
  const bool compact = request.mode_case() == v1::TrainHeadRequest::kCompact;
  if (compact && !trained()) {
    return fail(Status(StatusCode::FAILED_PRECONDITION,
                       "compact: collection '" + meta_.name + "' has no trained head yet"));
  }
  // A compaction of a flat index copies the stored codes; everything else encodes raw vectors.
  const bool copy_codes = compact && !adds_from_raw_vectors(*index_);
  if (meta_.discard_vectors && trained() && !copy_codes) {
    return fail(Status(StatusCode::FAILED_PRECONDITION,
                       "collection '" + meta_.name +
                           "' discards raw vectors, so it cannot be re-encoded by a new head"));
  }
  std::vector<uint64_t> live;
  for (uint64_t label = 0; label < labels_.ids.size(); ++label) {
    if (labels_.live[label]) live.push_back(label);
  }
  v1::TrainProgress progress;
  progress.set_stage(v1::TrainProgress::LOADING);
  progress.set_to_encode(live.size());
  report(progress);

  std::unique_ptr<faiss::Index> index;
  const uint64_t seed = request.seed() != 0 ? request.seed() : meta_.seed;
  Status s;
  if (compact) {
    index = deserialize_index(template_bytes_, "index template of '" + meta_.name + "'");
  } else {
    s = make_index(meta_.dimension, meta_.spec, meta_.seed, &index);
    if (!s.ok()) return fail(s);
  }
  HeadTrainerOptions options;
  options.seed = seed;
  if (request.max_epochs() != 0) options.max_epochs = int(request.max_epochs());
  if (request.learning_rate() != 0) options.learning_rate = request.learning_rate();
  progress.set_max_epochs(uint32_t(options.max_epochs));
  options.progress = [&](const TrainingProgress& p) {
    progress.set_stage(v1::TrainProgress::TRAINING);
    progress.set_epoch(uint32_t(p.epoch));
    progress.set_train_loss(p.train_loss);
    progress.set_holdout_loss(p.holdout_loss);
    return report(progress);
  };

  try {
    if (compact) {
      // The current head (and list centroids) as they are.
    } else if (request.mode_case() == v1::TrainHeadRequest::kSupervised) {
      const auto& pairs = request.supervised().pairs();
      if (pairs.size() < 2) return fail(invalid("supervised.pairs: at least 2 pairs are needed"));
      std::vector<float> queries(size_t(pairs.size()) * meta_.dimension);
      std::vector<uint64_t> positives;
      for (int i = 0; i < pairs.size(); ++i) {
        const std::string field = "supervised.pairs[" + std::to_string(i) + "]";
        s = check_vector(pairs[i].query(), field + ".query");
        if (!s.ok()) return fail(s);
        auto it = labels_.by_id.find(pairs[i].positive_id());
        if (it == labels_.by_id.end()) {
          return fail(invalid(field + ".positive_id '" + pairs[i].positive_id() +
                              "' is not stored in collection '" + meta_.name + "'"));
        }
        positives.push_back(it->second);
        std::copy(pairs[i].query().begin(), pairs[i].query().end(),
                  queries.begin() + size_t(i) * meta_.dimension);
      }
      std::vector<float> positive_rows;
      s = read_vectors(meta_.generation, positives, &positive_rows);
      if (!s.ok()) return fail(s);
      FidelityHead head = index_head(*index);
      if (FeatureMixer* mixer = head.mixer()) {
        mixer->fit_standardization(positives.size(), positive_rows.data());
      }
      options.mode = TrainingMode::kSupervised;
      FidelityHeadModel model(head);
      TrainingData data;
      data.dim = int(meta_.dimension);
      data.queries = queries;
      data.positives = positive_rows;
      HeadTrainer(options).train(model, data);
      // The 4-bit codes' ranges describe the documents they will encode: an evenly strided
      // sample of the stored ones, not only the (maybe few) positives.
      std::vector<float> range_rows;
      s = read_vectors(meta_.generation, strided_sample(live, limits_.default_sample), &range_rows);
      if (!s.ok()) return fail(s);
      head.fit_angle_ranges(range_rows.size() / meta_.dimension, range_rows.data());
      install_head(index, std::move(head), positives.size(), positive_rows.data());
    } else {
      const size_t wanted = request.unsupervised().sample_size() != 0
                                ? request.unsupervised().sample_size()
                                : limits_.default_sample;
      if (live.size() < 2) {
        return fail(Status(StatusCode::FAILED_PRECONDITION,
                           "collection '" + meta_.name + "' stores " + std::to_string(live.size()) +
                               " documents; unsupervised training needs at least 2"));
      }
      const std::vector<uint64_t> sample = strided_sample(live, wanted);
      std::vector<float> rows;
      s = read_vectors(meta_.generation, sample, &rows);
      if (!s.ok()) return fail(s);
      set_training_options(*index, options);
      index->train(idx_t(sample.size()), rows.data());
    }
  } catch (const faiss::FaissException& e) {
    return fail(Status(StatusCode::FAILED_PRECONDITION, "training: " + std::string(e.what())));
  }
  if (cancel_training_) return fail(Status(StatusCode::CANCELLED, "training cancelled"));
  // The trained, still empty index: what a restart without a snapshot starts from.
  const std::string template_bytes = serialize_index(*index);
  const size_t code_bytes = index_code_size(*index);

  // Re-encode every live document into the next generation, chunk by chunk; nothing of it is
  // visible until the synced switch-over batch below names the new generation.
  const uint32_t next_generation = meta_.generation + 1;
  Labels labels;
  progress.set_stage(v1::TrainProgress::ENCODING);
  for (size_t at = 0; at < live.size(); at += kEncodeChunk) {
    const size_t nb = std::min(kEncodeChunk, live.size() - at);
    std::vector<uint64_t> chunk(live.begin() + long(at), live.begin() + long(at + nb));
    std::vector<float> raw;
    std::string codes(nb * code_bytes, '\0');
    if (!meta_.discard_vectors || !copy_codes) {
      s = read_vectors(meta_.generation, chunk, &raw);
      if (!s.ok()) return fail(s);
    }
    s = copy_codes ? read_codes(meta_.generation, chunk, code_bytes, &codes) : Status::OK;
    if (!s.ok()) return fail(s);
    if (!copy_codes) encode(*index, nb, raw.data(), reinterpret_cast<uint8_t*>(codes.data()));
    rocksdb::WriteBatch batch;
    for (size_t i = 0; i < nb; ++i) {
      storage::StoredRecord record;
      record.set_id(labels_.ids[chunk[i]]);
      record.set_code(codes.substr(i * code_bytes, code_bytes));
      const std::string key = Storage::label_key(meta_.uid, next_generation, at + i);
      batch.Put(storage_.records(), key, record.SerializeAsString());
      if (!meta_.discard_vectors) {
        batch.Put(storage_.vectors(), key,
                  to_bytes(raw.data() + i * meta_.dimension, meta_.dimension));
      }
      labels.add(record.id());
    }
    s = storage_.write_unsynced(batch);
    if (!s.ok()) return fail(s);
    s = add_to_index(*index, at, nb, raw.data(), codes.data());
    if (!s.ok()) return fail(s);
    progress.set_encoded(at + nb);
    if (!report(progress)) return fail(Status(StatusCode::CANCELLED, "training cancelled"));
  }

  {
    std::unique_lock index_lock(index_mutex_);
    // Only the generation and the template change; the other fields are read without locks.
    meta_.generation = next_generation;
    std::string old_template = template_bytes_;
    template_bytes_ = template_bytes;
    rocksdb::WriteBatch batch;
    batch.Put(storage_.meta(), Storage::collection_key(meta_.name),
              stored_record().SerializeAsString());
    storage_.delete_generation_rows(meta_.uid, next_generation - 1, batch);
    s = storage_.write(batch);
    if (!s.ok()) {
      meta_.generation = next_generation - 1;
      template_bytes_ = old_template;
      return fail(s);
    }
    index_ = std::move(index);
    labels_ = std::move(labels);
    snapshot_entries_ = -1;
  }
  std::error_code ec;
  std::filesystem::remove(snapshot_path(next_generation - 1), ec);
  progress.set_stage(v1::TrainProgress::DONE);
  progress.set_message(index_head(*index_).describe());
  report(progress);
  spdlog::info("collection '{}': head trained, {} documents re-encoded (generation {})", meta_.name,
               live.size(), next_generation);
  return Status::OK;
}

// ---------------------------------------------------------------------------------------------
// Snapshots

std::string Collection::snapshot_path(uint32_t generation) const {
  return snapshot_dir_ + "/" + std::to_string(meta_.uid) + "." + std::to_string(generation) +
         ".bloch";
}

Status Collection::snapshot(bool wait, bool* written) {
  if (written) *written = false;
  // The index only changes under write_mutex_, so holding it (and not index_mutex_) freezes the
  // index while searches go on reading it; a snapshot of a large graph then delays writes, not
  // searches. Without `wait`, a busy collection (a write or a training run) is skipped.
  std::unique_lock write_lock(write_mutex_, std::defer_lock);
  if (wait) {
    write_lock.lock();
  } else if (!write_lock.try_lock()) {
    return Status::OK;
  }
  if (!index_ || index_->ntotal == snapshot_entries_) return Status::OK;
  try {
    std::filesystem::create_directories(snapshot_dir_);
    write_index(*index_, snapshot_path(meta_.generation));
  } catch (const std::exception& e) {
    return Status(StatusCode::INTERNAL, "snapshot of '" + meta_.name + "': " + e.what());
  }
  snapshot_entries_ = index_->ntotal;
  if (written) *written = true;
  return Status::OK;
}

double Collection::dead_fraction() const {
  std::shared_lock index_lock(index_mutex_);
  if (!index_ || labels_.ids.empty()) return 0.0;
  return double(labels_.dead) / double(labels_.ids.size());
}

void Collection::remove_snapshots() const {
  std::error_code ec;
  for (uint32_t g = 0; g <= meta_.generation; ++g) std::filesystem::remove(snapshot_path(g), ec);
}

}  // namespace bloch::server
