#include "index/HnswLiveSearch.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace bloch {

namespace {

using idx_t = faiss::Index::idx_t;

/// Searches `n` queries `width` (>= k) wide and keeps the first k results of each row.
void search_width(const faiss::IndexHNSW& index, idx_t n, const float* x, idx_t k, idx_t width,
                  faiss::IDSelector* live, float* distances, idx_t* labels) {
  faiss::SearchParametersHNSW params;
  params.efSearch = int(width);
  params.sel = live;
  std::vector<float> d(size_t(n * width));
  std::vector<idx_t> l(size_t(n * width));
  index.search(n, x, width, d.data(), l.data(), &params);
  for (idx_t i = 0; i < n; ++i) {
    std::copy_n(d.begin() + i * width, k, distances + i * k);
    std::copy_n(l.begin() + i * width, k, labels + i * k);
  }
}

}  // namespace

void hnsw_search_live(const faiss::IndexHNSW& index, idx_t n, const float* x, idx_t k, int ef,
                      faiss::IDSelector* live, size_t n_live, float* distances, idx_t* labels) {
  FAISS_THROW_IF_NOT_FMT(k >= 1 && ef >= 1, "hnsw_search_live: k = %lld and ef = %d must be >= 1",
                         (long long)k, ef);
  const idx_t ntotal = index.ntotal;
  const idx_t dead = live != nullptr ? ntotal - idx_t(n_live) : 0;
  FAISS_THROW_IF_NOT_FMT(dead >= 0, "hnsw_search_live: %zu live of %lld entries", n_live,
                         (long long)ntotal);
  const double widen = dead > 0 && n_live > 0 ? double(ntotal) / double(n_live) : 1.0;
  const idx_t width = std::max<idx_t>(
      k, std::min<idx_t>(ntotal, idx_t(std::ceil(double(std::max<idx_t>(ef, k)) * widen))));
  search_width(index, n, x, k, width, live, distances, labels);
  // Rows short of min(k, live) results are redone k + dead wide, which is sure to fill them.
  const idx_t want = std::min<idx_t>(k, live != nullptr ? idx_t(n_live) : ntotal);
  const idx_t sure = std::max<idx_t>(k, std::min<idx_t>(ntotal, k + dead));
  if (sure <= width) return;
  for (idx_t i = 0; i < n; ++i) {
    const idx_t* row = labels + i * k;
    if (std::find(row, row + k, idx_t(-1)) - row >= want) continue;
    search_width(index, 1, x + i * index.d, k, sure, live, distances + i * k, labels + i * k);
  }
}

}  // namespace bloch
