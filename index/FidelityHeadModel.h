#pragma once

// A FidelityHead as a TrainableModel, so HeadTrainer trains the mixer and the circuit jointly:
// parameters = [mixer angles and scales][circuit raw parameters]; the circuit's input gradient
// (HeadGradient, ∂L/∂y) flows back into the mixer (FeatureMixer::backward). A head without a
// mixer is handed to CircuitHeadModel (same layout: activations are the circuit traces). A
// normalised readout is applied after the circuit and differentiated first on the way back.

#include "index/FidelityHead.h"
#include "index/HeadTrainer.h"

namespace bloch {

/// S of kLogFidelity logits (TrainableModel::log_fidelity_scale) for q angles read out by
/// `readout`: q for raw angles; 2ρ² = π²/8 for the normalised readout, where
/// ℓ ≈ −2ρ²(1 − cos(u, u')) (NormalizedReadout.h), so that s = ℓ/(τ·S) ≈ (cos − 1)/τ, the dense
/// head's logit.
double log_fidelity_scale_of(Readout readout, int q);
/// The τ that trained heads with this readout best (TrainableModel::preferred_temperature).
double preferred_temperature_of(Readout readout, TrainingMode mode);
/// Adam step size and batch size that trained heads with this readout best
/// (TrainableModel::preferred_learning_rate / preferred_batch_size).
double preferred_learning_rate_of(Readout readout, TrainingMode mode);
size_t preferred_batch_size_of(Readout readout, TrainingMode mode);
/// The step-size schedule that trained heads with this readout best
/// (TrainableModel::preferred_schedule).
StepSchedule preferred_schedule_of(Readout readout, TrainingMode mode);

class FidelityHeadModel final : public TrainableModel {
 public:
  /// Holds a reference: set_parameters() writes into `head`, so after training it holds the
  /// result.
  explicit FidelityHeadModel(FidelityHead& head);

  int input_dim() const override { return head_.dim(); }
  int output_dim() const override { return head_.qubits(); }
  double log_fidelity_scale() const override {
    return log_fidelity_scale_of(head_.readout(), head_.qubits());
  }
  double preferred_temperature(TrainingMode mode) const override {
    return preferred_temperature_of(head_.readout(), mode);
  }
  double preferred_learning_rate(TrainingMode mode) const override {
    return preferred_learning_rate_of(head_.readout(), mode);
  }
  size_t preferred_batch_size(TrainingMode mode) const override {
    return preferred_batch_size_of(head_.readout(), mode);
  }
  StepSchedule preferred_schedule(TrainingMode mode) const override {
    return preferred_schedule_of(head_.readout(), mode);
  }
  size_t num_parameters() const override { return head_.num_parameters(); }
  std::vector<double> parameters() const override;
  void set_parameters(std::span<const double> params) override;
  /// activations: n circuit traces (n × trace_size), then, with a mixer, n mixer outputs
  /// (n × width).
  void forward(size_t n, const float* x, double* angles,
               std::vector<double>* activations) const override;
  void backward(size_t n, const float* x, const std::vector<double>& activations,
                const double* grad_angles, double* grad_params) const override;

 private:
  size_t mixer_parameters() const;
  // The circuit (and mixer) without the readout: raw angles χ, and the gradient given ∂L/∂χ.
  void forward_circuit(size_t n, const float* x, double* angles,
                       std::vector<double>* activations) const;
  void backward_circuit(size_t n, const float* x, const std::vector<double>& activations,
                        const double* grad_angles, double* grad_params) const;

  FidelityHead& head_;
};

/// The unsupervised training every index kind's train() runs (DESIGN §1.6): fits a mixer's
/// standardisation on the n rows of x (n × head.dim()), then trains `head` in place by
/// neighbourhood distillation with `options` (its mode is forced to unsupervised), and fits its
/// angle ranges on the same rows (FidelityHead::fit_angle_ranges). Callers that
/// must not be left with a half-trained head on an exception pass a copy and swap it in after.
HeadTrainingResult train_head_unsupervised(FidelityHead& head, HeadTrainerOptions options, size_t n,
                                           const float* x);

}  // namespace bloch
