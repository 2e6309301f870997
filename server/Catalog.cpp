#include "server/Catalog.h"

#include <spdlog/spdlog.h>

#include <mutex>

namespace bloch::server {

using grpc::Status;
using grpc::StatusCode;

Status Catalog::Open(const CatalogOptions& options, std::unique_ptr<Catalog>* out) {
  std::unique_ptr<Catalog> catalog(new Catalog(options));
  Status s = Storage::Open(options.data_dir + "/db", &catalog->storage_);
  if (!s.ok()) return s;
  std::vector<storage::StoredCollection> stored;
  s = catalog->storage_->load_collections(&stored);
  if (!s.ok()) return s;
  for (auto& meta : stored) {
    std::shared_ptr<Collection> collection;
    const std::string name = meta.name();
    s = Collection::Open(*catalog->storage_, std::move(meta), catalog->snapshot_dir(),
                         options.limits, &collection);
    if (!s.ok()) return Status(s.error_code(), "collection '" + name + "': " + s.error_message());
    catalog->collections_.emplace(name, std::move(collection));
  }
  spdlog::info("data directory {}: {} collections", options.data_dir, catalog->collections_.size());
  *out = std::move(catalog);
  return Status::OK;
}

Catalog::~Catalog() {
  close();
}

Status Catalog::create(const v1::CreateCollectionRequest& request, v1::CollectionInfo* info) {
  storage::StoredCollection meta;
  Status s = Collection::Prepare(request, &meta);
  if (!s.ok()) return s;
  std::unique_lock lock(mutex_);
  if (collections_.count(request.name())) {
    return Status(StatusCode::ALREADY_EXISTS,
                  "name: collection '" + request.name() + "' already exists");
  }
  if (collections_.size() >= options_.max_collections) {
    return Status(StatusCode::RESOURCE_EXHAUSTED,
                  "collections: " + std::to_string(collections_.size()) +
                      " exist, max_collections = " + std::to_string(options_.max_collections));
  }
  rocksdb::WriteBatch batch;
  meta.set_uid(storage_->allocate_uid(batch));
  batch.Put(storage_->meta(), Storage::collection_key(meta.name()), meta.SerializeAsString());
  s = storage_->write(batch);
  if (!s.ok()) return s;
  std::shared_ptr<Collection> collection;
  s = Collection::Open(*storage_, meta, snapshot_dir(), options_.limits, &collection);
  if (!s.ok()) return s;
  collection->describe(info);
  collections_.emplace(meta.name(), std::move(collection));
  spdlog::info("created collection '{}' ({}, d={})", meta.name(), meta.index_spec(),
               meta.dimension());
  return Status::OK;
}

Status Catalog::drop(const std::string& name) {
  std::shared_ptr<Collection> collection;
  {
    std::unique_lock lock(mutex_);
    auto it = collections_.find(name);
    if (it == collections_.end()) {
      return Status(StatusCode::NOT_FOUND, "name: no collection '" + name + "'");
    }
    rocksdb::WriteBatch batch;
    batch.Delete(storage_->meta(), Storage::collection_key(name));
    storage_->delete_collection_rows(it->second->uid(), batch);
    Status s = storage_->write(batch);
    if (!s.ok()) return s;
    collection = std::move(it->second);
    collections_.erase(it);
  }
  collection->stop_background_work();
  collection->remove_snapshots();
  spdlog::info("dropped collection '{}'", name);
  return Status::OK;
}

Status Catalog::find(const std::string& name, std::shared_ptr<Collection>* out) const {
  std::shared_lock lock(mutex_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    return Status(StatusCode::NOT_FOUND, "collection: no collection '" + name + "'");
  }
  *out = it->second;
  return Status::OK;
}

std::vector<std::shared_ptr<Collection>> Catalog::list() const {
  std::shared_lock lock(mutex_);
  std::vector<std::shared_ptr<Collection>> out;
  for (const auto& [name, collection] : collections_) out.push_back(collection);
  return out;
}

size_t Catalog::snapshot_all(bool wait) {
  size_t written = 0;
  for (const auto& collection : list()) {
    bool wrote = false;
    const Status s = collection->snapshot(wait, &wrote);
    if (!s.ok()) spdlog::error("{}", s.error_message());
    written += wrote ? 1 : 0;
  }
  return written;
}

size_t Catalog::compact_all(double min_dead_fraction, const std::function<bool()>& keep_going) {
  size_t compacted = 0;
  for (const auto& collection : list()) {
    if (!keep_going()) break;
    const double dead = collection->dead_fraction();
    if (dead <= 0 || dead < min_dead_fraction) continue;
    v1::TrainHeadRequest request;
    request.set_collection(collection->name());
    request.mutable_compact();
    const Status s =
        collection->train(request, [&](const v1::TrainProgress&) { return keep_going(); });
    if (s.ok()) {
      ++compacted;
      spdlog::info("compacted '{}' ({:.0f}% dead entries)", collection->name(), 100 * dead);
    } else if (keep_going()) {
      // A training run in progress makes the collection busy: it is tried again next time.
      spdlog::warn("compaction of '{}': {}", collection->name(), s.error_message());
    }
  }
  return compacted;
}

void Catalog::close() {
  if (!storage_) return;
  for (const auto& collection : list()) collection->stop_background_work();
  const size_t written = snapshot_all(/*wait=*/true);
  spdlog::info("closed: {} snapshots written", written);
  {
    std::unique_lock lock(mutex_);
    collections_.clear();
  }
  storage_.reset();
}

}  // namespace bloch::server
