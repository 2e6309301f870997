#pragma once

// Test-only oracle for the circuit head: an explicit complex state-vector simulation of the
// circuit of DESIGN §1, written from the text alone. It deliberately shares nothing with
// index/ZyzGate.h (no Gate2x2, no merge_pair, no closed form): gates are built from the §1.2
// matrix, each pair is simulated as a full 4-amplitude two-qubit state, CU is applied as an
// explicit 4×4 matrix and the dropped qubit is removed by an explicit partial trace.
//
// Raw-parameter layout (the one interface shared with CircuitHead, documented in
// CircuitHead.h): layer by layer, pair by pair (pair i = kept qubit i, dropped qubit i + n/2),
// 12 raw parameters per pair = U_a, U_b, U_c, each as (α, β, γ, δ).

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstddef>
#include <numbers>
#include <stdexcept>
#include <vector>

namespace bloch::oracle {

using cplx = std::complex<double>;
using Mat2 = std::array<std::array<cplx, 2>, 2>;
using Mat4 = std::array<std::array<cplx, 4>, 4>;
using Qubit = std::array<cplx, 2>;     // amplitudes of |0>, |1>
using TwoQubit = std::array<cplx, 4>;  // index (b << 1) | a, i.e. |b a> = 00, 01, 10, 11

/// The reference's encoding phase (§1.1); φ = π is the idealised value.
inline constexpr double kReferencePhase = std::numbers::pi - 5e-10;

/// §1.2: angle = 2π·(tanh(p) + 1).
inline double squash(double raw) {
  return 2.0 * std::numbers::pi * (std::tanh(raw) + 1.0);
}

/// §1.2: U(α,β,γ,δ) = e^{iα} Rz(β) Ry(γ) Rz(δ), written entry by entry from the matrix.
inline Mat2 zyz(double alpha, double beta, double gamma, double delta) {
  const cplx i(0.0, 1.0);
  const double c = std::cos(gamma / 2), s = std::sin(gamma / 2);
  Mat2 u;
  u[0][0] = std::exp(i * (alpha - beta / 2 - delta / 2)) * c;
  u[0][1] = -std::exp(i * (alpha - beta / 2 + delta / 2)) * s;
  u[1][0] = std::exp(i * (alpha + beta / 2 - delta / 2)) * s;
  u[1][1] = std::exp(i * (alpha + beta / 2 + delta / 2)) * c;
  return u;
}

/// The gate of four raw parameters (α, β, γ, δ), each squashed.
inline Mat2 zyz_from_raw(const float* raw) {
  return zyz(squash(raw[0]), squash(raw[1]), squash(raw[2]), squash(raw[3]));
}

inline Qubit mul(const Mat2& u, const Qubit& v) {
  return {u[0][0] * v[0] + u[0][1] * v[1], u[1][0] * v[0] + u[1][1] * v[1]};
}

/// §1.1: θ = (tanh(x)+1)·π/2, |u> = cos(θ/2)|0> + e^{iφ} sin(θ/2)|1>.
inline Qubit encode_feature(double x, double phi) {
  const double theta = (std::tanh(x) + 1.0) * std::numbers::pi / 2;
  return {cplx(std::cos(theta / 2), 0.0), std::polar(1.0, phi) * std::sin(theta / 2)};
}

/// ψ = b ⊗ a with amplitudes ordered |b a>.
inline TwoQubit kron(const Qubit& b, const Qubit& a) {
  TwoQubit psi;
  for (int ib = 0; ib < 2; ++ib)
    for (int ia = 0; ia < 2; ++ia) psi[(ib << 1) | ia] = b[ib] * a[ia];
  return psi;
}

/// CU(V) = diag(I₂, V) in the |b a> basis: b controls, a is the target.
inline Mat4 controlled(const Mat2& v) {
  Mat4 cu{};
  cu[0][0] = 1.0;
  cu[1][1] = 1.0;
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) cu[2 + r][2 + c] = v[r][c];
  return cu;
}

inline TwoQubit mul(const Mat4& m, const TwoQubit& psi) {
  TwoQubit out{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) out[r] += m[r][c] * psi[c];
  return out;
}

/// ρ_a = Tr_b |ψ><ψ|: ρ_a[i][j] = Σ_b ψ[b,i]·conj(ψ[b,j]).
inline Mat2 reduced_density_of_a(const TwoQubit& psi) {
  Mat2 rho{};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int b = 0; b < 2; ++b) rho[i][j] += psi[(b << 1) | i] * std::conj(psi[(b << 1) | j]);
  return rho;
}

/// One pair of §1.3: returns the new kept qubit √p0|0> + √p1|1>.
inline Qubit merge(const float* raw12, const Qubit& a, const Qubit& b) {
  const Mat2 ua = zyz_from_raw(raw12), ub = zyz_from_raw(raw12 + 4), uc = zyz_from_raw(raw12 + 8);
  const TwoQubit psi = mul(controlled(uc), kron(mul(ub, b), mul(ua, a)));
  const Mat2 rho = reduced_density_of_a(psi);
  const double p0 = rho[0][0].real(), p1 = rho[1][1].real();
  // The gates are unitary, so the reduced state has unit trace; anything else is an oracle bug.
  if (std::abs(p0 + p1 - 1.0) > 1e-9) throw std::logic_error("oracle: trace of rho_a is not 1");
  return {cplx(std::sqrt(std::max(p0, 0.0)), 0.0), cplx(std::sqrt(std::max(p1, 0.0)), 0.0)};
}

/// d' of §1.1: q·2^m with m = max(1, ⌈log2(d/q)⌉), as the smallest m ≥ 1 with q·2^m ≥ d.
inline int padded_dim(int d, int q) {
  int m = 1;
  while ((static_cast<long long>(q) << m) < d) ++m;
  return q << m;
}

inline size_t num_parameters(int d, int q) {
  size_t pairs = 0;
  for (int n = padded_dim(d, q); n > q; n /= 2) pairs += size_t(n / 2);
  return 12 * pairs;
}

/// The whole head for one input x ∈ R^d: output angles ϑ_i = atan2(√p1, √p0).
inline std::vector<double> simulate_head(int d, int q, const std::vector<float>& params,
                                         const float* x, double phi = kReferencePhase) {
  const int dp = padded_dim(d, q);
  if (params.size() != num_parameters(d, q)) throw std::logic_error("oracle: parameter count");
  std::vector<Qubit> state(dp);
  for (int j = 0; j < dp; ++j) state[j] = encode_feature(j < d ? double(x[j]) : 0.0, phi);
  size_t offset = 0;
  while (int(state.size()) > q) {
    const size_t half = state.size() / 2;
    std::vector<Qubit> next(half);
    for (size_t i = 0; i < half; ++i)
      next[i] = merge(params.data() + offset + 12 * i, state[i], state[i + half]);
    offset += 12 * half;
    state = std::move(next);
  }
  std::vector<double> angles(q);
  for (int i = 0; i < q; ++i) angles[i] = std::atan2(state[i][1].real(), state[i][0].real());
  return angles;
}

}  // namespace bloch::oracle
