#include "index/IndexFidelityFlat.h"

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/utils/Heap.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "index/FidelityDistanceComputer.h"
#include "index/FidelityHeadModel.h"
#include "index/FidelityKernels.h"
#include "index/FidelityQuery.h"
#include "index/SplitTopK.h"

namespace bloch {

namespace {

// Codes scored per kernel call: large enough to amortise the call, small enough that the
// scores stay in L1 while the heap consumes them.
constexpr size_t kScanBlock = 1024;

// Scores codes [begin, end) against `query` into the heap (k entries, already initialised).
void scan_into_heap(const FidelityQuery& query, const uint8_t* codes, size_t code_size,
                    faiss::Index::idx_t begin, faiss::Index::idx_t end,
                    const faiss::IDSelector* sel, faiss::Index::idx_t k, float* heap_scores,
                    faiss::Index::idx_t* heap_ids) {
  float block[kScanBlock];
  for (faiss::Index::idx_t b = begin; b < end; b += kScanBlock) {
    const size_t nb = std::min<size_t>(kScanBlock, size_t(end - b));
    query.scan(codes + size_t(b) * code_size, nb, block);
    for (size_t j = 0; j < nb; ++j) {
      const faiss::Index::idx_t id = b + faiss::Index::idx_t(j);
      if (block[j] > heap_scores[0] && (!sel || sel->is_member(id)))
        faiss::heap_replace_top<TopKHeap>(k, heap_scores, heap_ids, block[j], id);
    }
  }
}

}  // namespace

IndexFidelityFlat::IndexFidelityFlat(FidelityHead head, CodeType code_type)
    : faiss::IndexFlatCodes(0, head.dim(), faiss::METRIC_INNER_PRODUCT),
      head_(std::move(head)),
      codec_(head_.codec(code_type)) {
  code_size = codec_.code_size();
  is_trained = true;
}

IndexFidelityFlat::IndexFidelityFlat(CircuitHead head, CodeType code_type)
    : IndexFidelityFlat(FidelityHead(std::move(head)), code_type) {}

IndexFidelityFlat::IndexFidelityFlat(const HeadSpec& spec, CodeType code_type)
    : IndexFidelityFlat(FidelityHead::make(spec), code_type) {
  is_trained = false;
}

IndexFidelityFlat::IndexFidelityFlat(int d, int q, CodeType code_type, uint64_t seed)
    : IndexFidelityFlat(HeadSpec{d, q, 0, seed, Readout::kRaw}, code_type) {}

void IndexFidelityFlat::set_head(FidelityHead head) {
  FAISS_THROW_IF_NOT_FMT(ntotal == 0,
                         "set_head on an index holding %lld codes: codes would no longer match "
                         "the head (reset() first, then re-add)",
                         static_cast<long long>(ntotal));
  FAISS_THROW_IF_NOT_FMT(head.dim() == d && head.qubits() == codec_.qubits(),
                         "set_head: head is d=%d q=%d but the index is d=%lld q=%d", head.dim(),
                         head.qubits(), static_cast<long long>(d), codec_.qubits());
  head_ = std::move(head);
  codec_ = head_.codec(codec_.type());
  is_trained = true;
}

void IndexFidelityFlat::train(idx_t n, const float* x) {
  FAISS_THROW_IF_NOT_FMT(ntotal == 0,
                         "train on an index holding %lld codes: retraining would leave them "
                         "encoded by the old head (reset() first, then re-add)",
                         static_cast<long long>(ntotal));
  FidelityHead trained = head_;
  last_training = train_head_unsupervised(trained, training, size_t(n), x);
  head_ = std::move(trained);
  codec_ = head_.codec(codec_.type());
  is_trained = true;
}

void IndexFidelityFlat::add(idx_t n, const float* x) {
  FAISS_THROW_IF_NOT_MSG(is_trained, "index head is not trained: call train() first");
  faiss::IndexFlatCodes::add(n, x);
}

void IndexFidelityFlat::sa_encode(idx_t n, const float* x, uint8_t* bytes) const {
  FAISS_THROW_IF_NOT_MSG(is_trained, "index head is not trained: call train() first");
  constexpr idx_t kBatch = 4096;  // bounds the temporary angles buffer
  std::vector<float> angles(size_t(std::min(n, kBatch)) * codec_.qubits());
  for (idx_t i = 0; i < n; i += kBatch) {
    const idx_t nb = std::min(kBatch, n - i);
    head_.forward(size_t(nb), x + size_t(i) * d, angles.data());
    codec_.encode(size_t(nb), angles.data(), bytes + size_t(i) * code_size);
  }
}

void IndexFidelityFlat::sa_decode(idx_t, const uint8_t*, float*) const {
  FAISS_THROW_MSG(
      "IndexFidelityFlat cannot reconstruct raw vectors: the circuit head is many-to-one; "
      "use reconstruct_angles() for the stored angles");
}

void IndexFidelityFlat::reconstruct_angles(idx_t key, float* angles) const {
  FAISS_THROW_IF_NOT_FMT(key >= 0 && key < ntotal, "reconstruct_angles: key %lld not in [0, %lld)",
                         static_cast<long long>(key), static_cast<long long>(ntotal));
  codec_.decode(1, codes.data() + size_t(key) * code_size, angles);
}

void IndexFidelityFlat::compute_angles(idx_t n, const float* x, float* angles) const {
  head_.forward(size_t(n), x, angles);
}

void IndexFidelityFlat::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                               const faiss::SearchParameters* params) const {
  std::vector<float> angles(size_t(n) * codec_.qubits());
  head_.forward(size_t(n), x, angles.data());
  search_angles(n, angles.data(), k, distances, labels, params);
}

void IndexFidelityFlat::search_angles(idx_t n, const float* angles, idx_t k, float* distances,
                                      idx_t* labels, const faiss::SearchParameters* params) const {
  FAISS_THROW_IF_NOT_FMT(k > 0, "search: k=%lld must be positive", static_cast<long long>(k));
  const faiss::IDSelector* sel = params ? params->sel : nullptr;
  const int q = codec_.qubits();
  // Enough queries to keep every thread busy: one query per thread. Fewer: each query's scan
  // is split across the threads instead.
  if (n >= omp_get_max_threads()) {
#pragma omp parallel for schedule(dynamic)
    for (idx_t i = 0; i < n; ++i)
      search_one(angles + size_t(i) * q, k, distances + i * k, labels + i * k, sel, false);
  } else {
    for (idx_t i = 0; i < n; ++i)
      search_one(angles + size_t(i) * q, k, distances + i * k, labels + i * k, sel, true);
  }
}

void IndexFidelityFlat::search_one(const float* angles, idx_t k, float* distances, idx_t* labels,
                                   const faiss::IDSelector* sel, bool parallel_scan) const {
  faiss::heap_heapify<TopKHeap>(k, distances, labels);
  const int threads = parallel_scan ? std::min<int>(omp_get_max_threads(),
                                                    int((ntotal + kScanBlock - 1) / kScanBlock))
                                    : 1;
  // Per-thread queries (each holds its own table); a thread scans whole codes [begin, end).
  split_top_k(threads, size_t(ntotal), k, distances, labels,
              [&](size_t begin, size_t end, float* scores, idx_t* ids) {
                FidelityQuery query(head_, codec_);
                query.set_angles(angles);
                scan_into_heap(query, codes.data(), code_size, idx_t(begin), idx_t(end), sel, k,
                               scores, ids);
              });
  faiss::heap_reorder<TopKHeap>(k, distances, labels);
}

void IndexFidelityFlat::range_search(idx_t n, const float* x, float radius,
                                     faiss::RangeSearchResult* result,
                                     const faiss::SearchParameters* params) const {
  const faiss::IDSelector* sel = params ? params->sel : nullptr;
  const int q = codec_.qubits();
  std::vector<float> angles(size_t(n) * q);
  head_.forward(size_t(n), x, angles.data());
#pragma omp parallel
  {
    faiss::RangeSearchPartialResult partial(result);
    FidelityQuery query(head_, codec_);
    std::vector<float> block(kScanBlock);
#pragma omp for schedule(dynamic)
    for (idx_t i = 0; i < n; ++i) {
      query.set_angles(angles.data() + size_t(i) * q);
      faiss::RangeQueryResult& hits = partial.new_result(i);
      for (idx_t b = 0; b < ntotal; b += kScanBlock) {
        const size_t nb = std::min<size_t>(kScanBlock, size_t(ntotal - b));
        query.scan(codes.data() + size_t(b) * code_size, nb, block.data());
        for (size_t j = 0; j < nb; ++j) {
          const idx_t id = b + idx_t(j);
          if (block[j] > radius && (!sel || sel->is_member(id))) hits.add(block[j], id);
        }
      }
    }
    partial.finalize();
  }
}

faiss::FlatCodesDistanceComputer* IndexFidelityFlat::get_FlatCodesDistanceComputer() const {
  return new FidelityDistanceComputer(*this);
}

void IndexFidelityFlat::check_compatible_for_merge(const faiss::Index& other) const {
  const auto* o = dynamic_cast<const IndexFidelityFlat*>(&other);
  FAISS_THROW_IF_NOT_MSG(o, "merge_from: the other index is not an IndexFidelityFlat");
  FAISS_THROW_IF_NOT_MSG(
      o->d == d && o->codec_.type() == codec_.type() && o->codec_.qubits() == codec_.qubits(),
      "merge_from: dimension, qubits or code type differ");
  FAISS_THROW_IF_NOT_MSG(o->head_ == head_,
                         "merge_from: the indexes use different heads, so their codes are not "
                         "comparable");
}

}  // namespace bloch
