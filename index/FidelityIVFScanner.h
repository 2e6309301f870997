#pragma once

// FAISS's per-query, per-thread scoring object over the inverted lists of an IndexFidelityIVF.
// The query's look-up tables are built once (FidelityQuery) and every list it probes is scored
// by the block kernels; the coarse distance of a list is not part of a code's score, because
// codes are the full angles, not residuals. Scores are log-fidelities ℓ ≤ 0, larger is better
// (keep_max, METRIC_INNER_PRODUCT).

#include <faiss/IndexIVF.h>

#include "index/Codec.h"
#include "index/FidelityHead.h"
#include "index/FidelityQuery.h"

namespace bloch {

class FidelityIVFScanner : public faiss::InvertedListScanner {
 public:
  FidelityIVFScanner(const FidelityHead& head, const Codec& codec, bool store_pairs,
                     const faiss::IDSelector* sel);

  /// x is a raw query embedding (head.dim() floats): the head runs once per query.
  void set_query(const float* x) override;
  /// Uses already-computed head angles (q floats): the index's own search path.
  void set_angles(const float* angles);
  void set_list(idx_t list_no, float coarse_dis) override;
  float distance_to_code(const uint8_t* code) const override;

  /// Scores n codes of the current list and keeps the k largest in the min-heap
  /// (distances, labels). Returns the number of heap replacements.
  size_t scan_codes(size_t n, const uint8_t* codes, const idx_t* ids, float* distances,
                    idx_t* labels, size_t k) const override;
  /// Appends every code with ℓ > radius.
  void scan_codes_range(size_t n, const uint8_t* codes, const idx_t* ids, float radius,
                        faiss::RangeQueryResult& result) const override;

 private:
  // Label of entry j of the current list: its id, or (list, offset) packed when store_pairs.
  idx_t label(const idx_t* ids, size_t j) const;

  FidelityQuery query_;
};

}  // namespace bloch
