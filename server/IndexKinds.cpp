#include "server/IndexKinds.h"

#include <faiss/IndexHNSW.h>
#include <faiss/impl/FaissException.h>

#include <vector>

#include "index/IndexFactory.h"
#include "index/IndexFidelityFastScan.h"
#include "index/IndexFidelityFlat.h"
#include "index/IndexFidelityIVF.h"

namespace bloch::server {

namespace {

const IndexFidelityFlat* flat_storage(const faiss::Index& index) {
  if (auto* flat = dynamic_cast<const IndexFidelityFlat*>(&index)) return flat;
  if (auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(&index)) {
    return dynamic_cast<const IndexFidelityFlat*>(hnsw->storage);
  }
  return nullptr;
}

IndexFidelityFlat* flat_storage(faiss::Index& index) {
  return const_cast<IndexFidelityFlat*>(flat_storage(std::as_const(index)));
}

const IndexFidelityIVF* lists(const faiss::Index& index) {
  return dynamic_cast<const IndexFidelityIVF*>(&index);
}

const IndexFidelityFastScan* fast_scan(const faiss::Index& index) {
  return dynamic_cast<const IndexFidelityFastScan*>(&index);
}

IndexFidelityFastScan* fast_scan(faiss::Index& index) {
  return dynamic_cast<IndexFidelityFastScan*>(&index);
}

}  // namespace

grpc::Status make_index(uint32_t dimension, const std::string& spec, uint64_t seed,
                        std::unique_ptr<faiss::Index>* out) {
  try {
    *out = index_factory(static_cast<int>(dimension), spec, seed);
  } catch (const faiss::FaissException& e) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "index_spec: " + std::string(e.what()));
  }
  if (flat_storage(**out) == nullptr && lists(**out) == nullptr && fast_scan(**out) == nullptr) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "index_spec '" + spec +
                            "': kind not served (Flat, HNSW<M>, IVF<nlist>, "
                            "x4fs,Refine(QC<q>x<bits>))");
  }
  return grpc::Status::OK;
}

const FidelityHead& index_head(const faiss::Index& index) {
  if (const auto* ivf = lists(index)) return ivf->head();
  if (const auto* fs = fast_scan(index)) return fs->head();
  return flat_storage(index)->head();
}

const Codec& index_codec(const faiss::Index& index) {
  if (const auto* ivf = lists(index)) return ivf->codec();
  // Records keep the re-ranking code; the 4-bit scan codes are derived from it.
  if (const auto* fs = fast_scan(index)) return fs->refine_codec();
  return flat_storage(index)->codec();
}

size_t index_code_size(const faiss::Index& index) {
  return index_codec(index).code_size();
}

void encode(const faiss::Index& index, size_t n, const float* x, uint8_t* codes) {
  if (const auto* ivf = lists(index)) {
    // Not ivf->sa_encode: FAISS's IVF codes start with the list number; records keep the
    // codec's code alone (the list is recomputed when the raw vector is added).
    std::vector<float> angles(n * size_t(ivf->codec().qubits()));
    ivf->compute_angles(faiss::Index::idx_t(n), x, angles.data());
    ivf->codec().encode(n, angles.data(), codes);
  } else if (const auto* fs = fast_scan(index)) {
    fs->sa_encode(faiss::Index::idx_t(n), x, codes);
  } else {
    flat_storage(index)->sa_encode(faiss::Index::idx_t(n), x, codes);
  }
}

bool adds_from_raw_vectors(const faiss::Index& index) {
  return dynamic_cast<const IndexFidelityFlat*>(&index) == nullptr && fast_scan(index) == nullptr;
}

void append(faiss::Index& index, size_t n, const float* raw, const uint8_t* codes) {
  if (auto* flat = dynamic_cast<IndexFidelityFlat*>(&index)) {
    flat->codes.insert(flat->codes.end(), codes, codes + n * flat->code_size);
    flat->ntotal += faiss::Index::idx_t(n);
  } else if (auto* fs = fast_scan(index)) {
    fs->add_codes(faiss::Index::idx_t(n), codes);
  } else {
    index.add(faiss::Index::idx_t(n), raw);
  }
}

uint64_t index_memory_bytes(const faiss::Index& index) {
  if (const auto* fs = fast_scan(index)) {
    return fs->blocks().size() + fs->refine_index().codes.size();
  }
  if (const auto* ivf = lists(index)) {
    // Each list entry: its code and its 8-byte id.
    return uint64_t(ivf->ntotal) * (ivf->code_size + sizeof(faiss::Index::idx_t)) +
           uint64_t(ivf->nlist) * uint64_t(ivf->bloch_dim()) * sizeof(float);
  }
  uint64_t bytes = flat_storage(index)->codes.size();
  if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(&index)) {
    bytes += hnsw->hnsw.neighbors.size() * sizeof(faiss::HNSW::storage_idx_t) +
             hnsw->hnsw.offsets.size() * sizeof(size_t) + hnsw->hnsw.levels.size() * sizeof(int);
  }
  return bytes;
}

void set_training_options(faiss::Index& index, const HeadTrainerOptions& options) {
  if (auto* ivf = dynamic_cast<IndexFidelityIVF*>(&index)) {
    ivf->training = options;
  } else if (auto* fs = fast_scan(index)) {
    fs->training() = options;
  } else {
    flat_storage(index)->training = options;
  }
}

void install_head(std::unique_ptr<faiss::Index>& index, FidelityHead head, size_t n,
                  const float* sample) {
  if (const auto* ivf = lists(*index)) {
    auto fresh =
        std::make_unique<IndexFidelityIVF>(std::move(head), ivf->codec().type(), ivf->nlist);
    fresh->train(faiss::Index::idx_t(n), sample);
    index = std::move(fresh);
    return;
  }
  if (auto* fs = fast_scan(*index)) {
    fs->set_head(std::move(head));
    return;
  }
  flat_storage(*index)->set_head(std::move(head));
  index->is_trained = true;
}

bool is_graph(const faiss::Index& index) {
  return dynamic_cast<const faiss::IndexHNSW*>(&index) != nullptr;
}

bool has_lists(const faiss::Index& index) {
  return lists(index) != nullptr;
}

bool reranks(const faiss::Index& index) {
  return fast_scan(index) != nullptr;
}

}  // namespace bloch::server
