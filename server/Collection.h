#pragma once

// One collection of blochd: its stored rows (Storage) and the in-memory index derived from them.
//
// Concurrency (DESIGN §4): searches hold `index_mutex_` shared; a write batch is made durable
// first (outside that lock, under `write_mutex_`, which orders writers and hands out labels) and
// then applied to the index under `index_mutex_` exclusively, for that one batch only (graph
// kinds: in chunks of kGraphApplyChunk vectors, so searches interleave with a slow insert).
// Training holds `write_mutex_` for its whole run (writes wait) and swaps the rebuilt index in
// under a brief exclusive lock, so searches keep answering from the old index meanwhile. A
// snapshot holds `write_mutex_` only (the index cannot change under it): it delays writes, never
// searches. `index_mutex_` prefers writers (SharedMutex.h), so a stream of searches cannot
// starve a write batch.

#include <faiss/Index.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bloch/v1/bloch.pb.h"
#include "server/SharedMutex.h"
#include "server/Storage.h"

namespace bloch::server {

/// Progress sink of a training run; returning false cancels it.
using TrainProgressSink = std::function<bool(const v1::TrainProgress&)>;

struct CollectionLimits {
  size_t max_batch = 10000;       ///< documents per write batch
  size_t max_k = 1000;            ///< hits per query
  size_t max_queries = 1024;      ///< queries per search request
  size_t default_sample = 50000;  ///< rows of an unsupervised training run when not given
};

class Collection {
 public:
  /// Opens a stored collection: loads the snapshot of its current generation, if any, and
  /// replays the records written after it.
  static grpc::Status Open(Storage& storage, storage::StoredCollection meta,
                           std::string snapshot_dir, CollectionLimits limits,
                           std::shared_ptr<Collection>* out);
  /// Validates a create request into a new collection's record (uid assigned by the caller).
  static grpc::Status Prepare(const v1::CreateCollectionRequest& request,
                              storage::StoredCollection* meta);
  ~Collection();

  const std::string& name() const { return meta_.name; }
  uint32_t uid() const { return meta_.uid; }

  grpc::Status upsert(const v1::UpsertRequest& request, v1::UpsertResponse* response);
  grpc::Status remove(const v1::DeleteRequest& request, v1::DeleteResponse* response);
  grpc::Status get(const v1::GetRequest& request, v1::GetResponse* response) const;
  grpc::Status search(const v1::SearchRequest& request, v1::SearchResponse* response) const;
  /// Trains the head (see the TrainHead RPC), re-encodes everything and swaps the index in.
  grpc::Status train(const v1::TrainHeadRequest& request, const TrainProgressSink& progress);
  void describe(v1::CollectionInfo* info) const;

  /// Writes a snapshot of the index when it changed since the last one; *written says whether
  /// one was. With wait = false a collection busy writing or training is left for next time.
  grpc::Status snapshot(bool wait, bool* written = nullptr);
  /// Stops background training (cancels it) and waits for it; called before a drop or exit.
  void stop_background_work();
  /// Index entries of replaced or deleted documents over all index entries (0 while untrained
  /// or empty): what a compaction would drop.
  double dead_fraction() const;
  /// Deletes this collection's snapshot files.
  void remove_snapshots() const;

 private:
  struct Meta {
    std::string name;
    uint32_t uid = 0;
    uint32_t dimension = 0;
    std::string spec;
    uint32_t train_on_first_n = 0;
    bool discard_vectors = false;
    uint64_t seed = 0;
    uint32_t generation = 0;
  };
  /// Labels of the current generation: label → id, liveness, id → newest label.
  struct Labels {
    std::vector<std::string> ids;
    std::vector<uint8_t> live;
    std::unordered_map<std::string, uint64_t> by_id;
    size_t dead = 0;
    void add(const std::string& id);
    bool kill(const std::string& id);
  };

  Collection(Storage& storage, std::string snapshot_dir, CollectionLimits limits);

  grpc::Status load(const storage::StoredCollection& stored);
  grpc::Status rebuild_index_from_records();
  /// Appends n entries with labels first_label…: raw is n × d, codes n × code size.
  grpc::Status add_to_index(faiss::Index& index, uint64_t first_label, size_t n, const float* raw,
                            const char* codes) const;
  grpc::Status read_vectors(uint32_t generation, const std::vector<uint64_t>& labels,
                            std::vector<float>* out) const;
  /// The stored codes of `labels` (code_bytes each), concatenated.
  grpc::Status read_codes(uint32_t generation, const std::vector<uint64_t>& labels,
                          size_t code_bytes, std::string* out) const;
  grpc::Status check_vector(const google::protobuf::RepeatedField<float>& values,
                            const std::string& field) const;
  grpc::Status require_trained() const;
  bool trained() const { return index_ != nullptr; }
  void maybe_start_background_training();
  std::string snapshot_path(uint32_t generation) const;
  storage::StoredCollection stored_record() const;

  Storage& storage_;
  const std::string snapshot_dir_;
  const CollectionLimits limits_;
  Meta meta_;
  std::string template_bytes_;  // serialize_index of the trained, empty index ("" untrained)

  mutable std::mutex write_mutex_;                   // orders writers, guards meta_ changes
  mutable WriterPreferringSharedMutex index_mutex_;  // index_, labels_, meta_.generation
  // Null while untrained. Shared so that an upsert can encode with it outside the locks while
  // training swaps in a new one.
  std::shared_ptr<faiss::Index> index_;
  // While untrained: a fresh index of the collection's spec, made once, for describe().
  std::unique_ptr<faiss::Index> untrained_shape_;
  Labels labels_;
  std::atomic<int64_t> snapshot_entries_{-1};  // index entries in the newest snapshot

  mutable std::mutex training_mutex_;  // training_ and the background thread
  v1::TrainProgress training_;
  std::atomic<bool> training_now_{false};
  std::atomic<bool> cancel_training_{false};
  std::thread background_training_;
};

}  // namespace bloch::server
