#pragma once

// Exact fidelity search over head codes (DESIGN §3): a faiss::IndexFlatCodes whose `d` is the
// raw embedding dimension and whose codes are the circuit head's angles under a Codec.
//
//   add(x)     : codes = codec(head(x))
//   search(x)  : top-k by log-fidelity ℓ = Σ_i log max(cos²(ϑ_i − ϑ'_i), ε), larger is better
//                (METRIC_INNER_PRODUCT semantics); returned distances are ℓ ≤ 0, fidelity = exp(ℓ)
//   range_search(x, radius): every code with ℓ > radius, i.e. fidelity > exp(radius)
//
// Because it is a FlatCodes index with a FlatCodesDistanceComputer, FAISS wrappers work on top of
// it unchanged: IndexIDMap2 (external ids), IndexShards (merged top-k), IndexHNSW (as storage),
// IndexRefine (as the re-ranking index).

#include <faiss/IndexFlatCodes.h>

#include <cstdint>

#include "index/CircuitHead.h"
#include "index/Codec.h"
#include "index/FidelityHead.h"
#include "index/HeadTrainer.h"

namespace bloch {

class IndexFidelityFlat : public faiss::IndexFlatCodes {
 public:
  /// An index with a trained head: ready to add().
  IndexFidelityFlat(FidelityHead head, CodeType code_type);
  /// The same with a paper-exact circuit head.
  IndexFidelityFlat(CircuitHead head, CodeType code_type);
  /// An index whose fresh head (see HeadSpec) must be trained by train() before add().
  /// Training uses `training` (unsupervised mode, see HeadTrainer).
  IndexFidelityFlat(const HeadSpec& spec, CodeType code_type);
  /// Paper-exact d → q head with N(0,1) parameters under `seed`, to be trained.
  IndexFidelityFlat(int d, int q, CodeType code_type, uint64_t seed = 1234);
  /// An empty shell for read_index().
  IndexFidelityFlat() = default;

  const FidelityHead& head() const { return head_; }
  const Codec& codec() const { return codec_; }
  /// Replaces the head. Allowed only while the index is empty: stored codes would no longer
  /// match the queries' angles.
  void set_head(FidelityHead head);

  /// Options of the unsupervised training run by train(); the mode is forced to unsupervised.
  HeadTrainerOptions training;
  /// Result of the last train() call.
  HeadTrainingResult last_training;

  /// Trains the head unsupervised on n raw vectors (neighbourhood distillation, DESIGN §1.6);
  /// a mixer's standardisation is fitted on the same vectors first. The index must be empty.
  void train(idx_t n, const float* x) override;

  /// Encodes and appends n raw vectors (ids ntotal … ntotal+n−1). Requires a trained head.
  void add(idx_t n, const float* x) override;

  /// codes = codec(head(x)): n × code_size bytes.
  void sa_encode(idx_t n, const float* x, uint8_t* bytes) const override;
  /// Not supported: the head is many-to-one, raw vectors cannot be recovered from codes.
  /// Throws; use reconstruct_angles().
  void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;

  /// The q decoded angles of stored vector `key` (exact for float codes, level centres else).
  void reconstruct_angles(idx_t key, float* angles) const;
  /// Head angles of n raw vectors (n × q).
  void compute_angles(idx_t n, const float* x, float* angles) const;

  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
  /// Searches with precomputed query angles (n × q) instead of raw vectors.
  void search_angles(idx_t n, const float* angles, idx_t k, float* distances, idx_t* labels,
                     const faiss::SearchParameters* params = nullptr) const;

  /// All stored vectors with log-fidelity > radius (radius = log of the minimum fidelity).
  void range_search(idx_t n, const float* x, float radius, faiss::RangeSearchResult* result,
                    const faiss::SearchParameters* params = nullptr) const override;

  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override;

  void check_compatible_for_merge(const faiss::Index& other) const override;

 private:
  void search_one(const float* angles, idx_t k, float* distances, idx_t* labels,
                  const faiss::IDSelector* sel, bool parallel_scan) const;

  FidelityHead head_;
  Codec codec_;
};

}  // namespace bloch
