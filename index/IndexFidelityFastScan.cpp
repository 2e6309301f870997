#include "index/IndexFidelityFastScan.h"

#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/utils/Heap.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "index/FidelityKernels.h"
#include "index/SplitTopK.h"

namespace bloch {

namespace {

// Blocks scored per kernel call: 1,024 codes, whose uint16 sums stay in L1 while the heap
// consumes them.
constexpr size_t kBlocksPerChunk = 32;

void check_refine_type(CodeType type) {
  FAISS_THROW_IF_NOT_FMT(type == CodeType::k8bit || type == CodeType::kFloat,
                         "IndexFidelityFastScan: re-ranking codes must be 8-bit or float, not %s",
                         code_type_name(type));
}

}  // namespace

IndexFidelityFastScan::IndexFidelityFastScan(FidelityHead head, CodeType refine_type)
    : faiss::Index(head.dim(), faiss::METRIC_INNER_PRODUCT),
      refine_(std::move(head), refine_type),
      scan_codec_(refine_.head().codec(CodeType::k4bit)) {
  check_refine_type(refine_type);
  is_trained = true;
}

IndexFidelityFastScan::IndexFidelityFastScan(const HeadSpec& spec, CodeType refine_type)
    : faiss::Index(spec.d, faiss::METRIC_INNER_PRODUCT),
      refine_(spec, refine_type),
      scan_codec_(refine_.head().codec(CodeType::k4bit)) {
  check_refine_type(refine_type);
  is_trained = false;
}

void IndexFidelityFastScan::set_head(FidelityHead head) {
  refine_.set_head(std::move(head));
  refresh_scan_codec();
  is_trained = true;
}

void IndexFidelityFastScan::train(idx_t n, const float* x) {
  refine_.train(n, x);
  refresh_scan_codec();
  is_trained = true;
}

void IndexFidelityFastScan::refresh_scan_codec() {
  scan_codec_ = refine_.head().codec(CodeType::k4bit);
}

void IndexFidelityFastScan::add(idx_t n, const float* x) {
  FAISS_THROW_IF_NOT_MSG(is_trained, "index head is not trained: call train() first");
  const size_t first = size_t(ntotal);
  refine_.add(n, x);
  pack_from_refine_codes(first, size_t(n));
  ntotal = refine_.ntotal;
}

void IndexFidelityFastScan::add_codes(idx_t n, const uint8_t* codes) {
  FAISS_THROW_IF_NOT_MSG(is_trained, "index head is not trained: call train() first");
  FAISS_THROW_IF_NOT_MSG(n >= 0 && (n == 0 || codes != nullptr), "add_codes: bad arguments");
  const size_t first = size_t(ntotal);
  refine_.codes.insert(refine_.codes.end(), codes, codes + size_t(n) * refine_.code_size);
  refine_.ntotal += n;
  pack_from_refine_codes(first, size_t(n));
  ntotal = refine_.ntotal;
}

void IndexFidelityFastScan::pack_from_refine_codes(size_t first, size_t n) {
  constexpr size_t kBatch = 4096;  // bounds the temporary buffers
  const int q = scan_codec_.qubits();
  std::vector<float> angles(std::min(n, kBatch) * size_t(q));
  std::vector<uint8_t> codes4(std::min(n, kBatch) * scan_codec_.code_size());
  for (size_t i = 0; i < n; i += kBatch) {
    const size_t nb = std::min(kBatch, n - i);
    refine_.codec().decode(nb, refine_.codes.data() + (first + i) * refine_.code_size,
                           angles.data());
    scan_codec_.encode(nb, angles.data(), codes4.data());
    fast_scan_pack(codes4.data(), scan_codec_.code_size(), first + i, nb, &blocks_);
  }
}

void IndexFidelityFastScan::reset() {
  refine_.reset();
  blocks_.clear();
  ntotal = 0;
}

void IndexFidelityFastScan::sa_encode(idx_t n, const float* x, uint8_t* bytes) const {
  refine_.sa_encode(n, x, bytes);
}

void IndexFidelityFastScan::compute_angles(idx_t n, const float* x, float* angles) const {
  refine_.compute_angles(n, x, angles);
}

void IndexFidelityFastScan::reconstruct_angles(idx_t key, float* angles) const {
  refine_.reconstruct_angles(key, angles);
}

void IndexFidelityFastScan::search(idx_t n, const float* x, idx_t k, float* distances,
                                   idx_t* labels, const faiss::SearchParameters* params) const {
  std::vector<float> angles(size_t(n) * scan_codec_.qubits());
  refine_.compute_angles(n, x, angles.data());
  search_angles(n, angles.data(), k, distances, labels, params);
}

void IndexFidelityFastScan::search_angles(idx_t n, const float* angles, idx_t k, float* distances,
                                          idx_t* labels,
                                          const faiss::SearchParameters* params) const {
  FAISS_THROW_IF_NOT_FMT(k > 0, "search: k=%lld must be positive", static_cast<long long>(k));
  FAISS_THROW_IF_NOT_FMT(k_factor >= 1, "search: k_factor=%d must be ≥ 1", k_factor);
  double factor = k_factor;
  if (const auto* fp = dynamic_cast<const SearchParametersFastScan*>(params)) {
    FAISS_THROW_IF_NOT_FMT(fp->k_factor == 0 || fp->k_factor >= 1,
                           "search: k_factor=%g must be ≥ 1 (0: the index's)",
                           double(fp->k_factor));
    if (fp->k_factor != 0) factor = fp->k_factor;
  }
  const faiss::IDSelector* sel = params ? params->sel : nullptr;
  const idx_t kc = std::max<idx_t>(k, idx_t(std::ceil(double(k) * factor)));
  const int q = scan_codec_.qubits();
  // As IndexFidelityFlat: one query per thread when there are enough, else split each scan.
  if (n >= omp_get_max_threads()) {
#pragma omp parallel for schedule(dynamic)
    for (idx_t i = 0; i < n; ++i)
      search_one(angles + size_t(i) * q, k, kc, sel, false, distances + i * k, labels + i * k);
  } else {
    for (idx_t i = 0; i < n; ++i)
      search_one(angles + size_t(i) * q, k, kc, sel, true, distances + i * k, labels + i * k);
  }
}

void IndexFidelityFastScan::collect_candidates(const FastScanTable& table, size_t begin, size_t end,
                                               const faiss::IDSelector* sel, idx_t kc,
                                               float* scores, idx_t* ids) const {
  const size_t block_bytes = fast_scan_block_bytes(scan_codec_.code_size());
  uint16_t sums[kBlocksPerChunk * kFastScanBlock];
  for (size_t b = begin; b < end; b += kBlocksPerChunk) {
    const size_t nb = std::min(kBlocksPerChunk, end - b);
    fast_scan_accumulate(table, blocks_.data() + b * block_bytes, nb, sums);
    const size_t first = b * kFastScanBlock;
    const size_t count = std::min(nb * kFastScanBlock, size_t(ntotal) - first);
    for (size_t j0 = 0; j0 < count; j0 += kFastScanBlock) {
      // Once the heap is full most blocks hold no candidate: one (vectorised) maximum over the
      // block's 32 sums skips them without a compare-and-branch per code.
      const size_t j1 = std::min(count, j0 + kFastScanBlock);
      uint16_t block_max = 0;
      for (size_t j = j0; j < j0 + kFastScanBlock; ++j) block_max = std::max(block_max, sums[j]);
      if (float(block_max) <= scores[0]) continue;
      for (size_t j = j0; j < j1; ++j) {
        const float s = float(sums[j]);  // exact: sums are ≤ 65535
        const idx_t id = idx_t(first + j);
        if (s > scores[0] && (!sel || sel->is_member(id)))
          faiss::heap_replace_top<TopKHeap>(kc, scores, ids, s, id);
      }
    }
  }
}

void IndexFidelityFastScan::search_one(const float* angles, idx_t k, idx_t kc,
                                       const faiss::IDSelector* sel, bool parallel_scan,
                                       float* distances, idx_t* labels) const {
  FastScanTable table;
  build_fast_scan_table(scan_codec_, angles, table_floor, &table);
  const size_t nblocks = (size_t(ntotal) + kFastScanBlock - 1) / kFastScanBlock;
  std::vector<float> cand_scores(static_cast<size_t>(kc));
  std::vector<idx_t> cand_ids(static_cast<size_t>(kc));
  faiss::heap_heapify<TopKHeap>(kc, cand_scores.data(), cand_ids.data());
  const int threads =
      parallel_scan ? std::min<int>(omp_get_max_threads(), int(nblocks / kBlocksPerChunk)) : 1;
  split_top_k(threads, nblocks, kc, cand_scores.data(), cand_ids.data(),
              [&](size_t begin, size_t end, float* scores, idx_t* ids) {
                collect_candidates(table, begin, end, sel, kc, scores, ids);
              });

  // Re-rank: the candidates' exact codes decoded to angles, scored by the exact kernel (no
  // per-query 8-bit table: a few hundred candidates do not repay its 2^8·q entries).
  const int q = scan_codec_.qubits();
  std::vector<idx_t> found;
  found.reserve(size_t(kc));
  for (const idx_t id : cand_ids)
    if (id >= 0) found.push_back(id);
  std::vector<float> cand_angles(found.size() * size_t(q)), exact(found.size());
  for (size_t j = 0; j < found.size(); ++j)
    refine_.codec().decode(1, refine_.codes.data() + size_t(found[j]) * refine_.code_size,
                           cand_angles.data() + j * q);
  log_fidelity_scan(Codec(CodeType::kFloat, q), angles, nullptr,
                    reinterpret_cast<const uint8_t*>(cand_angles.data()), found.size(),
                    exact.data());
  faiss::heap_heapify<TopKHeap>(k, distances, labels);
  for (size_t j = 0; j < found.size(); ++j)
    if (exact[j] > distances[0])
      faiss::heap_replace_top<TopKHeap>(k, distances, labels, exact[j], found[j]);
  faiss::heap_reorder<TopKHeap>(k, distances, labels);
}

void IndexFidelityFastScan::range_search(idx_t n, const float* x, float radius,
                                         faiss::RangeSearchResult* result,
                                         const faiss::SearchParameters* params) const {
  refine_.range_search(n, x, radius, result, params);
}

}  // namespace bloch
