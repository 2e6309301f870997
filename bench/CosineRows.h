#pragma once

// Unit-length copies of embedding rows, so that inner product = cosine (raw-cosine ground truth
// and the cosine baselines of the benchmarks).

#include <cmath>
#include <cstddef>
#include <vector>

namespace bloch::bench {

/// n × d rows scaled to unit L2 norm (a zero row stays zero).
inline std::vector<float> normalised_rows(const float* x, size_t n, size_t d) {
  std::vector<float> y(x, x + n * d);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < d; ++j) s += double(y[i * d + j]) * y[i * d + j];
    const float inv = s > 0 ? float(1 / std::sqrt(s)) : 0.0f;
    for (size_t j = 0; j < d; ++j) y[i * d + j] *= inv;
  }
  return y;
}

}  // namespace bloch::bench
