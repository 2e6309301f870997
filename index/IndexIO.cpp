#include "index/IndexIO.h"

#include <faiss/IndexHNSW.h>
#include <faiss/impl/FaissAssert.h>

#include <array>

#include "index/BinaryIO.h"
#include "index/IndexFidelityFastScan.h"
#include "index/IndexFidelityFlat.h"
#include "index/IndexFidelityIVF.h"

namespace bloch {

namespace {

constexpr std::array<char, 8> kIndexMagic = {'B', 'L', 'O', 'C', 'H', 'I', 'X', '1'};

// Kind tags: stable numbers, never reused.
enum class IndexKind : uint32_t {
  kFidelityFlat = 1,
  kFidelityHnsw = 2,
  kFidelityIvf = 3,
  kFidelityFastScan = 4,
};

// Upper bound on any stored array's element count: far above real indexes, low enough that
// count × element size cannot overflow.
constexpr uint64_t kMaxElements = uint64_t(1) << 36;

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

// A faiss::IndexHNSW over an IndexFidelityFlat: the storage record, then the graph (levels,
// per-node neighbour offsets, neighbour lists) and its search parameters.
void write_fidelity_hnsw(const faiss::IndexHNSW& index, const IndexFidelityFlat& storage,
                         BinaryWriter& out) {
  write_fidelity_flat(storage, out);
  const faiss::HNSW& g = index.hnsw;
  out.put_vector(g.assign_probas);
  out.put_vector(g.cum_nneighbor_per_level);
  out.put_vector(g.levels);
  out.put_vector(std::vector<uint64_t>(g.offsets.begin(), g.offsets.end()));
  out.put_vector(g.neighbors);
  out.put<int32_t>(g.entry_point);
  out.put<int32_t>(g.max_level);
  out.put<int32_t>(g.efConstruction);
  out.put<int32_t>(g.efSearch);
  out.put<int32_t>(g.upper_beam);
  out.put<uint8_t>(g.check_relative_distance ? 1 : 0);
  out.put<uint8_t>(g.search_bounded_queue ? 1 : 0);
}

// The checksum proves the bytes are what was written; this proves they describe a graph over
// `n` stored vectors, so a search can never index out of bounds.
void check_graph(const faiss::HNSW& g, faiss::Index::idx_t n, const std::string& what) {
  FAISS_THROW_IF_NOT_FMT(g.levels.size() == size_t(n) && g.offsets.size() == size_t(n) + 1,
                         "%s: HNSW has %zu levels and %zu offsets for %lld vectors", what.c_str(),
                         g.levels.size(), g.offsets.size(), static_cast<long long>(n));
  FAISS_THROW_IF_NOT_FMT(g.offsets.front() == 0 && g.offsets.back() == g.neighbors.size(),
                         "%s: HNSW offsets do not span the %zu neighbour slots", what.c_str(),
                         g.neighbors.size());
  for (size_t i = 0; i + 1 < g.offsets.size(); ++i)
    FAISS_THROW_IF_NOT_FMT(g.offsets[i] <= g.offsets[i + 1], "%s: HNSW offsets decrease at %zu",
                           what.c_str(), i);
  for (const auto v : g.neighbors)
    FAISS_THROW_IF_NOT_FMT(v >= -1 && v < n, "%s: HNSW neighbour %d outside [-1, %lld)",
                           what.c_str(), v, static_cast<long long>(n));
  FAISS_THROW_IF_NOT_FMT(g.entry_point >= -1 && g.entry_point < n &&
                             g.cum_nneighbor_per_level.size() == g.assign_probas.size() + 1,
                         "%s: HNSW entry point or level tables are inconsistent", what.c_str());
}

std::unique_ptr<faiss::Index> read_fidelity_hnsw(BinaryReader& in) {
  std::unique_ptr<faiss::Index> storage = read_fidelity_flat(in);
  const auto n = storage->ntotal;
  const bool trained = storage->is_trained;
  auto index = std::make_unique<faiss::IndexHNSW>(storage.release(), 32);
  index->own_fields = true;
  faiss::HNSW& g = index->hnsw;
  g.assign_probas = in.get_vector<double>("hnsw.assign_probas", 1024);
  g.cum_nneighbor_per_level = in.get_vector<int>("hnsw.cum_nneighbor_per_level", 1025);
  g.levels = in.get_vector<int>("hnsw.levels", kMaxElements);
  const auto offsets = in.get_vector<uint64_t>("hnsw.offsets", kMaxElements);
  g.offsets.assign(offsets.begin(), offsets.end());
  g.neighbors = in.get_vector<faiss::HNSW::storage_idx_t>("hnsw.neighbors", kMaxElements);
  g.entry_point = in.get<int32_t>("hnsw.entry_point");
  g.max_level = in.get<int32_t>("hnsw.max_level");
  g.efConstruction = in.get<int32_t>("hnsw.efConstruction");
  g.efSearch = in.get<int32_t>("hnsw.efSearch");
  g.upper_beam = in.get<int32_t>("hnsw.upper_beam");
  g.check_relative_distance = in.get<uint8_t>("hnsw.check_relative_distance") != 0;
  g.search_bounded_queue = in.get<uint8_t>("hnsw.search_bounded_queue") != 0;
  check_graph(g, n, in.what());
  index->ntotal = n;
  index->is_trained = trained;
  return index;
}

// An IndexFidelityIVF: head, codec, training state, nlist and search parameters, the coarse
// centroids (nlist × 2q floats, none before training), the direct-map type, then every list's
// ids and codes. The lists are read back through add_entries, so any InvertedLists layout works
// on the writing side.
void write_fidelity_ivf(const IndexFidelityIVF& index, BinaryWriter& out) {
  index.head().serialize(out);
  out.put<uint8_t>(static_cast<uint8_t>(index.codec().type()));
  out.put<uint8_t>(index.is_trained ? 1 : 0);
  out.put<uint8_t>(index.train_head ? 1 : 0);
  out.put<int64_t>(index.ntotal);
  out.put<uint64_t>(index.nlist);
  out.put<uint64_t>(index.nprobe);
  out.put<uint64_t>(index.max_codes);
  const faiss::IndexFlatL2& centroids = index.bloch_quantizer();
  out.put<int64_t>(centroids.ntotal);
  out.put_vector(centroids.codes);
  out.put<uint8_t>(static_cast<uint8_t>(index.direct_map.type));
  const faiss::InvertedLists& lists = *index.invlists;
  for (size_t l = 0; l < index.nlist; ++l) {
    const size_t n = lists.list_size(l);
    faiss::InvertedLists::ScopedIds ids(&lists, l);
    faiss::InvertedLists::ScopedCodes codes(&lists, l);
    out.put_vector(std::vector<int64_t>(ids.get(), ids.get() + n));
    out.put_vector(std::vector<uint8_t>(codes.get(), codes.get() + n * index.code_size));
  }
}

std::unique_ptr<faiss::Index> read_fidelity_ivf(BinaryReader& in) {
  const std::string& what = in.what();
  FidelityHead head = FidelityHead::deserialize(in);
  const auto code_type = static_cast<CodeType>(in.get<uint8_t>("codec.type"));
  FAISS_THROW_IF_NOT_FMT(
      code_type == CodeType::kFloat || code_type == CodeType::k8bit || code_type == CodeType::k4bit,
      "%s: unknown code type %d", what.c_str(), int(code_type));
  const bool trained = in.get<uint8_t>("index.is_trained") != 0;
  const bool train_head = in.get<uint8_t>("ivf.train_head") != 0;
  const auto ntotal = in.get<int64_t>("index.ntotal");
  const auto nlist = in.get<uint64_t>("ivf.nlist");
  FAISS_THROW_IF_NOT_FMT(nlist >= 1 && nlist <= IndexFidelityIVF::kMaxLists,
                         "%s: IVF nlist=%llu outside [1, %zu]", what.c_str(),
                         static_cast<unsigned long long>(nlist), IndexFidelityIVF::kMaxLists);
  FAISS_THROW_IF_NOT_FMT(ntotal >= 0 && (trained || ntotal == 0),
                         "%s: ntotal=%lld on an index that is %s", what.c_str(),
                         static_cast<long long>(ntotal), trained ? "trained" : "not trained");
  auto index = std::make_unique<IndexFidelityIVF>(std::move(head), code_type, size_t(nlist));
  index->train_head = train_head;
  index->nprobe = in.get<uint64_t>("ivf.nprobe");
  index->max_codes = in.get<uint64_t>("ivf.max_codes");
  FAISS_THROW_IF_NOT_FMT(index->nprobe >= 1, "%s: IVF nprobe=0", what.c_str());

  // Centroids: none before training, exactly nlist of dimension 2q after.
  const auto n_centroids = in.get<int64_t>("ivf.centroids.ntotal");
  const size_t centroid_bytes = size_t(index->bloch_dim()) * sizeof(float);
  const auto centroids = in.get_vector<uint8_t>("ivf.centroids", nlist * centroid_bytes);
  const int64_t expected_centroids = trained ? int64_t(nlist) : 0;
  FAISS_THROW_IF_NOT_FMT(
      n_centroids == expected_centroids && centroids.size() == size_t(n_centroids) * centroid_bytes,
      "%s: %lld centroids in %zu bytes for an index with nlist=%llu, 2q=%d, %s", what.c_str(),
      static_cast<long long>(n_centroids), centroids.size(), static_cast<unsigned long long>(nlist),
      index->bloch_dim(), trained ? "trained" : "not trained");
  if (n_centroids > 0)
    index->quantizer->add(n_centroids, reinterpret_cast<const float*>(centroids.data()));
  const auto direct_map_type = in.get<uint8_t>("ivf.direct_map");
  FAISS_THROW_IF_NOT_FMT(direct_map_type <= uint8_t(faiss::DirectMap::Hashtable),
                         "%s: unknown direct map type %d", what.c_str(), int(direct_map_type));

  // Lists: ids are what search returns, so a negative one (−1 means "no result") is refused,
  // and the entries cannot outnumber the vectors added.
  uint64_t entries = 0;
  for (uint64_t l = 0; l < nlist; ++l) {
    const auto ids = in.get_vector<int64_t>("ivf.list.ids", kMaxElements);
    const auto codes = in.get_vector<uint8_t>("ivf.list.codes", ids.size() * index->code_size);
    FAISS_THROW_IF_NOT_FMT(codes.size() == ids.size() * index->code_size,
                           "%s: list %llu has %zu code bytes for %zu ids × code_size=%zu",
                           what.c_str(), static_cast<unsigned long long>(l), codes.size(),
                           ids.size(), index->code_size);
    for (const int64_t id : ids)
      FAISS_THROW_IF_NOT_FMT(id >= 0, "%s: list %llu holds the negative id %lld", what.c_str(),
                             static_cast<unsigned long long>(l), static_cast<long long>(id));
    entries += ids.size();
    FAISS_THROW_IF_NOT_FMT(entries <= uint64_t(ntotal), "%s: lists hold more than ntotal=%lld ids",
                           what.c_str(), static_cast<long long>(ntotal));
    if (!ids.empty()) index->invlists->add_entries(l, ids.size(), ids.data(), codes.data());
  }
  index->ntotal = ntotal;
  index->is_trained = trained;
  // An array map requires the ids 0 … ntotal−1 (FAISS checks it while rebuilding); a hash map
  // takes any ids.
  index->set_direct_map_type(static_cast<faiss::DirectMap::Type>(direct_map_type));
  return index;
}

// An IndexFidelityFastScan: its re-ranking index as a flat record, then k_factor and the table
// floor. The packed 4-bit blocks are derived from the re-ranking codes, so they are rebuilt on
// load rather than stored.
void write_fidelity_fast_scan(const IndexFidelityFastScan& index, BinaryWriter& out) {
  write_fidelity_flat(index.refine_index(), out);
  out.put<uint8_t>(index.is_trained ? 1 : 0);
  out.put<int32_t>(index.k_factor);
  out.put<float>(index.table_floor);
}

std::unique_ptr<faiss::Index> read_fidelity_fast_scan(BinaryReader& in) {
  const std::string& what = in.what();
  std::unique_ptr<faiss::Index> stored = read_fidelity_flat(in);
  auto& flat = static_cast<IndexFidelityFlat&>(*stored);
  const CodeType refine_type = flat.codec().type();
  FAISS_THROW_IF_NOT_FMT(refine_type == CodeType::k8bit || refine_type == CodeType::kFloat,
                         "%s: fast-scan re-ranking codes are %s (8-bit or float expected)",
                         what.c_str(), code_type_name(refine_type));
  auto index = std::make_unique<IndexFidelityFastScan>(flat.head(), refine_type);
  index->add_codes(flat.ntotal, flat.codes.data());
  index->is_trained = in.get<uint8_t>("fast_scan.is_trained") != 0;
  FAISS_THROW_IF_NOT_FMT(index->is_trained || index->ntotal == 0,
                         "%s: %lld documents in an untrained fast-scan index", what.c_str(),
                         static_cast<long long>(index->ntotal));
  index->k_factor = in.get<int32_t>("fast_scan.k_factor");
  index->table_floor = in.get<float>("fast_scan.table_floor");
  FAISS_THROW_IF_NOT_FMT(index->k_factor >= 1 && index->table_floor <= 0,
                         "%s: fast-scan k_factor=%d or table floor %g out of range", what.c_str(),
                         index->k_factor, double(index->table_floor));
  return index;
}

}  // namespace

std::string serialize_index(const faiss::Index& index) {
  BinaryWriter out;
  out.put(kIndexMagic);
  out.put<uint32_t>(kIndexFormatVersion);
  const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(&index);
  const auto* hnsw_storage = hnsw ? dynamic_cast<const IndexFidelityFlat*>(hnsw->storage) : nullptr;
  if (const auto* flat = dynamic_cast<const IndexFidelityFlat*>(&index)) {
    out.put<uint32_t>(static_cast<uint32_t>(IndexKind::kFidelityFlat));
    write_fidelity_flat(*flat, out);
  } else if (const auto* ivf = dynamic_cast<const IndexFidelityIVF*>(&index)) {
    out.put<uint32_t>(static_cast<uint32_t>(IndexKind::kFidelityIvf));
    write_fidelity_ivf(*ivf, out);
  } else if (const auto* fast_scan = dynamic_cast<const IndexFidelityFastScan*>(&index)) {
    out.put<uint32_t>(static_cast<uint32_t>(IndexKind::kFidelityFastScan));
    write_fidelity_fast_scan(*fast_scan, out);
  } else if (hnsw_storage) {
    out.put<uint32_t>(static_cast<uint32_t>(IndexKind::kFidelityHnsw));
    write_fidelity_hnsw(*hnsw, *hnsw_storage, out);
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
    case IndexKind::kFidelityHnsw:
      index = read_fidelity_hnsw(in);
      break;
    case IndexKind::kFidelityIvf:
      index = read_fidelity_ivf(in);
      break;
    case IndexKind::kFidelityFastScan:
      index = read_fidelity_fast_scan(in);
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
