#pragma once

// The k largest scores of one query when its scan is split across threads: thread t scans the
// contiguous part [total·t/T, total·(t+1)/T) into a heap of its own, and the T heaps are then
// merged into the caller's heap. Used by the flat kinds when there are fewer queries than
// threads (with enough queries, each thread takes whole queries instead).

#include <faiss/Index.h>
#include <faiss/utils/Heap.h>
#include <omp.h>

#include <cstddef>
#include <vector>

namespace bloch {

/// Min-heap of the k largest log-fidelities (or scores), FAISS's heap conventions.
using TopKHeap = faiss::CMin<float, faiss::Index::idx_t>;

/// `scores`/`ids` (k entries) must be heapified by the caller; scan(begin, end, scores, ids)
/// pushes the scores of items [begin, end) into the heap it is given. threads ≤ 1 scans
/// everything on the calling thread.
template <class Scan>
void split_top_k(int threads, size_t total, faiss::Index::idx_t k, float* scores,
                 faiss::Index::idx_t* ids, const Scan& scan) {
  if (threads <= 1) {
    scan(size_t(0), total, scores, ids);
    return;
  }
  std::vector<float> part_scores(size_t(threads) * size_t(k));
  std::vector<faiss::Index::idx_t> part_ids(size_t(threads) * size_t(k));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    float* ps = part_scores.data() + size_t(t) * size_t(k);
    faiss::Index::idx_t* pi = part_ids.data() + size_t(t) * size_t(k);
    faiss::heap_heapify<TopKHeap>(k, ps, pi);
    scan(total * size_t(t) / size_t(threads), total * size_t(t + 1) / size_t(threads), ps, pi);
  }
  for (size_t j = 0; j < part_scores.size(); ++j)
    if (part_ids[j] >= 0 && part_scores[j] > scores[0])
      faiss::heap_replace_top<TopKHeap>(k, scores, ids, part_scores[j], part_ids[j]);
}

}  // namespace bloch
