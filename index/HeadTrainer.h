#pragma once

// Training of the circuit head on frozen embeddings (DESIGN §1.6).
//
// The trainer owns the loss and the optimiser; the thing being trained is a TrainableModel
// (x ∈ R^d ↦ angles ϑ ∈ R^q, parameters, backward). CircuitHeadModel adapts the paper-exact
// CircuitHead; a future pre-transform (e.g. a learned butterfly mixer before the circuit,
// DESIGN §1.7) plugs in as another TrainableModel without touching the losses or Adam.
//
// Losses (all fidelity math in double):
//   ℓ(ϑ, ϑ') = Σ_i log max(cos²(ϑ_i − ϑ'_i), ε),  ε = 1e−12,  F = exp(ℓ)
//   ∂ℓ/∂ϑ_i = −2 tan(ϑ_i − ϑ'_i) where the term is not floored, 0 where it is;
//   logits s = g(ℓ): kScaledFidelity g = c·F (paper: c = 20), kLogFidelity g = ℓ/(τ·S), where
//   S = TrainableModel::log_fidelity_scale() (q for raw angles, 2ρ² for a normalised readout).
// - Supervised (InfoNCE with in-batch negatives): a batch of B queries, candidates = the B
//   positives (candidate i is query i's positive) followed by the batch's hard negatives;
//   loss = mean_i [ logsumexp_j s_ij − s_ii ].
// - Unsupervised (neighbourhood distillation): a batch of B rows; teacher
//   t_ij = softmax_{j≠i}(cos(x_i, x_j)/τ_t), student p_ij = softmax_{j≠i}(s_ij);
//   loss = mean_i KL(t_i ‖ p_i) = mean_i Σ_{j≠i} t_ij (log t_ij − log p_ij).
//
// Determinism: the same options (seed included) and data give bitwise-identical parameters for
// any number of OpenMP threads (fixed shuffles, fixed reduction orders).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <vector>

#include "index/CircuitHead.h"

namespace bloch {

enum class TrainingMode : int {
  kSupervised = 0,    ///< (query, positive[, hard negatives]) pairs, InfoNCE
  kUnsupervised = 1,  ///< rows only: distil the raw-cosine neighbourhood (KL)
};

/// How a pair's fidelity becomes a logit.
enum class LogitForm : int {
  kScaledFidelity = 0,  ///< s = fidelity_scale · F (paper-exact with fidelity_scale = 20)
  kLogFidelity = 1,     ///< s = ℓ / (temperature · q): usable at large q where F is tiny
};

/// The default logit form of HeadTrainerOptions: log-fidelity. Measured on the Debian set's dev
/// split (docs/QUALITY.md), a mixer head trained with ℓ/(τq), τ = 0.005, beats the same head
/// trained with the paper's 20·F; the paper-exact form stays selectable (kScaledFidelity).
inline constexpr LogitForm kDefaultLogitForm = LogitForm::kLogFidelity;

/// How the Adam step size moves over the training run.
enum class StepSchedule : int {
  kPreferred = 0,  ///< the model's preferred_schedule()
  kConstant = 1,   ///< lr at every step
  kCosine = 2,     ///< lr_t = lr·½(1 + cos(π·t/T)), T = max_epochs × batches per epoch
};

/// Step size of optimiser step t (0-based) of a run of T steps under `schedule` (kPreferred is
/// taken as constant: resolve it against the model first, resolved_schedule()).
double scheduled_learning_rate(StepSchedule schedule, double lr, double t, double T);

/// Floor of every per-qubit cos² term in the training loss (DESIGN §1.5).
inline constexpr double kTrainFidelityFloor = 1e-12;

/// What the progress callback sees.
struct TrainingProgress {
  int epoch = 0;               ///< 1-based epoch being run
  size_t step = 0;             ///< optimiser steps done so far (all epochs)
  size_t epoch_step = 0;       ///< steps done in this epoch
  size_t steps_per_epoch = 0;  ///< batches per epoch
  double train_loss = 0;       ///< mean training loss of this epoch's steps so far
  double holdout_loss =
      std::numeric_limits<double>::quiet_NaN();  ///< last held-out loss (NaN: none yet)
  double samples_per_second = 0;  ///< training examples per second of optimiser steps
  bool epoch_end = false;         ///< true for the call after an epoch's held-out evaluation
};

/// Called after every epoch (and every progress_every_steps steps); return false to cancel.
/// Cancelling keeps the best parameters evaluated so far (the initial ones if none).
using TrainingProgressCallback = std::function<bool(const TrainingProgress&)>;

struct HeadTrainerOptions {
  /// Supervised pairs or unsupervised rows (selects which TrainingData fields are used).
  TrainingMode mode = TrainingMode::kUnsupervised;
  /// Logit form g; see LogitForm and kDefaultLogitForm.
  LogitForm logits = kDefaultLogitForm;
  /// c of kScaledFidelity logits s = c·F; the paper's reference uses 20.
  double fidelity_scale = 20.0;
  /// τ of kLogFidelity logits s = ℓ/(τ·S) (S: TrainableModel::log_fidelity_scale()); larger τ
  /// flattens the softmax. 0 (default) takes the model's preferred_temperature(): the τ that
  /// trained its kind of head best on the Debian dev split (docs/QUALITY.md).
  double temperature = 0.0;
  /// τ_t of the unsupervised teacher softmax(cos(x_i, x_j)/τ_t). 0.01 preserved raw-cosine
  /// neighbours best of 0.002 … 0.05 on the Debian set (docs/QUALITY.md).
  double teacher_temperature = 0.01;

  /// Adam step size (DESIGN §1.6 suggests 1e−3 … 1e−2). Raw parameters pass through
  /// 2π(tanh p + 1), so one raw unit moves an angle by up to 2π: 1e−2 is already brisk.
  /// 0 (default) takes the model's preferred_learning_rate().
  double learning_rate = 0.0;
  /// Step-size schedule over max_epochs. Cosine decay ends on small steps, so the last epochs
  /// settle instead of jittering around the optimum at the full step size; it also tolerates
  /// a bolder first step. kPreferred (default) takes the model's preferred_schedule().
  StepSchedule schedule = StepSchedule::kPreferred;
  double adam_beta1 = 0.9;     ///< Adam first-moment decay
  double adam_beta2 = 0.999;   ///< Adam second-moment decay
  double adam_epsilon = 1e-8;  ///< Adam denominator guard: step = lr·m̂/(√v̂ + ε)

  /// Examples per optimiser step (queries in supervised mode, rows in unsupervised mode); also
  /// the number of in-batch negatives/neighbours. A final remainder of one example is folded into
  /// the previous batch (a batch needs at least 2 examples). 0 (default) takes the model's
  /// preferred_batch_size().
  size_t batch_size = 0;
  /// Upper bound on epochs (full passes over the training split).
  int max_epochs = 20;
  /// Stop after this many consecutive epochs without held-out improvement; 0 never stops early.
  int patience = 3;
  /// An epoch improves if its held-out loss is below the best by more than this (absolute).
  double min_improvement = 1e-4;
  /// Fraction of the examples (pairs or rows) held out for early stopping and the reported
  /// loss; at least 2 examples when > 0. 0 disables the split: the stopping criterion is then
  /// the epoch's mean training loss.
  double holdout_fraction = 0.1;
  /// Seeds the split and the per-epoch shuffles. Same seed + data ⇒ same parameters.
  uint64_t seed = 1234;

  /// Progress report / cancellation; may be empty.
  TrainingProgressCallback progress;
  /// Also call `progress` every this many steps inside an epoch (0: at epoch ends only).
  size_t progress_every_steps = 0;
};

struct HeadTrainingResult {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  double initial_holdout_loss = kNaN;  ///< held-out loss before training (NaN: no split)
  double best_holdout_loss = kNaN;     ///< loss of the returned parameters (NaN: no split)
  double final_holdout_loss = kNaN;    ///< held-out loss after the last completed epoch
  double final_train_loss = kNaN;      ///< mean training loss of the last epoch run
  int epochs = 0;                      ///< epochs completed
  int best_epoch = 0;                  ///< epoch of the returned parameters (0 = initial)
  size_t steps = 0;                    ///< optimiser steps taken
  size_t train_size = 0;               ///< examples in the training split
  size_t holdout_size = 0;             ///< examples in the held-out split
  bool stopped_early = false;          ///< patience ran out before max_epochs
  bool cancelled = false;              ///< the progress callback returned false
  double seconds = 0;                  ///< wall time of the whole call
  double samples_per_second = 0;       ///< training examples per second of optimiser steps
};

/// τ of kLogFidelity logits that trained raw-angle heads best: of 0.001 … 0.1 for supervised
/// training, and as the unsupervised student's τ (0.02 loses 0.11 neighbour recall@10), on the
/// Debian set (docs/QUALITY.md).
inline constexpr double kRawAngleTemperature = 0.005;
/// Adam step size and batch size of models that prefer nothing else: the best pair for the
/// raw-angle mixer head at q = 128 (batch 1,024 with lr 2e-2 adds at most +0.006 nDCG@10 on the
/// Debian set, inside two seed spreads; docs/QUALITY.md).
inline constexpr double kDefaultLearningRate = 1e-2;
inline constexpr size_t kDefaultBatchSize = 256;

/// A differentiable map x ∈ R^d ↦ angles ∈ R^q with a flat parameter vector: what the trainer
/// optimises. Implementations must be deterministic for any OpenMP thread count.
class TrainableModel {
 public:
  virtual ~TrainableModel() = default;
  virtual int input_dim() const = 0;
  virtual int output_dim() const = 0;
  /// S of kLogFidelity logits s = ℓ/(τ·S): the magnitude of ℓ, so that one τ suits every q.
  /// Raw angles: ℓ is a sum of q per-qubit terms, S = q.
  virtual double log_fidelity_scale() const { return output_dim(); }
  /// τ used when HeadTrainerOptions::temperature is 0, per training mode.
  virtual double preferred_temperature(TrainingMode mode) const;
  /// Adam step size used when HeadTrainerOptions::learning_rate is 0.
  virtual double preferred_learning_rate(TrainingMode) const { return kDefaultLearningRate; }
  /// Batch size used when HeadTrainerOptions::batch_size is 0.
  virtual size_t preferred_batch_size(TrainingMode) const { return kDefaultBatchSize; }
  /// Step-size schedule used when HeadTrainerOptions::schedule is kPreferred.
  virtual StepSchedule preferred_schedule(TrainingMode) const { return StepSchedule::kConstant; }
  virtual size_t num_parameters() const = 0;
  virtual std::vector<double> parameters() const = 0;
  /// params.size() == num_parameters().
  virtual void set_parameters(std::span<const double> params) = 0;
  /// n inputs (n × input_dim floats) → angles (n × output_dim doubles). If activations is
  /// non-null it receives whatever backward() needs for these inputs.
  virtual void forward(size_t n, const float* x, double* angles,
                       std::vector<double>* activations) const = 0;
  /// ADDS Σ over the n samples of ∂L/∂params into grad_params, given ∂L/∂angles (n × q) and the
  /// activations that forward() produced for the same x.
  virtual void backward(size_t n, const float* x, const std::vector<double>& activations,
                        const double* grad_angles, double* grad_params) const = 0;
};

/// The paper-exact CircuitHead as a TrainableModel. Holds a reference: set_parameters()
/// rounds to float and writes into that head, so after training the head holds the result.
class CircuitHeadModel final : public TrainableModel {
 public:
  explicit CircuitHeadModel(CircuitHead& head);
  int input_dim() const override { return head_.dim(); }
  int output_dim() const override { return head_.qubits(); }
  size_t num_parameters() const override { return head_.num_parameters(); }
  std::vector<double> parameters() const override;
  void set_parameters(std::span<const double> params) override;
  void forward(size_t n, const float* x, double* angles,
               std::vector<double>* activations) const override;
  void backward(size_t n, const float* x, const std::vector<double>& activations,
                const double* grad_angles, double* grad_params) const override;

 private:
  CircuitHead& head_;
};

/// Training examples. Every vector has `dim` floats (must equal the model's input dimension).
struct TrainingData {
  int dim = 0;
  /// Unsupervised mode: n rows, n × dim.
  std::span<const float> rows;
  /// Supervised mode: n queries, n × dim.
  std::span<const float> queries;
  /// Supervised mode: n positives, n × dim; row i is the positive of query i.
  std::span<const float> positives;
  /// Supervised mode, optional: hard negatives, n × h × dim (h = negatives_per_query); the
  /// negatives of query i are rows i·h … i·h + h − 1. Empty when h = 0.
  std::span<const float> negatives;
  size_t negatives_per_query = 0;
};

/// The schedule `options` trains `model` with: options.schedule, or the model's preferred one.
StepSchedule resolved_schedule(const HeadTrainerOptions& options, const TrainableModel& model);

class HeadTrainer {
 public:
  /// Checks the options (throws naming the bad one).
  explicit HeadTrainer(HeadTrainerOptions options);

  const HeadTrainerOptions& options() const { return options_; }

  /// Trains `head` in place (mode must be kUnsupervised): x is n × head.dim(). On return the
  /// head holds the best held-out parameters.
  HeadTrainingResult train_unsupervised(CircuitHead& head, size_t n, const float* x) const;

  /// Trains `head` in place (mode must be kSupervised): queries and positives are n × d,
  /// negatives n × h × d (or null with h = 0), d = head.dim(). On return the head holds the best
  /// held-out parameters.
  HeadTrainingResult train_supervised(CircuitHead& head, size_t n, const float* queries,
                                      const float* positives, size_t negatives_per_query = 0,
                                      const float* negatives = nullptr) const;

  /// The general form: trains any model on `data` (validated against options().mode and the
  /// model's input dimension). On return the model holds the best held-out parameters.
  HeadTrainingResult train(TrainableModel& model, const TrainingData& data) const;

  /// The training loss of one batch (example indices into data; at least 2) at the model's
  /// current parameters. If grad_params is non-null, ADDS ∂loss/∂params (num_parameters()).
  /// Exposed for gradient checks and diagnostics.
  double batch_loss(const TrainableModel& model, const TrainingData& data,
                    std::span<const size_t> batch, double* grad_params) const;

 private:
  HeadTrainerOptions options_;
};

}  // namespace bloch
