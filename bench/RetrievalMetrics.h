#pragma once

// Binary-relevance retrieval metrics, as BEIR computes them:
//   nDCG@k  = DCG@k / IDCG@k, DCG@k = Σ_{r ≤ k, hit at rank r} 1/log2(r + 1),
//             IDCG@k over min(#relevant, k) hits at the top;
//   Recall@k = |relevant ∩ top-k| / |relevant|.

#include <algorithm>
#include <cmath>
#include <cstdint>
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

}  // namespace bloch::bench
