#pragma once

// blochd's source of truth (DESIGN §4): one RocksDB database for all collections.
//
//   column family  key                                   value
//   meta           "collection/" + name                  StoredCollection (storage.proto)
//                  "next_uid"                            big-endian uint32
//   docs           be32(uid) · id                        payload JSON ("" for none)
//   records        be32(uid) · be32(gen) · be64(label)   StoredRecord {id, code}
//   vectors        be32(uid) · be32(gen) · be64(label)   d little-endian float32 (raw vector)
//
// Labels are handed out in increasing order, one per written document, so the records column
// family read in key order *is* the log of additions: the in-memory index is rebuilt (or caught
// up after a snapshot) by replaying it. A document is live when its id is in docs and its label
// is the newest record for that id; superseded and deleted labels stay until the next training
// run rewrites the collection into a new generation. Every write is one WriteBatch with
// sync = true, so an acknowledged write survives kill -9 and power loss.

#include <grpcpp/support/status.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage.pb.h"

namespace bloch::server {

class Storage {
 public:
  /// Opens (creating if needed) the database under `dir`.
  static grpc::Status Open(const std::string& dir, std::unique_ptr<Storage>* out);
  ~Storage();

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* meta() const { return handles_[0]; }
  rocksdb::ColumnFamilyHandle* docs() const { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* records() const { return handles_[2]; }
  rocksdb::ColumnFamilyHandle* vectors() const { return handles_[3]; }

  /// Writes the batch durably (synced WAL) before returning.
  grpc::Status write(rocksdb::WriteBatch& batch);
  /// Writes without waiting for the disk; a later synced write makes it durable too (the WAL is
  /// sequential). For bulk rewrites that end with a synced switch-over batch.
  grpc::Status write_unsynced(rocksdb::WriteBatch& batch);

  /// Values of `keys` in `family` (one read); statuses[i] says whether keys[i] was found.
  std::vector<rocksdb::Status> multi_get(rocksdb::ColumnFamilyHandle* family,
                                         const std::vector<std::string>& keys,
                                         std::vector<std::string>* values) const;

  /// Every stored collection.
  grpc::Status load_collections(std::vector<storage::StoredCollection>* out) const;
  /// Reserves a fresh collection uid (persisted in `batch`).
  uint32_t allocate_uid(rocksdb::WriteBatch& batch);
  static std::string collection_key(std::string_view name);
  /// Removes every docs/records/vectors row of uid (range deletes) into `batch`.
  void delete_collection_rows(uint32_t uid, rocksdb::WriteBatch& batch) const;
  /// Removes one generation's records and vectors into `batch`.
  void delete_generation_rows(uint32_t uid, uint32_t generation, rocksdb::WriteBatch& batch) const;

  static std::string doc_key(uint32_t uid, std::string_view id);
  static std::string uid_prefix(uint32_t uid);
  static std::string generation_prefix(uint32_t uid, uint32_t generation);
  static std::string label_key(uint32_t uid, uint32_t generation, uint64_t label);
  /// The label of a records/vectors key.
  static uint64_t label_of_key(std::string_view key);

 private:
  Storage() = default;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  uint32_t next_uid_ = 1;
};

/// A RocksDB status as a gRPC status (INTERNAL, with RocksDB's message and `what`).
grpc::Status storage_error(const rocksdb::Status& status, std::string_view what);

}  // namespace bloch::server
