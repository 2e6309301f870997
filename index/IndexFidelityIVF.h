#pragma once

// Inverted-file search over head codes (DESIGN §3): a faiss::IndexIVF whose `d` is the raw
// embedding dimension, like IndexFidelityFlat, and whose inverted lists hold the codes
// codec(head(x)) with their ids.
//
// Two spaces. Users add and search raw vectors (d floats). The coarse quantizer lives in Bloch
// space: head angles ϑ ∈ [0, π/2]^q become B = (sin 2ϑ_i, cos 2ϑ_i)_i ∈ R^{2q}, where
// |B − B'|² = 4 Σ_i (1 − cos²(ϑ_i − ϑ'_i)) (BlochVectors.h), so L2 k-means there groups codes
// whose per-qubit fidelities are high; `quantizer` is a faiss::IndexFlatL2 of dimension 2q
// holding the nlist centroids. It is a proxy: lists are chosen by summed infidelity, codes
// are then ranked by the exact log-fidelity.
//
// Because the quantizer's dimension (2q) is not d, every FAISS entry point that would hand raw
// vectors to the quantizer is overridden to go raw → head → angles → Bloch first, and the head
// runs once per vector (twice per query in range_search):
//   train(x)        : if train_head, the head is trained unsupervised (train_head_unsupervised,
//                     as IndexFidelityFlat::train); then k-means (faiss::Clustering,
//                     parameters `cp`) on the Bloch vectors of the training angles
//   add_with_ids(x) : list = nearest centroid of B(head(x)), code = codec(head(x))
//   search(x)       : probe the nprobe lists whose centroids are nearest to B(head(x)); score
//                     their codes with the query's look-up tables (FidelityIVFScanner); top-k by
//                     log-fidelity ℓ ≤ 0, larger is better (METRIC_INNER_PRODUCT semantics)
//   range_search(x) : every probed code with ℓ > radius
// search_preassigned/add_core keep FAISS's contract (raw x, list numbers given). nprobe is a
// member and can be set per call through faiss::SearchParametersIVF (with an IDSelector and
// max_codes). With nprobe = nlist every code is scored: the result is the exact search of an
// IndexFidelityFlat with the same head and codec (scores equal within the kernels' SIMD
// tolerance, kKernelTolerance·q).
//
// Not supported (they throw): reconstruction of raw vectors (the head is many-to-one),
// update_vectors. remove_ids, merge_from (same head and centroids) and the direct maps come from
// IndexIVF. search() is const and keeps all per-query state local: threads may share an index.

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>

#include <cstdint>

#include "index/Codec.h"
#include "index/FidelityHead.h"
#include "index/HeadTrainer.h"

namespace bloch {

class IndexFidelityIVF : public faiss::IndexIVF {
 public:
  /// Upper bound on nlist (factory strings and loaded files): k-means and the quantizer scan
  /// grow with nlist, and far fewer lists than this already suit any collection of one machine.
  static constexpr size_t kMaxLists = size_t(1) << 20;

  /// An index over a given (trained) head: train() only runs k-means (train_head = false).
  IndexFidelityIVF(FidelityHead head, CodeType code_type, size_t nlist);
  /// An index whose fresh head (see HeadSpec) train() trains first (train_head = true).
  IndexFidelityIVF(const HeadSpec& spec, CodeType code_type, size_t nlist);

  const FidelityHead& head() const { return head_; }
  const Codec& codec() const { return codec_; }
  /// The coarse quantizer: nlist centroids of dimension bloch_dim() = 2q (0 before train()).
  const faiss::IndexFlatL2& bloch_quantizer() const;
  int bloch_dim() const { return 2 * codec_.qubits(); }

  /// Whether train() trains the head before k-means.
  bool train_head = false;
  /// Options of the head training run by train(); the mode is forced to unsupervised.
  HeadTrainerOptions training;
  /// Result of the last head training run by train().
  HeadTrainingResult last_training;

  /// Head training (if train_head), then k-means on the Bloch vectors of n raw vectors
  /// (n ≥ nlist). The index must be empty.
  void train(idx_t n, const float* x) override;

  /// Encodes n raw vectors and appends them to their lists (ids xids, or ntotal … ntotal+n−1).
  void add_with_ids(idx_t n, const float* x, const idx_t* xids) override;
  /// The same with the lists already chosen (list_nos[i] < 0: vector i is not added).
  void add_core(idx_t n, const float* x, const idx_t* xids, const idx_t* list_nos) override;
  /// codes = codec(head(x)), optionally preceded by the list number (IndexIVF's sa format).
  void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes,
                      bool include_listno = false) const override;
  /// List number + code of n raw vectors: what add_sa_codes() takes.
  void sa_encode(idx_t n, const float* x, uint8_t* bytes) const override;

  /// Head angles of n raw vectors (n × q).
  void compute_angles(idx_t n, const float* x, float* angles) const;

  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
  /// Searches with precomputed query angles (n × q) instead of raw vectors.
  void search_angles(idx_t n, const float* angles, idx_t k, float* distances, idx_t* labels,
                     const faiss::SearchParameters* params = nullptr) const;
  /// x are raw queries; assign holds nprobe list numbers per query (centroid_dis is unused:
  /// codes hold full angles, not residuals).
  void search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* assign,
                          const float* centroid_dis, float* distances, idx_t* labels,
                          bool store_pairs, const faiss::IVFSearchParameters* params = nullptr,
                          faiss::IndexIVFStats* stats = nullptr) const override;
  /// Every probed code with log-fidelity > radius (radius = log of the minimum fidelity). The
  /// head runs twice per query here (once for the quantizer, once in IndexIVF's range scan).
  void range_search(idx_t n, const float* x, float radius, faiss::RangeSearchResult* result,
                    const faiss::SearchParameters* params = nullptr) const override;

  faiss::InvertedListScanner* get_InvertedListScanner(
      bool store_pairs = false, const faiss::IDSelector* sel = nullptr) const override;

  /// Not supported (throw): raw vectors cannot be recovered from codes.
  void reconstruct_from_offset(int64_t list_no, int64_t offset, float* recons) const override;
  void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                              float* recons,
                              const faiss::SearchParameters* params = nullptr) const override;
  /// Not supported (throws): remove_ids() then add_with_ids() instead.
  void update_vectors(int nv, const idx_t* idx, const float* v) override;

  /// Same head, codec, nlist and centroids, and no direct maps.
  void check_compatible_for_merge(const faiss::Index& other) const override;

 private:
  // Scores the lists assign[i·nprobe …] for every query (angles n × q) into the top-k results.
  void scan_lists(idx_t n, const float* angles, idx_t k, const idx_t* assign, idx_t nprobe,
                  float* distances, idx_t* labels, bool store_pairs, const faiss::IDSelector* sel,
                  size_t max_codes, faiss::IndexIVFStats* stats) const;
  // Appends n codes (code_size bytes each) to lists list_nos (< 0: skipped).
  void add_codes(idx_t n, const uint8_t* codes, const idx_t* xids, const idx_t* list_nos);
  // Nearest centroid of each of n angle rows.
  void assign_angles(idx_t n, const float* angles, idx_t* list_nos) const;
  // The nprobe nearest centroids (and their L2 distances) of each of n angle rows.
  void probe_angles(idx_t n, const float* angles, idx_t nprobe, idx_t* list_nos,
                    float* coarse_dis) const;

  FidelityHead head_;
  Codec codec_;
};

}  // namespace bloch
