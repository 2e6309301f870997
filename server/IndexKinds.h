#pragma once

// What blochd needs of each bloch index kind, behind one set of functions: the exact scan
// (IndexFidelityFlat), a graph over flat codes (faiss::IndexHNSW with an IndexFidelityFlat as
// storage), inverted lists (IndexFidelityIVF) and the 4-bit fast scan with re-ranking
// (IndexFidelityFastScan, whose records keep the re-ranking code). Collection never looks at
// the concrete kinds, except for their search parameters.

#include <faiss/Index.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>

#include "index/Codec.h"
#include "index/FidelityHead.h"
#include "index/HeadTrainer.h"

namespace bloch::server {

/// Builds the index a factory spec names (fresh seeded head), or INVALID_ARGUMENT naming
/// index_spec when the spec is bad or the kind is not one the service serves.
grpc::Status make_index(uint32_t dimension, const std::string& spec, uint64_t seed,
                        std::unique_ptr<faiss::Index>* out);

const FidelityHead& index_head(const faiss::Index& index);
const Codec& index_codec(const faiss::Index& index);
/// Bytes of one document's code.
size_t index_code_size(const faiss::Index& index);
/// codes = codec(head(x)) for n raw vectors (n × index_code_size bytes).
void encode(const faiss::Index& index, size_t n, const float* x, uint8_t* codes);
/// Whether adding to the index needs the raw vectors (graph and list kinds place a vector by
/// distance computations from it); the flat and fast-scan kinds append codes as they are.
bool adds_from_raw_vectors(const faiss::Index& index);
/// Appends n entries (labels ntotal … ntotal+n−1): codes for the flat and fast-scan kinds, raw
/// vectors else.
void append(faiss::Index& index, size_t n, const float* raw, const uint8_t* codes);
/// Bytes of codes plus graph links or list ids held in memory.
uint64_t index_memory_bytes(const faiss::Index& index);
/// Sets the options of the unsupervised head training that index.train() runs.
void set_training_options(faiss::Index& index, const HeadTrainerOptions& options);
/// Makes the fresh index `index` (from make_index, empty) use `head`, ready to add: for the
/// list kind this also runs its k-means on the n sample rows.
void install_head(std::unique_ptr<faiss::Index>& index, FidelityHead head, size_t n,
                  const float* sample);
bool is_graph(const faiss::Index& index);
bool has_lists(const faiss::Index& index);
/// Whether the kind pre-selects candidates and re-ranks them (takes a re-rank factor).
bool reranks(const faiss::Index& index);

}  // namespace bloch::server
