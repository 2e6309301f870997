#pragma once

// Little-endian binary records with a trailing checksum, the one serialisation mechanism of
// index/. A record is `payload || xxh3_64(payload)`; BinaryReader refuses a short record or a
// checksum mismatch before anything is parsed, and every later read is bounds-checked, so a
// truncated or corrupted file fails with a message naming what was being read.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace bloch {

/// Appends plain values to a byte buffer.
class BinaryWriter {
 public:
  template <typename T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const char*>(&value);
    buffer_.append(p, sizeof(T));
  }
  template <typename T>
  void put_vector(const std::vector<T>& values) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(values.size());
    buffer_.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  }
  void put_bytes(std::string_view bytes) {
    put<uint64_t>(bytes.size());
    buffer_.append(bytes);
  }
  /// Returns payload || checksum and leaves the writer empty.
  std::string finish_with_checksum();

 private:
  std::string buffer_;
};

/// Reads values back from a record made by BinaryWriter; throws faiss::FaissException on a
/// checksum mismatch or any read past the end. `what` names the source in error messages.
class BinaryReader {
 public:
  BinaryReader(std::string_view record, std::string what);

  template <typename T>
  T get(const char* field) {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, take(sizeof(T), field), sizeof(T));
    return value;
  }
  template <typename T>
  std::vector<T> get_vector(const char* field, uint64_t max_count) {
    const auto n = get<uint64_t>(field);
    check_count(n, max_count, field);
    // Bounds-check before allocating; an empty vector's data() may be null, and memcpy to
    // null is undefined even for 0 bytes.
    const char* src = take(n * sizeof(T), field);
    std::vector<T> values(n);
    if (n > 0) std::memcpy(values.data(), src, n * sizeof(T));
    return values;
  }
  std::string_view get_bytes(const char* field);
  /// Throws unless every payload byte has been consumed.
  void expect_end() const;
  const std::string& what() const { return what_; }

 private:
  const char* take(uint64_t n, const char* field);
  void check_count(uint64_t n, uint64_t max_count, const char* field) const;

  std::string_view payload_;
  uint64_t pos_ = 0;
  std::string what_;
};

/// xxh3-64 of a byte range.
uint64_t checksum64(std::string_view bytes);

/// Whole-file helpers. write_file_atomically writes to `path.tmp`, fsyncs and renames, so a
/// crash leaves either the old or the new file, never a torn one.
void write_file_atomically(const std::string& path, std::string_view bytes);
std::string read_file(const std::string& path);

}  // namespace bloch
