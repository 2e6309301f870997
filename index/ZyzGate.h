#pragma once

// One ZYZ single-qubit gate of the circuit head (DESIGN §1.2):
//
//   U(α,β,γ,δ) = e^{iα} Rz(β) Ry(γ) Rz(δ) =
//     [ e^{i(α−β/2−δ/2)} cos(γ/2)   −e^{i(α−β/2+δ/2)} sin(γ/2) ]
//     [ e^{i(α+β/2−δ/2)} sin(γ/2)    e^{i(α+β/2+δ/2)} cos(γ/2) ]
//
// Each angle is a squashed raw parameter: angle = 2π·(tanh(p) + 1) ∈ (0, 4π).

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <numbers>

namespace bloch {

using Complex = std::complex<double>;

/// Raw parameters per gate (α, β, γ, δ) and gates per qubit pair (U_a, U_b, U_c).
inline constexpr int kParamsPerGate = 4;
inline constexpr int kGatesPerPair = 3;
inline constexpr int kParamsPerPair = kParamsPerGate * kGatesPerPair;

/// angle = 2π·(tanh(p) + 1)
inline double squash_angle(double raw) {
  return 2.0 * std::numbers::pi * (std::tanh(raw) + 1.0);
}

/// d angle / d raw = 2π·(1 − tanh²(p))
inline double squash_angle_derivative(double raw) {
  const double t = std::tanh(raw);
  return 2.0 * std::numbers::pi * (1.0 - t * t);
}

/// A 2×2 complex matrix in row-major order: m[0]=U00, m[1]=U01, m[2]=U10, m[3]=U11.
struct Gate2x2 {
  std::array<Complex, 4> m;

  /// The ZYZ gate for already-squashed angles.
  static Gate2x2 from_angles(double alpha, double beta, double gamma, double delta) {
    const double c = std::cos(gamma / 2), s = std::sin(gamma / 2);
    auto phase = [](double a) { return std::polar(1.0, a); };
    return {{phase(alpha - beta / 2 - delta / 2) * c, -phase(alpha - beta / 2 + delta / 2) * s,
             phase(alpha + beta / 2 - delta / 2) * s, phase(alpha + beta / 2 + delta / 2) * c}};
  }

  /// The ZYZ gate for four raw (unsquashed) parameters.
  static Gate2x2 from_raw(const float* raw) {
    return from_angles(squash_angle(raw[0]), squash_angle(raw[1]), squash_angle(raw[2]),
                       squash_angle(raw[3]));
  }

  Complex out0(Complex v0, Complex v1) const { return m[0] * v0 + m[1] * v1; }
  Complex out1(Complex v0, Complex v1) const { return m[2] * v0 + m[3] * v1; }
};

/// The three gates that merge one (kept a, dropped b) qubit pair (DESIGN §1.3).
struct PairGates {
  Gate2x2 a, b, c;

  static PairGates from_raw(const float* raw12) {
    return {Gate2x2::from_raw(raw12), Gate2x2::from_raw(raw12 + kParamsPerGate),
            Gate2x2::from_raw(raw12 + 2 * kParamsPerGate)};
  }
};

/// p1 of the merged kept qubit from the two inputs' amplitudes (cos χ, sin χ) (DESIGN §1.3
/// closed form):
///
///   a' = U_a a,  P_b = |(U_b b)_1|²,  p1 = (1 − P_b)·|a'_1|² + P_b·|(U_c a')_1|²  ∈ [0, 1].
inline double merge_pair_p1(const PairGates& g, double ca, double sa, double cb, double sb) {
  const Complex a0 = g.a.out0(ca, sa), a1 = g.a.out1(ca, sa);
  const double pb = std::norm(g.b.out1(cb, sb));
  return std::clamp((1.0 - pb) * std::norm(a1) + pb * std::norm(g.c.out1(a0, a1)), 0.0, 1.0);
}

/// Merges a pair of real single-qubit states a = cos χa|0> + sin χa|1> (kept) and
/// b = cos χb|0> + sin χb|1> (dropped) into the kept qubit's new real state, returned as its
/// angle χ = atan2(√p1, √(1 − p1)) ∈ [0, π/2] (see merge_pair_p1).
inline double merge_pair(const PairGates& g, double chi_a, double chi_b) {
  const double p1 =
      merge_pair_p1(g, std::cos(chi_a), std::sin(chi_a), std::cos(chi_b), std::sin(chi_b));
  return std::atan2(std::sqrt(p1), std::sqrt(1.0 - p1));
}

}  // namespace bloch
