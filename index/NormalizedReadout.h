#pragma once

// The normalised readout (DESIGN §1.7, "a different final readout"; an extension: the
// paper-exact head reads the circuit's angles out as they are).
//
// The circuit's output angles χ ∈ [0, π/2]^q are moved onto a sphere around the centre of the
// angle cube:
//
//   u = χ − c·1,   ϑ = c·1 + ρ · u/|u|,   c = ρ = π/4
//
// Every |u_i|/|u| ≤ 1, so ϑ stays in [0, π/2] (the codecs' range) with no clamping. Why: for
// two outputs on that sphere log-fidelity is, to second order in the angle differences,
//
//   ℓ = Σ_i log cos²(ϑ_i − ϑ'_i) ≈ −|ϑ − ϑ'|² = −2ρ² (1 − cos(u, u')),
//
// a cosine of the circuit's outputs, whereas the raw angles give −|χ − χ'|², a squared distance
// in which how far an output sits from the centre weighs as much as its direction. On the
// Debian set the dense head's tanh map scored by log-fidelity of raw angles reaches nDCG@10
// 0.399 at best, and 0.466 once normalised (0.473 by cosine; docs/QUALITY.md). No trained
// parameters.

#include <cstddef>
#include <numbers>

namespace bloch {

/// How a head turns the circuit's output angles into the stored angles.
enum class Readout : int {
  kRaw = 0,         ///< the paper's: ϑ = χ
  kNormalized = 1,  ///< ϑ = c + ρ·(χ − c)/|χ − c| (above)
};

/// Readout of heads built without saying otherwise.
inline constexpr Readout kDefaultReadout = Readout::kNormalized;

/// Centre c and radius ρ of the sphere, both π/4: the largest radius that keeps every angle in
/// [0, π/2].
inline constexpr double kReadoutCentre = std::numbers::pi / 4;
inline constexpr double kReadoutRadius = std::numbers::pi / 4;

/// In place over n rows of q angles. A row with χ = c exactly (|u| = 0) stays at the centre.
void normalize_readout(size_t n, int q, float* angles);
/// One row: χ (q values) → ϑ; `out` may alias `raw`.
void normalize_readout(int q, const double* raw, double* out);
/// Backward of one row: ∂L/∂χ = ρ (g − (g·û) û)/|u| from g = ∂L/∂ϑ and the row's raw χ;
/// `grad_raw` may alias `grad_out`.
void normalize_readout_backward(int q, const double* raw, const double* grad_out, double* grad_raw);

}  // namespace bloch
