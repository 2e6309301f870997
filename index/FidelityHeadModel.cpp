#include "index/FidelityHeadModel.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>

#include "index/HeadGradient.h"
#include "index/NormalizedReadout.h"

namespace bloch {

namespace {
// Samples per accumulation block of the mixer gradient. Blocks depend on n only and are summed
// in order, so gradients are bitwise identical for any thread count.
constexpr size_t kMixerBlock = 32;
}  // namespace

FidelityHeadModel::FidelityHeadModel(FidelityHead& head) : head_(head) {
  FAISS_THROW_IF_NOT_MSG(head.qubits() > 0, "FidelityHeadModel needs a non-empty head (q > 0)");
}

size_t FidelityHeadModel::mixer_parameters() const {
  return head_.mixer() ? head_.mixer()->num_parameters() : 0;
}

double log_fidelity_scale_of(Readout readout, int q) {
  return readout == Readout::kNormalized ? 2 * kReadoutRadius * kReadoutRadius : double(q);
}

double preferred_temperature_of(Readout readout, TrainingMode mode) {
  if (readout != Readout::kNormalized) return kRawAngleTemperature;
  // Debian set (docs/QUALITY.md). Supervised, at batch 1,024 and a constant step 4e-2, q = 128,
  // one seed: τ = 0.035 / 0.05 / 0.06 / 0.07 / 0.08 / 0.1 / 0.14 give nDCG@10 0.462 / 0.471 /
  // 0.486 / 0.487 / 0.481 / 0.468 / 0.436. With the cosine from 8e-2 (preferred_schedule_of),
  // 3 seeds at q = 64 / 128 / 256: τ = 0.06 gives 0.4634 / 0.4947 / 0.5128, 0.07 gives
  // 0.4627 / 0.4964 / 0.5016, 0.065 (q = 128 / 256) 0.4961 / 0.5083: 0.06 has the best sum and the
  // widest margin over the dense head at q = 256. Unsupervised student with teacher
  // τ_t = 0.01, constant 4e-2, neighbour R@10: at q = 128 τ = 0.0175 / 0.025 / 0.035 give
  // 0.738 / 0.717 / 0.682 (3 seeds), at q = 64 0.591 / 0.569 (one seed); with the cosine from
  // 8e-2 (preferred_schedule_of) 0.0175 gives 0.601 / 0.749 at q = 64 / 128.
  return mode == TrainingMode::kSupervised ? 0.06 : 0.0175;
}

// Normalised heads train better with more in-batch examples and a bolder step. Debian set,
// q = 128, 6 epochs (docs/QUALITY.md): supervised, batch 1,024 with lr 4e-2 gives nDCG@10
// 0.459, against 0.435 (3 seeds) at 256 / 1e-2; 1,024 with 2e-2 / 8e-2: 0.442 / 0.441;
// 2,048 with 4e-2: 0.457; 512 with 4e-2: 0.447. Unsupervised on every corpus row: neighbour
// R@10 0.692 against 0.678 (3 seeds) at 256 / 1e-2, for about 3× the training time (the
// teacher's B × B cosines); on 20,000 rows 1,024 with 2e-2: 0.601, 512 with 2e-2: 0.625.
// Raw (paper-exact) heads keep the defaults. Normalised heads decay the step on a cosine
// (preferred_schedule_of), which makes a first step of 8e-2 pay in both modes: see there.
double preferred_learning_rate_of(Readout readout, TrainingMode) {
  return readout == Readout::kNormalized ? 8e-2 : kDefaultLearningRate;
}

size_t preferred_batch_size_of(Readout readout, TrainingMode) {
  return readout == Readout::kNormalized ? 1024 : kDefaultBatchSize;
}

// Debian set, 6 epochs, supervised (docs/QUALITY.md). At q = 128, one seed, cosine decay with
// a first step of 4e-2 / 6e-2 / 9e-2 / 1.3e-1 gives nDCG@10 0.488 / 0.495 / 0.496 / 0.483,
// against 0.487 at a constant 4e-2 and 0.470 at a constant 6e-2. With 8e-2, 3 seeds: 0.4627 /
// 0.4964 / 0.5016 at q = 64 / 128 / 256, against 0.4473 / 0.4838 / 0.4921 at a constant 4e-2.
// The dense baseline loses with it (0.478 against 0.490 at q = 128), so the gain is the
// circuit's own: at the full step its angles keep jittering to the end. Unsupervised, τ =
// 0.0175, one seed, neighbour R@10 at q = 128: the cosine from 8e-2 gives 0.749, from 4e-2
// 0.735, a constant 4e-2 0.735; at q = 64 0.601 against 0.591 constant.
StepSchedule preferred_schedule_of(Readout readout, TrainingMode) {
  return readout == Readout::kNormalized ? StepSchedule::kCosine : StepSchedule::kConstant;
}

std::vector<double> FidelityHeadModel::parameters() const {
  std::vector<double> p;
  if (const FeatureMixer* m = head_.mixer()) p = m->parameters();
  const auto& c = head_.circuit().parameters();
  p.insert(p.end(), c.begin(), c.end());
  return p;
}

void FidelityHeadModel::set_parameters(std::span<const double> params) {
  FAISS_THROW_IF_NOT_FMT(params.size() == num_parameters(),
                         "FidelityHeadModel::set_parameters: %zu values != %zu parameters",
                         params.size(), num_parameters());
  const size_t m = mixer_parameters();
  if (FeatureMixer* mixer = head_.mixer())
    mixer->set_parameters(std::vector<double>(params.begin(), params.begin() + m));
  head_.circuit().set_parameters(std::vector<float>(params.begin() + m, params.end()));
  // The angles move with the parameters: ranges fitted before would clip them.
  head_.clear_angle_ranges();
}

void FidelityHeadModel::forward(size_t n, const float* x, double* angles,
                                std::vector<double>* activations) const {
  forward_circuit(n, x, angles, activations);
  if (head_.readout() != Readout::kNormalized) return;
  const int q = head_.qubits();
  for (size_t i = 0; i < n; ++i)
    normalize_readout(q, angles + i * size_t(q), angles + i * size_t(q));
}

void FidelityHeadModel::backward(size_t n, const float* x, const std::vector<double>& activations,
                                 const double* grad_angles, double* grad_params) const {
  if (head_.readout() != Readout::kNormalized)
    return backward_circuit(n, x, activations, grad_angles, grad_params);
  // The raw angles χ are the last q values of each sample's circuit trace (both layouts put the
  // n traces first).
  std::vector<double> recomputed;
  const std::vector<double>* acts = &activations;
  const size_t q = size_t(head_.qubits()), T = head_.circuit().shape().trace_size();
  if (activations.empty()) {
    std::vector<double> unused(n * q);
    forward_circuit(n, x, unused.data(), &recomputed);
    acts = &recomputed;
  }
  std::vector<double> grad_raw(n * q);
  for (size_t i = 0; i < n; ++i)
    normalize_readout_backward(int(q), acts->data() + i * T + T - q, grad_angles + i * q,
                               grad_raw.data() + i * q);
  backward_circuit(n, x, *acts, grad_raw.data(), grad_params);
}

void FidelityHeadModel::forward_circuit(size_t n, const float* x, double* angles,
                                        std::vector<double>* activations) const {
  const FeatureMixer* mixer = head_.mixer();
  if (!mixer) return CircuitHeadModel(head_.circuit()).forward(n, x, angles, activations);
  const CircuitHead& circuit = head_.circuit();
  const size_t T = circuit.shape().trace_size(), q = size_t(circuit.qubits());
  const size_t d = size_t(head_.dim()), P = size_t(mixer->width());
  if (activations != nullptr) activations->resize(n * (T + P));
#pragma omp parallel
  {
    std::vector<double> local_trace(activations == nullptr ? T : 0);
    std::vector<double> local_y(activations == nullptr ? P : 0);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < int64_t(n); ++i) {
      double* trace = activations ? activations->data() + size_t(i) * T : local_trace.data();
      double* y = activations ? activations->data() + n * T + size_t(i) * P : local_y.data();
      mixer->forward(x + size_t(i) * d, y);
      forward_trace_double(circuit, y, trace);
      std::copy_n(trace + T - q, q, angles + size_t(i) * q);
    }
  }
}

void FidelityHeadModel::backward_circuit(size_t n, const float* x,
                                         const std::vector<double>& activations,
                                         const double* grad_angles, double* grad_params) const {
  const FeatureMixer* mixer = head_.mixer();
  if (!mixer)
    return CircuitHeadModel(head_.circuit()).backward(n, x, activations, grad_angles, grad_params);
  const CircuitHead& circuit = head_.circuit();
  const size_t T = circuit.shape().trace_size(), P = size_t(mixer->width());
  FAISS_THROW_IF_NOT_FMT(activations.size() == n * (T + P),
                         "FidelityHeadModel::backward: %zu activations != n %zu × %zu",
                         activations.size(), n, T + P);
  const size_t m = mixer_parameters();
  const HeadGradient circuit_grad(circuit);
  // Circuit first: its parameter gradient and ∂L/∂y for every sample.
  std::vector<double> grad_y(n * P);
  circuit_grad.gradient_batch(n, nullptr, activations.data(), grad_angles, grad_params + m,
                              grad_y.data());
  // Then the mixer, per fixed block of samples.
  const double* ys = activations.data() + n * T;
  const size_t blocks = (n + kMixerBlock - 1) / kMixerBlock;
  std::vector<double> block_grads(blocks * m, 0.0);
#pragma omp parallel
  {
    std::vector<double> scratch(2 * P);
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < int64_t(blocks); ++b) {
      const size_t end = std::min(n, size_t(b + 1) * kMixerBlock);
      for (size_t i = size_t(b) * kMixerBlock; i < end; ++i)
        mixer->backward(ys + i * P, grad_y.data() + i * P, block_grads.data() + size_t(b) * m,
                        scratch.data());
    }
  }
  for (size_t b = 0; b < blocks; ++b)
    for (size_t k = 0; k < m; ++k) grad_params[k] += block_grads[b * m + k];
}

HeadTrainingResult train_head_unsupervised(FidelityHead& head, HeadTrainerOptions options, size_t n,
                                           const float* x) {
  options.mode = TrainingMode::kUnsupervised;
  if (FeatureMixer* mixer = head.mixer()) mixer->fit_standardization(n, x);
  FidelityHeadModel model(head);
  TrainingData data;
  data.dim = head.dim();
  data.rows = std::span<const float>(x, n * size_t(head.dim()));
  HeadTrainingResult result = HeadTrainer(options).train(model, data);
  head.fit_angle_ranges(n, x);
  return result;
}

}  // namespace bloch
