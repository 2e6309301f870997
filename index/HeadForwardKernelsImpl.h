#pragma once

// The lane-batched forward pass (HeadForwardKernels.h), included once by each kernel file so
// that each compiles it for its own instruction set. Every lane loop is a `#pragma omp simd`
// loop over kHeadLanes doubles; element j of a lane array holds feature (or qubit) j of the
// kHeadLanes inputs at v[j·kHeadLanes … j·kHeadLanes + kHeadLanes − 1].

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "index/HeadForwardKernels.h"

namespace bloch::detail {
namespace {

constexpr int W = kHeadLanes;

/// e^y for |y| ≤ 40: y = k·ln2 + r with |r| ≤ ln2/2, e^y = 2^k·Σ_{n≤13} rⁿ/n! (first omitted term
/// below 5e−18 relative). k·ln2 is subtracted in two parts (ln2 = hi + lo, hi with 21 trailing
/// zero bits, so k·hi is exact for |k| < 2^21). The rounding of y/ln2 to k adds 1.5·2^52 and
/// reads k from the low bits, which needs no float-to-integer conversion instruction.
inline double exp_bounded(double y) {
  constexpr double kInvLn2 = 1.4426950408889634074;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kShift = 6755399441055744.0;  // 1.5·2^52
  const double shifted = y * kInvLn2 + kShift;
  const double k = shifted - kShift;
  const double r = (y - k * kLn2Hi) - k * kLn2Lo;
  static constexpr double kInvFactorial[] = {1.0 / 6227020800.0,
                                             1.0 / 479001600.0,
                                             1.0 / 39916800.0,
                                             1.0 / 3628800.0,
                                             1.0 / 362880.0,
                                             1.0 / 40320.0,
                                             1.0 / 5040.0,
                                             1.0 / 720.0,
                                             1.0 / 120.0,
                                             1.0 / 24.0,
                                             1.0 / 6.0,
                                             0.5,
                                             1.0,
                                             1.0};
  double p = 0;
  for (double c : kInvFactorial) p = p * r + c;
  // 2^k from its exponent bits: the low word of `shifted` is k (two's complement).
  const int64_t ki = std::bit_cast<int64_t>(shifted) - std::bit_cast<int64_t>(kShift);
  return p * std::bit_cast<double>(uint64_t(ki + 1023) << 52);
}

/// (cos χ, sin χ) of the encoding χ = −α, α = π/4 + β, β = (π/4)·tanh x ∈ (−π/4, π/4):
///   cos χ = (cos β − sin β)/√2,   sin χ = −(cos β + sin β)/√2,
/// sin β to β¹⁷ and cos β to β¹⁶ (first omitted terms below 2e−17 on |β| ≤ π/4). x is clamped to
/// ±20, where tanh already rounds to ±1.
inline void input_amplitudes(double x, double& c, double& s) {
  const double xc = std::min(std::max(x, -20.0), 20.0);
  const double beta = std::numbers::pi / 4 * (1.0 - 2.0 / (exp_bounded(2.0 * xc) + 1.0));
  const double b2 = beta * beta;
  static constexpr double kSin[] = {1.0 / 355687428096000.0,
                                    -1.0 / 1307674368000.0,
                                    1.0 / 6227020800.0,
                                    -1.0 / 39916800.0,
                                    1.0 / 362880.0,
                                    -1.0 / 5040.0,
                                    1.0 / 120.0,
                                    -1.0 / 6.0,
                                    1.0};
  static constexpr double kCos[] = {1.0 / 20922789888000.0,
                                    -1.0 / 87178291200.0,
                                    1.0 / 479001600.0,
                                    -1.0 / 3628800.0,
                                    1.0 / 40320.0,
                                    -1.0 / 720.0,
                                    1.0 / 24.0,
                                    -0.5,
                                    1.0};
  double sin_b = 0, cos_b = 0;
  for (int k = 0; k < 9; ++k) {
    sin_b = sin_b * b2 + kSin[k];
    cos_b = cos_b * b2 + kCos[k];
  }
  sin_b *= beta;
  constexpr double kInvSqrt2 = 0.70710678118654752440;
  c = (cos_b - sin_b) * kInvSqrt2;
  s = -(cos_b + sin_b) * kInvSqrt2;
}

/// atan2(s, c) for s, c ≥ 0, i.e. the angle χ ∈ [0, π/2] of amplitudes (cos χ, sin χ).
/// With t = min/max ∈ [0, 1]: above tan(π/8), atan t = π/4 + atan u with u = (t − 1)/(t + 1);
/// then atan u = 2·atan v with v = u/(1 + √(1 + u²)), |v| ≤ tan(π/16) ≈ 0.199, where the
/// Taylor series to v²¹ is exact to double rounding (first omitted term below 4e−18).
inline double angle_of_amplitudes(double s, double c) {
  constexpr double kTanPi8 = 0.41421356237309504880;
  constexpr double kPi4 = std::numbers::pi / 4;
  const bool swap = s > c;
  const double lo = swap ? c : s, hi = swap ? s : c;
  const double t = hi > 0 ? lo / hi : 0.0;
  const bool shift = t > kTanPi8;
  const double u = shift ? (t - 1.0) / (t + 1.0) : t;
  const double v = u / (1.0 + std::sqrt(1.0 + u * u));
  const double v2 = v * v;
  static constexpr double kAtan[] = {1.0 / 21, -1.0 / 19, 1.0 / 17, -1.0 / 15, 1.0 / 13, -1.0 / 11,
                                     1.0 / 9,  -1.0 / 7,  1.0 / 5,  -1.0 / 3,  1.0};
  double p = 0;
  for (double k : kAtan) p = p * v2 + k;
  const double r = (shift ? kPi4 : 0.0) + 2.0 * (v * p);
  return swap ? 2.0 * kPi4 - r : r;
}

/// v[j] = x_j of each lane for j < d, zero above (lanes ≥ `lanes` are zero inputs).
void load_lanes(int lanes, const float* x, int d, int width, double* v) {
  std::fill(v, v + size_t(width) * W, 0.0);
  for (int w = 0; w < lanes; ++w)
    for (int j = 0; j < d; ++j) v[size_t(j) * W + w] = double(x[size_t(w) * d + j]);
}

/// FeatureMixer::forward on the lanes, in place on v (width P).
void mix_lanes(const MixerTables& m, double* v) {
  for (int j = 0; j < m.input_dim; ++j) {
    double* vj = v + size_t(j) * W;
    const double mean = m.mean[j], inv_std = m.inv_std[j];
#pragma omp simd
    for (int w = 0; w < W; ++w) vj[w] = (vj[w] - mean) * inv_std;
  }
  const int pairs = m.width / 2;
  for (int s = 0; s < m.stages; ++s) {
    const double* cs = m.cos + size_t(s) * pairs;
    const double* sn = m.sin + size_t(s) * pairs;
    const int h = 1 << (s % m.log2_width);
    int p = 0;
    for (int base = 0; base < m.width; base += 2 * h)
      for (int o = 0; o < h; ++o, ++p) {
        double* a = v + size_t(base + o) * W;
        double* b = a + size_t(h) * W;
        const double c = cs[p], si = sn[p];
#pragma omp simd
        for (int w = 0; w < W; ++w) {
          const double av = a[w], bv = b[w];
          a[w] = c * av - si * bv;
          b[w] = si * av + c * bv;
        }
      }
  }
  for (int j = 0; j < m.width; ++j) {
    double* vj = v + size_t(j) * W;
    const double scale = m.scale[j];
#pragma omp simd
    for (int w = 0; w < W; ++w) vj[w] *= scale;
  }
}

/// The DESIGN §1.3 closed form of one pair from the inputs' amplitudes (x0, x1) (kept) and
/// (y0, y1) (dropped): a' = U_a a (both rows), P_b = |(U_b b)_1|², p1 = (1 − P_b)·|a'_1|² +
/// P_b·|(U_c a')_1|², out (√(1 − p1), √p1). k(m) is coefficient m of the pair
/// (PairCoefficient order).
template <typename K>
inline void merge_pair(K k, double x0, double x1, double y0, double y1, double& c, double& s) {
  const double a0r = k(kA00r) * x0 + k(kA01r) * x1, a0i = k(kA00i) * x0 + k(kA01i) * x1;
  const double a1r = k(kA10r) * x0 + k(kA11r) * x1, a1i = k(kA10i) * x0 + k(kA11i) * x1;
  const double br = k(kB10r) * y0 + k(kB11r) * y1, bi = k(kB10i) * y0 + k(kB11i) * y1;
  const double pb = br * br + bi * bi;
  const double tr = (k(kC10r) * a0r - k(kC10i) * a0i) + (k(kC11r) * a1r - k(kC11i) * a1i);
  const double ti = (k(kC10r) * a0i + k(kC10i) * a0r) + (k(kC11r) * a1i + k(kC11i) * a1r);
  const double p1 =
      std::min(std::max((1.0 - pb) * (a1r * a1r + a1i * a1i) + pb * (tr * tr + ti * ti), 0.0), 1.0);
  c = std::sqrt(1.0 - p1);
  s = std::sqrt(p1);
}

/// The circuit on the lanes: inputs in c (padded_dim lane arrays, zero-padded), amplitudes
/// (cos χ, sin χ) carried in c and s from layer to layer, angles out.
void circuit_lanes(const CircuitTables& t, int lanes, double* c, double* s, float* angles) {
  for (int j = 0; j < t.padded_dim; ++j) {
    double* cj = c + size_t(j) * W;
    double* sj = s + size_t(j) * W;
#pragma omp simd
    for (int w = 0; w < W; ++w) input_amplitudes(cj[w], cj[w], sj[w]);
  }
  size_t g = 0;  // first pair of the layer
  for (int l = 0; l < t.layers; ++l) {
    const int half = t.padded_dim >> (l + 1);
    // Pair i writes slot i, which no later pair of the layer reads (they read i' > i and
    // i' + half), so each layer runs in place.
    for (int i = 0; i < half; ++i) {
      const double* k = t.coefficients + g + i;
      const size_t stride = t.pairs;
      double* ca = c + size_t(i) * W;
      double* sa = s + size_t(i) * W;
      const double* cb = c + size_t(i + half) * W;
      const double* sb = s + size_t(i + half) * W;
#pragma omp simd
      for (int w = 0; w < W; ++w)
        merge_pair([&](int m) { return k[m * stride]; }, ca[w], sa[w], cb[w], sb[w], ca[w], sa[w]);
    }
    g += size_t(half);
  }
  const size_t outputs = size_t(t.qubits) * W;
#pragma omp simd
  for (size_t e = 0; e < outputs; ++e) c[e] = angle_of_amplitudes(s[e], c[e]);
  for (int w = 0; w < lanes; ++w)
    for (int i = 0; i < t.qubits; ++i)
      angles[size_t(w) * t.qubits + i] = float(c[size_t(i) * W + w]);
}

/// One input alone (the search path), vectorised across features instead of inputs: the same
/// operations per element as the lanes, so the same bits.
void head_forward_single(const HeadTables& t, const float* x, float* angles, double* scratch) {
  const CircuitTables& ct = t.circuit;
  double* c = scratch;
  double* s = scratch + ct.padded_dim;
  std::fill(c, c + ct.padded_dim, 0.0);
  const MixerTables& m = t.mixer;
  if (m.width > 0) {
#pragma omp simd
    for (int j = 0; j < m.input_dim; ++j) c[j] = (double(x[j]) - m.mean[j]) * m.inv_std[j];
    const int pairs = m.width / 2;
    for (int st = 0; st < m.stages; ++st) {
      const double* cs = m.cos + size_t(st) * pairs;
      const double* sn = m.sin + size_t(st) * pairs;
      const int h = 1 << (st % m.log2_width);
      for (int base = 0, p = 0; base < m.width; base += 2 * h, p += h) {
        double* a = c + base;
        double* b = a + h;
#pragma omp simd
        for (int o = 0; o < h; ++o) {
          const double av = a[o], bv = b[o];
          a[o] = cs[p + o] * av - sn[p + o] * bv;
          b[o] = sn[p + o] * av + cs[p + o] * bv;
        }
      }
    }
#pragma omp simd
    for (int j = 0; j < m.width; ++j) c[j] *= m.scale[j];
  } else {
    for (int j = 0; j < ct.input_dim; ++j) c[j] = double(x[j]);
  }
#pragma omp simd
  for (int j = 0; j < ct.padded_dim; ++j) input_amplitudes(c[j], c[j], s[j]);
  size_t g = 0;
  for (int l = 0; l < ct.layers; ++l) {
    const int half = ct.padded_dim >> (l + 1);
    const double* k = ct.coefficients + g;
    const size_t stride = ct.pairs;
    // Pair i reads slots i and i + half and writes slot i; no pair writes a slot ≥ half, so
    // the pairs of a layer are independent.
#pragma omp simd
    for (int i = 0; i < half; ++i)
      merge_pair([&](int mm) { return k[mm * stride + i]; }, c[i], s[i], c[i + half], s[i + half],
                 c[i], s[i]);
    g += size_t(half);
  }
#pragma omp simd
  for (int i = 0; i < ct.qubits; ++i) angles[i] = float(angle_of_amplitudes(s[i], c[i]));
}

/// The whole pass. Internal linkage, like everything here: each kernel file must keep its own
/// copy, compiled for its own instruction set (one shared inline copy would let the linker pick
/// the AVX-512 build for every caller).
void head_forward_lanes_impl(const HeadTables& t, int lanes, const float* x, float* angles,
                             double* scratch) {
  if (lanes == 1) {
    head_forward_single(t, x, angles, scratch);
    return;
  }
  double* c = scratch;
  double* s = scratch + size_t(t.circuit.padded_dim) * W;
  if (t.mixer.width > 0) {
    load_lanes(lanes, x, t.mixer.input_dim, t.circuit.padded_dim, c);
    mix_lanes(t.mixer, c);
  } else {
    load_lanes(lanes, x, t.circuit.input_dim, t.circuit.padded_dim, c);
  }
  circuit_lanes(t.circuit, lanes, c, s, angles);
}

}  // namespace
}  // namespace bloch::detail
