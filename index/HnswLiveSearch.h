#pragma once

// k-nearest search of a faiss::IndexHNSW whose dead entries are tombstones: they stay in the
// graph and route the walk (as hnswlib's marked deletions do) but a selector keeps them out of
// the results, until the owner rebuilds the index without them.
//
// Two facts of FAISS 1.7.3's graph search shape this:
//   - HNSW::search sizes its candidate queue by max(the index's efSearch, k), not by the
//     per-query SearchParametersHNSW::efSearch; asking for `width` results with
//     efSearch = width makes a per-query ef take effect.
//   - A walk with a queue of width w visits at least w nodes (or every reachable one). With
//     at most `dead` tombstones, w = k + dead finds at least k live entries; w = ef·ntotal/live
//     finds about ef live ones, which is enough nearly always and is tried first.

#include <faiss/IndexHNSW.h>
#include <faiss/impl/IDSelector.h>

#include <cstddef>

namespace bloch {

/// Writes the k best live results of each of the n queries x (n × d) to distances/labels
/// (n × k, best first; -1 where fewer than k entries are live). `live` is null when nothing is
/// dead, else it selects the n_live live labels. ef ≥ 1 is the walk's width without tombstones.
/// Throws faiss::FaissException (from FAISS) on bad arguments. `live` is not const because
/// FAISS 1.7.3's SearchParameters::sel is not.
void hnsw_search_live(const faiss::IndexHNSW& index, faiss::Index::idx_t n, const float* x,
                      faiss::Index::idx_t k, int ef, faiss::IDSelector* live, size_t n_live,
                      float* distances, faiss::Index::idx_t* labels);

}  // namespace bloch
