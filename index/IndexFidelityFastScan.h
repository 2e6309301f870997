#pragma once

// 4-bit fast scan with re-ranking (DESIGN §3; factory "QC<q>x4fs,Refine(QC<q>x8)"): every
// document is kept twice, as a 4-bit code packed for in-register look-ups and as an exact
// code (8-bit levels or float angles) for re-ranking.
//
//   search(x, k): ϑ = head(x);
//                 candidates = the k·k_factor best codes by the quantised 4-bit table
//                              (FastScanKernels.h: one byte shuffle scores 32 codes per qubit);
//                 hits       = the k best candidates by exact log-fidelity against the
//                              re-ranking codes (decoded to angles, scored by the exact kernel).
//
// Returned distances are the re-ranked log-fidelities ℓ ≤ 0 of the re-ranking codes, so hits
// carry the same scores as an IndexFidelityFlat over those codes would give them (within the
// kernels' kKernelTolerance); only which documents are found depends on k_factor.
//
// The 4-bit codes (the head's codec(k4bit): its levels spread over the head's fitted angle
// ranges) are derived from the re-ranking codes (decode, then 4-bit encode), so an
// index rebuilt from stored re-ranking codes (add_codes) is identical to one built by add().
// Memory per document: ⌈q/2⌉ + code bytes of the re-ranking codec.

#include <faiss/Index.h>

#include <cstdint>
#include <vector>

#include "index/Codec.h"
#include "index/FastScanKernels.h"
#include "index/FidelityHead.h"
#include "index/HeadTrainer.h"
#include "index/IndexFidelityFlat.h"

namespace bloch {

/// Per-search parameters of IndexFidelityFastScan (FAISS 1.7.3 has no IndexRefine parameters).
struct SearchParametersFastScan : faiss::SearchParameters {
  /// Candidates per requested hit for this search; 0 keeps the index's k_factor.
  float k_factor = 0;
};

class IndexFidelityFastScan : public faiss::Index {
 public:
  /// Candidates per hit unless a search says otherwise (SearchParametersFastScan).
  static constexpr int kDefaultKFactor = 8;

  /// An index with a trained head; refine_type is k8bit or kFloat.
  IndexFidelityFastScan(FidelityHead head, CodeType refine_type);
  /// An index whose fresh head (see HeadSpec) train() must train before add().
  IndexFidelityFastScan(const HeadSpec& spec, CodeType refine_type);
  /// An empty shell for deserialisation.
  IndexFidelityFastScan() = default;

  const FidelityHead& head() const { return refine_.head(); }
  /// The codec of the re-ranking codes (what sa_encode() writes and add_codes() takes).
  const Codec& refine_codec() const { return refine_.codec(); }
  /// The codec of the 4-bit scan codes: head().codec(k4bit), ranged once the head has ranges.
  const Codec& scan_codec() const { return scan_codec_; }
  /// The exact index over the re-ranking codes: same head, same labels.
  const IndexFidelityFlat& refine_index() const { return refine_; }
  /// Replaces the head; only while empty.
  void set_head(FidelityHead head);

  /// Candidates per requested hit: the fast scan keeps k·k_factor codes for re-ranking (≥ 1).
  int k_factor = kDefaultKFactor;
  /// Clamp of the quantised table (FastScanKernels.h), ≤ 0.
  float table_floor = kFastScanDefaultFloor;
  /// Options of the unsupervised head training run by train().
  HeadTrainerOptions& training() { return refine_.training; }
  const HeadTrainingResult& last_training() const { return refine_.last_training; }

  /// Trains the head unsupervised on n raw vectors (see IndexFidelityFlat::train); the index
  /// must be empty.
  void train(idx_t n, const float* x) override;
  /// Encodes and appends n raw vectors (labels ntotal … ntotal+n−1).
  void add(idx_t n, const float* x) override;
  /// Appends n re-ranking codes (n × sa_code_size() bytes, as sa_encode() wrote them).
  void add_codes(idx_t n, const uint8_t* codes);
  void reset() override;

  /// Re-ranking codes of n raw vectors: refine_codec()(head(x)).
  size_t sa_code_size() const override { return refine_.code_size; }
  void sa_encode(idx_t n, const float* x, uint8_t* bytes) const override;

  /// Head angles of n raw vectors (n × q).
  void compute_angles(idx_t n, const float* x, float* angles) const;
  /// The q decoded angles of stored document `key` (from its re-ranking code).
  void reconstruct_angles(idx_t key, float* angles) const;

  /// params may be a SearchParametersFastScan (its k_factor, when set, overrides the index's)
  /// and may carry an IDSelector (documents outside it are never candidates).
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
  /// The same with precomputed query angles (n × q).
  void search_angles(idx_t n, const float* angles, idx_t k, float* distances, idx_t* labels,
                     const faiss::SearchParameters* params = nullptr) const;
  /// Exact range search over the re-ranking codes (IndexFidelityFlat::range_search).
  void range_search(idx_t n, const float* x, float radius, faiss::RangeSearchResult* result,
                    const faiss::SearchParameters* params = nullptr) const override;

  /// The packed 4-bit blocks (FastScanKernels.h layout), ⌈ntotal/32⌉ blocks.
  const std::vector<uint8_t>& blocks() const { return blocks_; }

 private:
  // Top k·k_factor candidates of one query over blocks [begin, end) into a heap of size kc.
  void collect_candidates(const FastScanTable& table, size_t begin, size_t end,
                          const faiss::IDSelector* sel, idx_t kc, float* scores, idx_t* ids) const;
  void search_one(const float* angles, idx_t k, idx_t kc, const faiss::IDSelector* sel,
                  bool parallel_scan, float* distances, idx_t* labels) const;
  // The scan codec follows the head (its fitted ranges); kept, not rebuilt per query, because
  // building one costs q·16 cos/sin/log.
  void refresh_scan_codec();
  // Packs the 4-bit codes of re-ranking codes [first, first + n).
  void pack_from_refine_codes(size_t first, size_t n);

  IndexFidelityFlat refine_;
  Codec scan_codec_;
  std::vector<uint8_t> blocks_;
};

}  // namespace bloch
