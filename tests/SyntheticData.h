#pragma once

// Clustered synthetic embeddings for tests: `clusters` random centres in R^d (N(0,1) per
// coordinate, scaled by `spread`), each point a centre plus N(0, noise²) per coordinate.
// Deterministic under the seed.

#include <cstdint>
#include <random>
#include <vector>

namespace bloch::testing {

struct ClusteredSet {
  std::vector<float> x;      // n × d
  std::vector<int> cluster;  // n: the centre each point was drawn around
};

inline ClusteredSet make_clustered(size_t n, int d, int clusters, float spread, float noise,
                                   uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centres(size_t(clusters) * d);
  for (auto& c : centres) c = spread * normal(rng);
  ClusteredSet set;
  set.x.resize(n * d);
  set.cluster.resize(n);
  std::uniform_int_distribution<int> pick(0, clusters - 1);
  for (size_t i = 0; i < n; ++i) {
    const int c = pick(rng);
    set.cluster[i] = c;
    for (int j = 0; j < d; ++j) set.x[i * d + j] = centres[size_t(c) * d + j] + noise * normal(rng);
  }
  return set;
}

}  // namespace bloch::testing
