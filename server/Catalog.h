#pragma once

// The collections of one blochd: opens the storage, loads every stored collection (snapshot +
// replay, Collection::Open) and owns the name → collection map. Lookups hand out shared
// pointers, so an RPC in flight keeps its collection alive while a drop removes it.

#include <grpcpp/support/status.h>

#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "server/Collection.h"
#include "server/SharedMutex.h"
#include "server/Storage.h"

namespace bloch::server {

struct CatalogOptions {
  /// Root of everything on disk: `db/` (RocksDB) and `snapshots/`.
  std::string data_dir = "./data";
  /// Upper bound on collections; creating one more is RESOURCE_EXHAUSTED.
  size_t max_collections = 1000;
  CollectionLimits limits;
};

class Catalog {
 public:
  static grpc::Status Open(const CatalogOptions& options, std::unique_ptr<Catalog>* out);
  ~Catalog();

  grpc::Status create(const v1::CreateCollectionRequest& request, v1::CollectionInfo* info);
  grpc::Status drop(const std::string& name);
  grpc::Status find(const std::string& name, std::shared_ptr<Collection>* out) const;
  std::vector<std::shared_ptr<Collection>> list() const;

  /// Snapshots every collection whose index changed; returns how many were written. Without
  /// `wait`, collections busy writing or training are skipped (the periodic pass).
  size_t snapshot_all(bool wait);
  /// Compacts (TrainHead mode compact) every trained collection whose dead_fraction() is at
  /// least min_dead_fraction, one at a time; keep_going() returning false cancels the pass and
  /// the compaction in progress. Returns how many were compacted.
  size_t compact_all(double min_dead_fraction, const std::function<bool()>& keep_going);
  /// Stops background training and writes final snapshots (graceful shutdown).
  void close();

 private:
  explicit Catalog(CatalogOptions options) : options_(std::move(options)) {}
  std::string snapshot_dir() const { return options_.data_dir + "/snapshots"; }

  CatalogOptions options_;
  std::unique_ptr<Storage> storage_;
  mutable WriterPreferringSharedMutex mutex_;  // collections_
  std::map<std::string, std::shared_ptr<Collection>> collections_;
};

}  // namespace bloch::server
