#include "index/BlochVectors.h"

#include <cmath>

namespace bloch {

void bloch_vectors(size_t n, int q, const float* angles, float* out) {
  const size_t total = n * size_t(q);
#pragma omp parallel for if (total > 65536)
  for (size_t j = 0; j < total; ++j) {
    // In double, rounded once to float: the same vector for the same angle on every path.
    const double a = 2.0 * double(angles[j]);
    out[2 * j] = float(std::sin(a));
    out[2 * j + 1] = float(std::cos(a));
  }
}

}  // namespace bloch
