#pragma once

// Reverse-mode (analytic) gradients of the paper-exact circuit head (DESIGN §1.3–§1.6).
//
// For one pair (kept qubit a with angle χa, dropped qubit b with angle χb, real states
// cos χ|0> + sin χ|1>) the forward pass is the closed form of DESIGN §1.3:
//
//   a' = U_a a,   β1 = (U_b b)_1,   P_b = |β1|²,   c1 = (U_c a')_1,
//   p1 = (1 − P_b)·|a'_1|² + P_b·|c1|²,   χ = atan2(√p1, √(1 − p1)),  i.e. p1 = sin²χ.
//
// Backward, with g_χ = ∂L/∂χ:
//
//   ∂L/∂p1 = g_χ / sin 2χ                         (p1 = sin²χ ⇒ dp1/dχ = sin 2χ)
//   ∂L/∂P_b = ∂L/∂p1 · (|c1|² − |a'_1|²)
//
// and complex quantities carry Wirtinger-style gradients G_z = ∂L/∂Re z + i·∂L/∂Im z (for real
// L: G_z = 2·∂L/∂z̄). The rules used are: |z|² → G_z = 2·(∂L/∂|z|²)·z;  z = w·v →
// G_w += G_z·conj(v), G_v += G_z·conj(w);  z = f(t) with real t → ∂L/∂t += Re(conj(G_z)·f'(t)).
// So G_c1 = 2 P_b ∂L/∂p1 · c1, G_a'1 = 2 (1 − P_b) ∂L/∂p1 · a'_1 + G_c1·conj(C11),
// G_a'0 = G_c1·conj(C10), G_β1 = 2 ∂L/∂P_b · β1, and each gate entry collects
// G_{U_rk} = G_{(U v)_r}·conj(v_k).
//
// Gate entries are linear in the samples' contributions, so a batch first accumulates the entry
// gradients (12 complex numbers per pair) and converts them to raw-parameter gradients once:
// with U_rk = e^{iφ_rk}·ρ_rk(γ) (φ_rk = α ∓ β/2 ∓ δ/2, ρ ∈ {cos γ/2, ∓sin γ/2}) and
// h_rk = Im(G_rk·conj(U_rk)) = ∂L/∂φ_rk,
//
//   ∂L/∂α = h00 + h01 + h10 + h11,   ∂L/∂β = (−h00 − h01 + h10 + h11)/2,
//   ∂L/∂δ = (−h00 + h01 − h10 + h11)/2,   ∂L/∂γ = Σ_rk Re(conj(G_rk)·∂U_rk/∂γ),
//
// then the squash angle = 2π(tanh p + 1) contributes d angle/dp = 2π(1 − tanh² p).
// The encoding χ = −(tanh(x) + 1)·π/4 gives dχ/dx = −(π/4)(1 − tanh² x) for dL/dx.

#include <cstddef>
#include <vector>

#include "index/CircuitHead.h"
#include "index/ZyzGate.h"

namespace bloch {

/// Lower clamp of sin 2χ in dχ/dp1 = 1/sin 2χ. The derivative is singular where χ = 0 or π/2
/// (p1 = 0 or 1), but the chained gradient stays bounded: p1 is smooth with p1 ≥ 0, so near
/// p1 = 0 its gradient shrinks like √p1 and (∇p1)/sin 2χ has a finite limit (likewise at
/// p1 = 1). Only the exact boundary is 0/0. Clamping the denominator at 1e−9 keeps that limit
/// wherever sin 2χ > 1e−9 (χ more than 5e−10 from either end) and scales it smoothly towards 0
/// inside that band — a valid subgradient-like choice that never produces inf/NaN.
inline constexpr double kMinSin2Chi = 1e-9;

/// Complex gate-entry gradients per pair: U_a, U_b, U_c, each row-major (00, 01, 10, 11).
inline constexpr int kEntriesPerPair = 4 * kGatesPerPair;

/// Double-precision version of CircuitHead::forward_trace for inputs given as doubles (same
/// trace layout: d' encoded inputs, then each layer's output angles χ; the last q are ϑ).
/// For float inputs it equals forward_trace exactly. Useful for finite differences in x and for
/// models that feed the head with a computed (double) input.
void forward_trace_double(const CircuitHead& head, const double* x, double* trace);

/// Backward pass of one head. Keeps a reference to the head: it must outlive this object; its
/// parameters may change between calls (gates are read on every call).
class HeadGradient {
 public:
  explicit HeadGradient(const CircuitHead& head);

  const CircuitHead& head() const { return head_; }

  /// Complex entries of the gate-entry gradient: kEntriesPerPair per pair, pairs in parameter
  /// order: entry 12·k + 4·g + 2·r + c is U_rc of gate g of pair k, so entries and raw parameters
  /// share one indexing (the gate's raw parameters are 12·k + 4·g … + 3).
  size_t entry_size() const { return head_.num_parameters(); }
  /// Doubles of scratch that backward_trace needs (one gradient per traced angle).
  size_t scratch_size() const { return head_.shape().trace_size(); }

  /// Backward of one input from its forward trace (CircuitHead::forward_trace or
  /// forward_trace_double). grad_angles: q values ∂L/∂ϑ. ADDS ∂L/∂(gate entries) into
  /// entry_grad (entry_size() complex). If grad_x is non-null, WRITES ∂L/∂x (d values; the zero
  /// padding has no gradient output). scratch: scratch_size() doubles.
  void backward_trace(const double* trace, const double* grad_angles, Complex* entry_grad,
                      double* grad_x, double* scratch) const;

  /// Converts accumulated gate-entry gradients into raw-parameter gradients and ADDS them to
  /// grad_params (num_parameters() doubles, CircuitHead::parameters() layout).
  void entries_to_parameters(const Complex* entry_grad, double* grad_params) const;

  /// One input x (d floats): ADDS ∂L/∂params into grad_params; if grad_x is non-null, WRITES
  /// ∂L/∂x (d values).
  void gradient(const float* x, const double* grad_angles, double* grad_params,
                double* grad_x = nullptr) const;

  /// n inputs (x: n×d) with ∂L/∂ϑ in grad_angles (n×q): ADDS Σ over samples of ∂L/∂params
  /// into grad_params; if grad_x is non-null, WRITES n×d values ∂L/∂x. traces: n×trace_size
  /// from forward_trace (or forward_trace_double), or null to recompute them from x; x is only
  /// read (and may be null) when traces is null.
  ///
  /// Parallel over samples with OpenMP. Samples are cut into fixed blocks whose size depends on
  /// n only; each block is accumulated sequentially into its own buffer and the blocks are summed
  /// in order, so the result is bitwise identical for any number of threads.
  void gradient_batch(size_t n, const float* x, const double* traces, const double* grad_angles,
                      double* grad_params, double* grad_x = nullptr) const;

 private:
  const CircuitHead& head_;
};

}  // namespace bloch
