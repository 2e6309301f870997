#include "index/NormalizedReadout.h"

#include <cmath>

namespace bloch {

namespace {
// |u| below this is treated as zero: the direction of a row at the centre is undefined.
constexpr double kMinDeviation = 1e-12;

template <class T>
double deviation_norm(int q, const T* raw) {
  double s = 0;
  for (int i = 0; i < q; ++i) s += (raw[i] - kReadoutCentre) * (raw[i] - kReadoutCentre);
  return std::sqrt(s);
}

// Computed in double whatever T is; out may alias raw (the norm is taken first).
template <class T>
void normalize_row(int q, const T* raw, T* out) {
  const double norm = deviation_norm(q, raw);
  const double gain = norm > kMinDeviation ? kReadoutRadius / norm : 0.0;
  for (int i = 0; i < q; ++i) out[i] = T(kReadoutCentre + gain * (raw[i] - kReadoutCentre));
}
}  // namespace

void normalize_readout(int q, const double* raw, double* out) {
  normalize_row(q, raw, out);
}

void normalize_readout(size_t n, int q, float* angles) {
  for (size_t v = 0; v < n; ++v) normalize_row(q, angles + v * size_t(q), angles + v * size_t(q));
}

void normalize_readout_backward(int q, const double* raw, const double* grad_out,
                                double* grad_raw) {
  const double norm = deviation_norm(q, raw);
  if (norm <= kMinDeviation) {
    for (int i = 0; i < q; ++i) grad_raw[i] = 0.0;
    return;
  }
  double dot = 0;  // g·û
  for (int i = 0; i < q; ++i) dot += grad_out[i] * (raw[i] - kReadoutCentre) / norm;
  for (int i = 0; i < q; ++i)
    grad_raw[i] = kReadoutRadius * (grad_out[i] - dot * (raw[i] - kReadoutCentre) / norm) / norm;
}

}  // namespace bloch
