#pragma once

// A diagnostic baseline of the quality evaluation (not part of the product): the dense head's
// map h = W·x + b, read out as qubit angles and scored by log-fidelity like the circuit heads,
//
//   χ = (tanh(h) + 1)·π/4 ∈ (0, π/2)^q,   ϑ = χ (raw readout) or normalise(χ) (NormalizedReadout.h)
//
// and trained through HeadTrainer, so its loss, logits ℓ/(τ·S) and optimiser are exactly the
// circuit heads'. Beside the dense cosine head it separates what the circuit costs from what
// scoring by fidelity costs: the same d×q map loses nothing to its cosine figure once the
// readout is normalised, and a lot with raw angles (docs/QUALITY.md).
//
// Gradients: ∂L/∂χ from the readout's backward, ∂L/∂h = ∂L/∂χ · (π/4)(1 − tanh²h),
// ∂L/∂W += ∂L/∂h ⊗ x, ∂L/∂b += ∂L/∂h.

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <span>
#include <vector>

#include "index/FidelityHeadModel.h"
#include "index/HeadTrainer.h"
#include "index/NormalizedReadout.h"

namespace bloch::bench {

inline constexpr double kQuarterPi = std::numbers::pi / 4;

class DenseFidelityModel final : public TrainableModel {
 public:
  DenseFidelityModel(int d, int q, Readout readout, uint64_t seed)
      : d_(d), q_(q), readout_(readout), params_(size_t(q) * d + q, 0.0) {
    // Glorot-uniform weights, zero bias (as the dense cosine head).
    std::mt19937_64 rng(seed);
    const double a = std::sqrt(6.0 / (d + q));
    std::uniform_real_distribution<double> u(-a, a);
    for (size_t i = 0; i < size_t(q) * d; ++i) params_[i] = u(rng);
  }

  int input_dim() const override { return d_; }
  int output_dim() const override { return q_; }
  size_t num_parameters() const override { return params_.size(); }
  std::vector<double> parameters() const override { return params_; }
  void set_parameters(std::span<const double> p) override { params_.assign(p.begin(), p.end()); }
  // Logit scale and τ as for circuit heads with the same readout.
  double log_fidelity_scale() const override { return log_fidelity_scale_of(readout_, q_); }
  double preferred_temperature(TrainingMode mode) const override {
    return preferred_temperature_of(readout_, mode);
  }

  /// activations: tanh(h) of every sample (n × q).
  void forward(size_t n, const float* x, double* angles,
               std::vector<double>* activations) const override {
    std::vector<double> local;
    std::vector<double>& y = activations != nullptr ? *activations : local;
    y.resize(n * q_);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < int64_t(n); ++i) {
      double* yi = y.data() + size_t(i) * q_;
      double* ai = angles + size_t(i) * q_;
      for (int k = 0; k < q_; ++k) {
        const double* w = params_.data() + size_t(k) * d_;
        double h = params_[size_t(q_) * d_ + k];
        for (int j = 0; j < d_; ++j) h += w[j] * x[size_t(i) * d_ + j];
        yi[k] = std::tanh(h);
        ai[k] = (yi[k] + 1) * kQuarterPi;
      }
      if (readout_ == Readout::kNormalized) normalize_readout(q_, ai, ai);
    }
  }

  void backward(size_t n, const float* x, const std::vector<double>& activations,
                const double* grad_angles, double* grad_params) const override {
    std::vector<double> gh(n * q_);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < int64_t(n); ++i) {
      const double* yi = activations.data() + size_t(i) * q_;
      double* g = gh.data() + size_t(i) * q_;
      if (readout_ == Readout::kNormalized) {
        std::vector<double> chi(q_);
        for (int k = 0; k < q_; ++k) chi[k] = (yi[k] + 1) * kQuarterPi;
        normalize_readout_backward(q_, chi.data(), grad_angles + size_t(i) * q_, g);
      } else {
        for (int k = 0; k < q_; ++k) g[k] = grad_angles[size_t(i) * q_ + k];
      }
      for (int k = 0; k < q_; ++k) g[k] *= kQuarterPi * (1 - yi[k] * yi[k]);
    }
    // Parallel over output units: no write conflicts, a fixed summation order.
#pragma omp parallel for schedule(static)
    for (int k = 0; k < q_; ++k) {
      double* gw = grad_params + size_t(k) * d_;
      for (size_t i = 0; i < n; ++i) {
        const double h = gh[i * q_ + k];
        for (int j = 0; j < d_; ++j) gw[j] += h * x[i * d_ + j];
        grad_params[size_t(q_) * d_ + k] += h;
      }
    }
  }

 private:
  int d_, q_;
  Readout readout_;
  std::vector<double> params_;  // W (q × d, row-major), then b (q)
};

}  // namespace bloch::bench
