// blochd's RocksDB layout: raw vectors live in blob files (key-value separation) and SST files
// are written with direct I/O where the filesystem allows it. These tests write enough rows to
// force flushes and a compaction, reopen, and read every row back, on a disk directory and on a
// tmpfs one (tmpfs before Linux 6.6 refuses O_DIRECT: there the store falls back to buffered
// writes).

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ServerTestKit.h"
#include "server/Storage.h"

namespace bloch::server {
namespace {

constexpr uint32_t kUid = 7;
constexpr int kRows = 3000;
constexpr int kDim = 384;

std::string vector_bytes(int row) {
  std::string bytes(kDim * sizeof(float), '\0');
  auto* values = reinterpret_cast<float*>(bytes.data());
  for (int j = 0; j < kDim; ++j) values[j] = static_cast<float>(row) + 0.001f * j;
  return bytes;
}

void write_rows(Storage& storage, uint32_t generation) {
  for (int start = 0; start < kRows; start += 500) {
    rocksdb::WriteBatch batch;
    for (int row = start; row < start + 500; ++row) {
      const std::string key = Storage::label_key(kUid, generation, row);
      ASSERT_TRUE(batch.Put(storage.vectors(), key, vector_bytes(row)).ok());
      ASSERT_TRUE(batch.Put(storage.docs(), Storage::doc_key(kUid, std::to_string(row)), "").ok());
    }
    ASSERT_TRUE(storage.write(batch).ok());
  }
}

int count_rows(const Storage& storage, rocksdb::ColumnFamilyHandle* family, uint32_t generation,
               bool check_values) {
  std::unique_ptr<rocksdb::Iterator> it(storage.db()->NewIterator(rocksdb::ReadOptions(), family));
  const std::string prefix = Storage::generation_prefix(kUid, generation);
  int rows = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (check_values) {
      const auto row = static_cast<int>(Storage::label_of_key(it->key().ToStringView()));
      EXPECT_EQ(it->value().ToString(), vector_bytes(row)) << "row " << row;
    }
    ++rows;
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return rows;
}

void round_trip(const std::string& dir) {
  {
    std::unique_ptr<Storage> storage;
    ASSERT_TRUE(Storage::Open(dir, &storage).ok());
    write_rows(*storage, 1);
    ASSERT_TRUE(storage->db()->Flush(rocksdb::FlushOptions(), storage->vectors()).ok());
    write_rows(*storage, 2);
    ASSERT_TRUE(storage->db()->Flush(rocksdb::FlushOptions(), storage->vectors()).ok());
    rocksdb::WriteBatch drop;
    storage->delete_generation_rows(kUid, 1, drop);
    ASSERT_TRUE(storage->write(drop).ok());
    rocksdb::CompactRangeOptions compact;
    ASSERT_TRUE(storage->db()->CompactRange(compact, storage->vectors(), nullptr, nullptr).ok());
  }
  std::unique_ptr<Storage> reopened;
  ASSERT_TRUE(Storage::Open(dir, &reopened).ok());
  EXPECT_EQ(count_rows(*reopened, reopened->vectors(), 1, false), 0);
  EXPECT_EQ(count_rows(*reopened, reopened->vectors(), 2, true), kRows);
}

bool has_blob_files(const std::string& dir) {
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".blob") return true;
  }
  return false;
}

TEST(Storage, VectorsRoundTripThroughBlobFilesFlushCompactionAndReopen) {
  testing::ScratchDir dir("storage-disk");
  round_trip(dir / "data");
  EXPECT_TRUE(has_blob_files(dir / "data")) << "raw vectors should be stored in blob files";
}

TEST(Storage, WorksOnTmpfs) {
  const std::filesystem::path shm = "/dev/shm";
  if (!std::filesystem::is_directory(shm)) GTEST_SKIP() << "no /dev/shm on this machine";
  const std::filesystem::path dir =
      shm / ("bloch-storage-" + std::to_string(::getpid()) + "-" + std::to_string(::time(nullptr)));
  round_trip(dir.string());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace bloch::server
