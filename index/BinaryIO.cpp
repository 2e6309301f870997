#include "index/BinaryIO.h"

#include <faiss/impl/FaissAssert.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace bloch {

uint64_t checksum64(std::string_view bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

std::string BinaryWriter::finish_with_checksum() {
  put<uint64_t>(checksum64(buffer_));
  return std::move(buffer_);
}

BinaryReader::BinaryReader(std::string_view record, std::string what) : what_(std::move(what)) {
  FAISS_THROW_IF_NOT_FMT(record.size() >= sizeof(uint64_t),
                         "%s: record of %zu bytes is too short to hold its checksum (truncated?)",
                         what_.c_str(), record.size());
  payload_ = record.substr(0, record.size() - sizeof(uint64_t));
  uint64_t stored;
  std::memcpy(&stored, record.data() + payload_.size(), sizeof(stored));
  const uint64_t actual = checksum64(payload_);
  FAISS_THROW_IF_NOT_FMT(stored == actual,
                         "%s: checksum mismatch (stored %016llx, computed %016llx): the data is "
                         "truncated or corrupted",
                         what_.c_str(), static_cast<unsigned long long>(stored),
                         static_cast<unsigned long long>(actual));
}

const char* BinaryReader::take(uint64_t n, const char* field) {
  FAISS_THROW_IF_NOT_FMT(n <= payload_.size() - pos_,
                         "%s: field '%s' needs %llu bytes at offset %llu but only %llu remain",
                         what_.c_str(), field, static_cast<unsigned long long>(n),
                         static_cast<unsigned long long>(pos_),
                         static_cast<unsigned long long>(payload_.size() - pos_));
  const char* p = payload_.data() + pos_;
  pos_ += n;
  return p;
}

void BinaryReader::check_count(uint64_t n, uint64_t max_count, const char* field) const {
  FAISS_THROW_IF_NOT_FMT(n <= max_count,
                         "%s: field '%s' holds %llu elements, more than the %llu allowed",
                         what_.c_str(), field, static_cast<unsigned long long>(n),
                         static_cast<unsigned long long>(max_count));
}

std::string_view BinaryReader::get_bytes(const char* field) {
  const auto n = get<uint64_t>(field);
  return {take(n, field), n};
}

void BinaryReader::expect_end() const {
  FAISS_THROW_IF_NOT_FMT(pos_ == payload_.size(), "%s: %llu unexpected trailing bytes",
                         what_.c_str(), static_cast<unsigned long long>(payload_.size() - pos_));
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FAISS_THROW_IF_NOT_FMT(fd >= 0, "cannot create '%s': %s", tmp.c_str(), std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      const int err = errno;
      ::close(fd);
      FAISS_THROW_FMT("cannot write '%s': %s", tmp.c_str(), std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  const bool synced = ::fsync(fd) == 0;
  const int sync_errno = errno;
  ::close(fd);
  FAISS_THROW_IF_NOT_FMT(synced, "cannot fsync '%s': %s", tmp.c_str(), std::strerror(sync_errno));
  FAISS_THROW_IF_NOT_FMT(std::rename(tmp.c_str(), path.c_str()) == 0,
                         "cannot rename '%s' to '%s': %s", tmp.c_str(), path.c_str(),
                         std::strerror(errno));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  FAISS_THROW_IF_NOT_FMT(in.good(), "cannot open '%s': %s", path.c_str(), std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  return std::move(content).str();
}

}  // namespace bloch
