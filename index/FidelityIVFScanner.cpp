#include "index/FidelityIVFScanner.h"

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/utils/Heap.h>

#include <algorithm>

namespace bloch {

namespace {

// Codes scored per kernel call (as in IndexFidelityFlat): the scores stay in L1 while the heap
// consumes them.
constexpr size_t kScanBlock = 1024;

using TopK = faiss::CMin<float, faiss::Index::idx_t>;  // min-heap of the k largest log-fidelities

}  // namespace

FidelityIVFScanner::FidelityIVFScanner(const FidelityHead& head, const Codec& codec,
                                       bool store_pairs, const faiss::IDSelector* sel)
    : faiss::InvertedListScanner(store_pairs, sel), query_(head, codec) {
  FAISS_THROW_IF_NOT_MSG(!(store_pairs && sel),
                         "FidelityIVFScanner: an IDSelector filters ids, which store_pairs "
                         "replaces by list positions; they cannot be combined");
  keep_max = true;
  code_size = codec.code_size();
}

void FidelityIVFScanner::set_query(const float* x) {
  query_.set_raw(x);
}

void FidelityIVFScanner::set_angles(const float* angles) {
  query_.set_angles(angles);
}

void FidelityIVFScanner::set_list(idx_t list_no, float) {
  this->list_no = list_no;
}

float FidelityIVFScanner::distance_to_code(const uint8_t* code) const {
  return query_.score(code);
}

faiss::InvertedListScanner::idx_t FidelityIVFScanner::label(const idx_t* ids, size_t j) const {
  return store_pairs ? idx_t(faiss::lo_build(uint64_t(list_no), j)) : ids[j];
}

size_t FidelityIVFScanner::scan_codes(size_t n, const uint8_t* codes, const idx_t* ids,
                                      float* distances, idx_t* labels, size_t k) const {
  float block[kScanBlock];
  size_t updates = 0;
  for (size_t b = 0; b < n; b += kScanBlock) {
    const size_t nb = std::min(kScanBlock, n - b);
    query_.scan(codes + b * code_size, nb, block);
    for (size_t j = 0; j < nb; ++j) {
      if (block[j] > distances[0] && (!sel || sel->is_member(ids[b + j]))) {
        faiss::heap_replace_top<TopK>(k, distances, labels, block[j], label(ids, b + j));
        ++updates;
      }
    }
  }
  return updates;
}

void FidelityIVFScanner::scan_codes_range(size_t n, const uint8_t* codes, const idx_t* ids,
                                          float radius, faiss::RangeQueryResult& result) const {
  float block[kScanBlock];
  for (size_t b = 0; b < n; b += kScanBlock) {
    const size_t nb = std::min(kScanBlock, n - b);
    query_.scan(codes + b * code_size, nb, block);
    for (size_t j = 0; j < nb; ++j)
      if (block[j] > radius && (!sel || sel->is_member(ids[b + j])))
        result.add(block[j], label(ids, b + j));
  }
}

}  // namespace bloch
