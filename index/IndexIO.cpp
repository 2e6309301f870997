#include "index/IndexIO.h"

#include <faiss/impl/FaissAssert.h>

#include <array>

#include "index/BinaryIO.h"
#include "index/IndexFidelityFlat.h"

namespace bloch {

namespace {

constexpr std::array<char, 8> kIndexMagic = {'B', 'L', 'O', 'C', 'H', 'I', 'X', '1'};

// Kind tags: stable numbers, never reused.
enum class IndexKind : uint32_t { kFidelityFlat = 1 };

void write_fidelity_flat(const IndexFidelityFlat& index, BinaryWriter& out) {
  index.head().serialize(out);
  out.put<uint8_t>(static_cast<uint8_t>(index.codec().type()));
  out.put<uint8_t>(index.is_trained ? 1 : 0);
  out.put<int64_t>(index.ntotal);
  out.put_vector(index.codes);
}

std::unique_ptr<faiss::Index> read_fidelity_flat(BinaryReader& in) {
  FidelityHead head = FidelityHead::deserialize(in);
  const auto code_type = static_cast<CodeType>(in.get<uint8_t>("codec.type"));
  FAISS_THROW_IF_NOT_FMT(
      code_type == CodeType::kFloat || code_type == CodeType::k8bit || code_type == CodeType::k4bit,
      "%s: unknown code type %d", in.what().c_str(), int(code_type));
  const bool trained = in.get<uint8_t>("index.is_trained") != 0;
  auto index = std::make_unique<IndexFidelityFlat>(std::move(head), code_type);
  index->is_trained = trained;
  const auto ntotal = in.get<int64_t>("index.ntotal");
  FAISS_THROW_IF_NOT_FMT(ntotal >= 0, "%s: negative ntotal %lld", in.what().c_str(),
                         static_cast<long long>(ntotal));
  index->codes = in.get_vector<uint8_t>("index.codes", uint64_t(ntotal) * index->code_size);
  FAISS_THROW_IF_NOT_FMT(index->codes.size() == size_t(ntotal) * index->code_size,
                         "%s: %zu code bytes for ntotal=%lld × code_size=%zu", in.what().c_str(),
                         index->codes.size(), static_cast<long long>(ntotal), index->code_size);
  index->ntotal = ntotal;
  return index;
}

}  // namespace

std::string serialize_index(const faiss::Index& index) {
  BinaryWriter out;
  out.put(kIndexMagic);
  out.put<uint32_t>(kIndexFormatVersion);
  if (const auto* flat = dynamic_cast<const IndexFidelityFlat*>(&index)) {
    out.put<uint32_t>(static_cast<uint32_t>(IndexKind::kFidelityFlat));
    write_fidelity_flat(*flat, out);
  } else {
    FAISS_THROW_MSG("serialize_index: unsupported index type (bloch serialises its own kinds)");
  }
  return out.finish_with_checksum();
}

std::unique_ptr<faiss::Index> deserialize_index(std::string_view bytes, const std::string& what) {
  FAISS_THROW_IF_NOT_FMT(
      bytes.size() >= kIndexMagic.size() &&
          bytes.substr(0, kIndexMagic.size()) == std::string_view(kIndexMagic.data(), 8),
      "%s: bad magic (not a bloch index file)", what.c_str());
  BinaryReader in(bytes, what);
  in.get<std::array<char, 8>>("index.magic");
  const auto version = in.get<uint32_t>("index.version");
  FAISS_THROW_IF_NOT_FMT(version == kIndexFormatVersion,
                         "%s: index format version %u is not supported (this build reads %u)",
                         what.c_str(), version, kIndexFormatVersion);
  const auto kind = in.get<uint32_t>("index.kind");
  std::unique_ptr<faiss::Index> index;
  switch (static_cast<IndexKind>(kind)) {
    case IndexKind::kFidelityFlat:
      index = read_fidelity_flat(in);
      break;
    default:
      FAISS_THROW_FMT("%s: unknown index kind %u", what.c_str(), kind);
  }
  in.expect_end();
  return index;
}

void write_index(const faiss::Index& index, const std::string& path) {
  write_file_atomically(path, serialize_index(index));
}

std::unique_ptr<faiss::Index> read_index(const std::string& path) {
  return deserialize_index(read_file(path), "index file '" + path + "'");
}

}  // namespace bloch
