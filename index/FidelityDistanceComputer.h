#pragma once

// FAISS's per-thread scoring object over an IndexFidelityFlat's codes. Graph indexes
// (faiss::IndexHNSW with our flat index as storage) and re-ranking (faiss::IndexRefine) score
// through it. "Distances" are log-fidelities, larger is better (METRIC_INNER_PRODUCT): FAISS
// negates them itself where its algorithms need smaller-is-better.

#include <faiss/impl/DistanceComputer.h>

#include "index/FidelityQuery.h"

namespace bloch {

class IndexFidelityFlat;

class FidelityDistanceComputer : public faiss::FlatCodesDistanceComputer {
 public:
  explicit FidelityDistanceComputer(const IndexFidelityFlat& index);

  /// x is a raw query embedding (index.d floats): the head runs once per query.
  void set_query(const float* x) override;
  /// ℓ(current query, code) by the query's look-up table (or exactly, for float codes).
  float distance_to_code(const uint8_t* code) override;
  /// ℓ between two stored codes (symmetric form).
  float symmetric_dis(faiss::Index::idx_t i, faiss::Index::idx_t j) override;

 private:
  const IndexFidelityFlat& index_;
  FidelityQuery query_;
};

}  // namespace bloch
