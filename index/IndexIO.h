#pragma once

// Serialisation of bloch's index kinds (DESIGN §3). A file is one checksummed record
// (BinaryIO.h): magic "BLOCHIX1", format version, kind tag, then the kind's fields (head, codec,
// codes, ...). A short, corrupted or foreign file is refused with a message saying what is
// wrong; nothing is parsed before the checksum over the whole file has been verified.
// faiss::write_index is never used: it knows nothing of our kinds.

#include <faiss/Index.h>

#include <memory>
#include <string>
#include <string_view>

namespace bloch {

/// Bumped whenever the layout of any kind changes; older versions are refused with a message.
inline constexpr uint32_t kIndexFormatVersion = 1;

/// Index bytes of a supported kind: IndexFidelityFlat, faiss::IndexHNSW whose storage is an
/// IndexFidelityFlat, IndexFidelityIVF or IndexFidelityFastScan. Throws for other index types.
/// (The IVF and fast-scan kinds were added as new kind tags: files of the other kinds are
/// unchanged, so the version stays 1.)
std::string serialize_index(const faiss::Index& index);
/// Inverse of serialize_index; `what` names the source in error messages.
std::unique_ptr<faiss::Index> deserialize_index(std::string_view bytes, const std::string& what);

/// serialize_index written atomically (temp file, fsync, rename).
void write_index(const faiss::Index& index, const std::string& path);
std::unique_ptr<faiss::Index> read_index(const std::string& path);

}  // namespace bloch
