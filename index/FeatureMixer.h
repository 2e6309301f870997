#pragma once

// A learned feature mixer in front of the circuit head (DESIGN §1.7, an extension: the
// paper-exact head has none).
//
// Why: output qubit i of the paper circuit only ever sees inputs i, i+q, i+2q, … — the tree never
// mixes features across groups, so on frozen embeddings it cannot gather the information a
// qubit needs. The mixer lets every qubit see every feature for O(P log P) parameters:
//
//   z = x standardised per feature: (x_j − μ_j)/σ_j   (μ, σ fitted on data, not trained)
//   z zero-padded to width P = 2^k ≥ d
//   B butterflies, each of k stages; stage s pairs feature i with i + h (h = 2^(s mod k), i with
//   bit h clear) and applies a Givens rotation by its own trained angle θ:
//       [z_i, z_{i+h}] ← [cos θ·z_i − sin θ·z_{i+h},  sin θ·z_i + cos θ·z_{i+h}]
//   y_j = w_j · z_j   (a trained per-feature scale: how hard the encoding's tanh saturates)
//
// Trained parameters: B·k·P/2 angles + P scales. Angles start uniform in (−π, π) under the
// seed (a random orthogonal-like mix from the first step), scales at 1.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/HeadForwardKernels.h"

namespace bloch {

class BinaryReader;
class BinaryWriter;

class FeatureMixer {
 public:
  FeatureMixer() = default;
  /// d inputs, width P = smallest power of two ≥ max(d, min_width), `butterflies` ≥ 1.
  FeatureMixer(int d, int min_width, int butterflies, uint64_t seed);

  int input_dim() const { return d_; }
  int width() const { return width_; }
  int butterflies() const { return butterflies_; }
  int stages() const { return butterflies_ * log2_width_; }
  /// Trained parameters: stages()·P/2 rotation angles + P scales (μ, σ are not counted: they
  /// are fitted statistics).
  size_t num_parameters() const { return params_.size(); }
  const std::vector<double>& parameters() const { return params_; }
  void set_parameters(std::vector<double> params);

  /// Fits μ and σ per input feature on n rows (σ floored at 1e−6 relative to the largest σ so a
  /// constant feature does not blow up).
  void fit_standardization(size_t n, const float* x);

  /// The inference tables the lane kernels read (HeadForwardKernels.h); they point into this
  /// mixer and are valid until its parameters change.
  MixerTables tables() const;

  /// One input x (d floats) → y (width() doubles): the reference the lane kernels equal.
  void forward(const float* x, double* y) const;
  /// Backward of one sample from its output y (the rotations are inverted on the way back, so
  /// no per-stage activations are stored): ADDS ∂L/∂params given ∂L/∂y (width() values).
  /// scratch: 2·width() doubles.
  void backward(const double* y, const double* grad_y, double* grad_params, double* scratch) const;

  bool operator==(const FeatureMixer& other) const {
    return d_ == other.d_ && width_ == other.width_ && butterflies_ == other.butterflies_ &&
           mean_ == other.mean_ && inv_std_ == other.inv_std_ && params_ == other.params_;
  }

  void serialize(BinaryWriter& out) const;
  static FeatureMixer deserialize(BinaryReader& in);

 private:
  size_t scale_offset() const { return size_t(stages()) * (width_ / 2); }
  // cos and sin of every rotation angle, refreshed whenever the parameters change: the
  // forward and backward passes then do no trigonometry.
  void refresh_rotations();

  int d_ = 0;
  int width_ = 0;
  int log2_width_ = 0;
  int butterflies_ = 0;
  std::vector<double> mean_;       // d
  std::vector<double> inv_std_;    // d
  std::vector<double> params_;     // stages × P/2 angles, then P scales
  std::vector<double> cos_, sin_;  // stages × P/2, derived from params_
};

}  // namespace bloch
