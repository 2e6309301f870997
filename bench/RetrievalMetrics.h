#pragma once

// Binary-relevance retrieval metrics, as BEIR computes them:
//   nDCG@k  = DCG@k / IDCG@k, DCG@k = Σ_{r ≤ k, hit at rank r} 1/log2(r + 1),
//             IDCG@k over min(#relevant, k) hits at the top;
//   Recall@k = |relevant ∩ top-k| / |relevant|.
// and neighbour recall: how much of a reference top-k (exact search, raw cosine) a result keeps.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

namespace bloch::bench {

inline double ndcg_at_k(const int64_t* ranked, int k, const std::vector<int>& relevant) {
  double dcg = 0, idcg = 0;
  for (int r = 0; r < k; ++r) {
    if (std::find(relevant.begin(), relevant.end(), int(ranked[r])) != relevant.end())
      dcg += 1.0 / std::log2(r + 2.0);
  }
  for (int r = 0; r < std::min<int>(k, int(relevant.size())); ++r) idcg += 1.0 / std::log2(r + 2.0);
  return idcg > 0 ? dcg / idcg : 0.0;
}

inline double recall_at_k(const int64_t* ranked, int k, const std::vector<int>& relevant) {
  if (relevant.empty()) return 0.0;
  int hits = 0;
  for (int r = 0; r < k; ++r)
    hits += std::find(relevant.begin(), relevant.end(), int(ranked[r])) != relevant.end();
  return double(hits) / double(relevant.size());
}

/// Mean over nq queries of |truth top-k ∩ got top-k| / k. Query i's rows start at
/// truth + i·truth_stride and got + i·got_stride (strides ≥ k).
inline double neighbour_recall(const int64_t* truth, size_t truth_stride, const int64_t* got,
                               size_t got_stride, size_t nq, int k) {
  size_t hits = 0;
  for (size_t i = 0; i < nq; ++i) {
    const std::set<int64_t> t(truth + i * truth_stride, truth + i * truth_stride + k);
    for (int r = 0; r < k; ++r) hits += t.count(got[i * got_stride + r]);
  }
  return double(hits) / double(nq * size_t(k));
}

}  // namespace bloch::bench
