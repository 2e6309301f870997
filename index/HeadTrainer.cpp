#include "index/HeadTrainer.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <random>

#include "index/HeadGradient.h"

namespace bloch {

namespace {

using Clock = std::chrono::steady_clock;

// Below this many inner-loop iterations a loop runs on one thread: a parallel region costs more
// than it saves (and oversubscribed machines make it much worse). Thread count never changes
// results, so this is purely a speed knob.
constexpr size_t kMinParallelWork = size_t(1) << 15;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Per-qubit Bloch components (cos 2ϑ, sin 2ϑ) of n×q angles, stored qubit-major
// (c[k·n + i]) so that the pairwise loops run over candidates contiguously. With them
//   cos²(ϑ − ϑ') = (1 + cos 2ϑ cos 2ϑ' + sin 2ϑ sin 2ϑ')/2,
//   sin 2(ϑ − ϑ') = sin 2ϑ cos 2ϑ' − cos 2ϑ sin 2ϑ',
// so the pairwise loops need no trigonometry.
struct BlochComponents {
  size_t n;
  std::vector<double> c, s;
  BlochComponents(const double* angles, size_t rows, int q)
      : n(rows), c(rows * size_t(q)), s(rows * size_t(q)) {
    for (size_t i = 0; i < rows; ++i)
      for (int k = 0; k < q; ++k) {
        c[size_t(k) * rows + i] = std::cos(2 * angles[i * size_t(q) + size_t(k)]);
        s[size_t(k) * rows + i] = std::sin(2 * angles[i * size_t(q) + size_t(k)]);
      }
  }
};

// Qubits per partial product in log_fidelity_matrix: each floored term is ≥ 1e−12, so a product
// of 16 is ≥ 1e−192, far from underflow; it is then renormalised with frexp (exact), and one
// log per pair finishes ℓ = log(mantissa) + exponent·ln 2.
constexpr int kProductChunk = 16;

// ell[i·nb + j] = ℓ(A_i, D_j) = Σ_k log max(cos²Δ_ijk, ε). Parallel over rows i (each row is
// computed the same way whatever the thread count).
void log_fidelity_matrix(const BlochComponents& A, const BlochComponents& D, int q, double* ell) {
  const size_t na = A.n, nb = D.n;
#pragma omp parallel if (na * nb * size_t(q) > kMinParallelWork)
  {
    std::vector<double> prod(nb);
    std::vector<int> expo(nb);
#pragma omp for schedule(static)
    for (int64_t ii = 0; ii < int64_t(na); ++ii) {
      const size_t i = size_t(ii);
      std::fill(prod.begin(), prod.end(), 1.0);
      std::fill(expo.begin(), expo.end(), 0);
      for (int k = 0; k < q; ++k) {
        const double ac = A.c[size_t(k) * na + i], as = A.s[size_t(k) * na + i];
        const double* dc = &D.c[size_t(k) * nb];
        const double* ds = &D.s[size_t(k) * nb];
        for (size_t j = 0; j < nb; ++j)
          prod[j] *= std::max(0.5 * (1.0 + ac * dc[j] + as * ds[j]), kTrainFidelityFloor);
        if (k % kProductChunk == kProductChunk - 1)
          for (size_t j = 0; j < nb; ++j) {
            int e;
            prod[j] = std::frexp(prod[j], &e);
            expo[j] += e;
          }
      }
      for (size_t j = 0; j < nb; ++j)
        ell[i * nb + j] = std::log(prod[j]) + expo[j] * std::numbers::ln2;
    }
  }
}

// Given W[i·nb + j] = ∂L/∂ℓ_ij, writes gA = ∂L/∂ϑ(A) (na×q) and gD = ∂L/∂ϑ(D) (nb×q) with
//   ∂ℓ_ij/∂ϑ(A_i)_k = −2 tan Δ_ijk = −sin 2Δ_ijk / cos²Δ_ijk  (0 where the term is floored),
//   ∂ℓ_ij/∂ϑ(D_j)_k = −∂ℓ_ij/∂ϑ(A_i)_k.
// Parallel over qubits k: every output element belongs to one qubit, so each is summed by one
// thread in a fixed order (i, then j) — one pass, no per-thread buffers, thread-count independent.
void log_fidelity_backward(const BlochComponents& A, const BlochComponents& D, int q,
                           const double* W, double* gA, double* gD) {
  const size_t na = A.n, nb = D.n;
  std::vector<double> gAt(na * size_t(q)), gDt(nb * size_t(q), 0.0);  // qubit-major
#pragma omp parallel for schedule(static) if (na * nb * size_t(q) > kMinParallelWork)
  for (int k = 0; k < q; ++k) {
    const double* dc = &D.c[size_t(k) * nb];
    const double* ds = &D.s[size_t(k) * nb];
    double* gd = &gDt[size_t(k) * nb];
    for (size_t i = 0; i < na; ++i) {
      const double ac = A.c[size_t(k) * na + i], as = A.s[size_t(k) * na + i];
      const double* w = W + i * nb;
      double ga = 0.0;
      for (size_t j = 0; j < nb; ++j) {
        const double cos2 = 0.5 * (1.0 + ac * dc[j] + as * ds[j]);
        const double t =
            cos2 >= kTrainFidelityFloor ? w[j] * (as * dc[j] - ac * ds[j]) / cos2 : 0.0;
        ga -= t;
        gd[j] += t;
      }
      gAt[size_t(k) * na + i] = ga;
    }
  }
  for (size_t i = 0; i < na; ++i)
    for (int k = 0; k < q; ++k) gA[i * size_t(q) + size_t(k)] = gAt[size_t(k) * na + i];
  for (size_t j = 0; j < nb; ++j)
    for (int k = 0; k < q; ++k) gD[j * size_t(q) + size_t(k)] = gDt[size_t(k) * nb + j];
}

const char* mode_name(TrainingMode mode) {
  return mode == TrainingMode::kSupervised ? "supervised" : "unsupervised";
}

void check_finite(std::span<const float> v, const char* what) {
  for (size_t k = 0; k < v.size(); ++k)
    FAISS_THROW_IF_NOT_FMT(std::isfinite(v[k]), "training data: %s[%zu] = %g is not finite", what,
                           k, double(v[k]));
}

// Checks data against the mode and the model; returns n (examples).
size_t validate_data(const HeadTrainerOptions& o, const TrainableModel& model,
                     const TrainingData& data) {
  FAISS_THROW_IF_NOT_FMT(data.dim == model.input_dim(),
                         "training data dimension %d != model input dimension %d", data.dim,
                         model.input_dim());
  const size_t d = size_t(data.dim);
  if (o.mode == TrainingMode::kUnsupervised) {
    FAISS_THROW_IF_NOT_MSG(!data.rows.empty(),
                           "unsupervised training data is empty (rows has no vectors)");
    FAISS_THROW_IF_NOT_FMT(data.rows.size() % d == 0,
                           "unsupervised rows: %zu floats is not a multiple of dim %zu",
                           data.rows.size(), d);
    FAISS_THROW_IF_NOT_MSG(data.queries.empty() && data.positives.empty() && data.negatives.empty(),
                           "unsupervised training takes rows only (queries/positives/negatives "
                           "must be empty; set mode = kSupervised for pairs)");
    check_finite(data.rows, "rows");
    return data.rows.size() / d;
  }
  FAISS_THROW_IF_NOT_MSG(!data.queries.empty(),
                         "supervised training data is empty (queries has no vectors)");
  FAISS_THROW_IF_NOT_MSG(data.rows.empty(),
                         "supervised training takes queries/positives, not rows (set mode = "
                         "kUnsupervised for rows)");
  FAISS_THROW_IF_NOT_FMT(data.queries.size() % d == 0,
                         "supervised queries: %zu floats is not a multiple of dim %zu",
                         data.queries.size(), d);
  const size_t n = data.queries.size() / d;
  FAISS_THROW_IF_NOT_FMT(data.positives.size() == n * d,
                         "supervised positives: %zu floats != n_queries %zu × dim %zu",
                         data.positives.size(), n, d);
  FAISS_THROW_IF_NOT_FMT(data.negatives.size() == n * data.negatives_per_query * d,
                         "supervised negatives: %zu floats != n_queries %zu × "
                         "negatives_per_query %zu × dim %zu",
                         data.negatives.size(), n, data.negatives_per_query, d);
  check_finite(data.queries, "queries");
  check_finite(data.positives, "positives");
  check_finite(data.negatives, "negatives");
  return n;
}

size_t example_count(const HeadTrainerOptions& o, const TrainingData& data) {
  const auto& v = o.mode == TrainingMode::kUnsupervised ? data.rows : data.queries;
  return v.size() / size_t(data.dim);
}

// Fisher–Yates with raw 64-bit draws: the same permutation on every platform for a seed.
void shuffle(std::vector<size_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

// Consecutive batches of `size`; a final remainder of 1 joins the previous batch.
std::vector<std::span<const size_t>> make_batches(const std::vector<size_t>& idx, size_t size) {
  std::vector<std::span<const size_t>> batches;
  for (size_t b = 0; b < idx.size(); b += size)
    batches.emplace_back(idx.data() + b, std::min(size, idx.size() - b));
  if (batches.size() > 1 && batches.back().size() < 2) {
    const size_t extra = batches.back().size();
    batches.pop_back();
    batches.back() = std::span<const size_t>(batches.back().data(), batches.back().size() + extra);
  }
  return batches;
}

void copy_rows(std::span<const float> src, size_t d, std::span<const size_t> idx, size_t per,
               float* dst) {
  for (size_t i = 0; i < idx.size(); ++i)
    std::copy_n(src.data() + idx[i] * per * d, per * d, dst + i * per * d);
}

}  // namespace

double scheduled_learning_rate(StepSchedule schedule, double lr, double t, double T) {
  if (schedule != StepSchedule::kCosine) return lr;
  return lr * 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(t / T, 1.0)));
}

StepSchedule resolved_schedule(const HeadTrainerOptions& options, const TrainableModel& model) {
  return options.schedule != StepSchedule::kPreferred ? options.schedule
                                                      : model.preferred_schedule(options.mode);
}

// ---------------------------------------------------------------------------------------------
// CircuitHeadModel

double TrainableModel::preferred_temperature(TrainingMode) const {
  return kRawAngleTemperature;
}

CircuitHeadModel::CircuitHeadModel(CircuitHead& head) : head_(head) {
  FAISS_THROW_IF_NOT_MSG(head.qubits() > 0, "CircuitHeadModel needs a non-empty head (q > 0)");
}

std::vector<double> CircuitHeadModel::parameters() const {
  const auto& p = head_.parameters();
  return {p.begin(), p.end()};
}

void CircuitHeadModel::set_parameters(std::span<const double> params) {
  FAISS_THROW_IF_NOT_FMT(params.size() == head_.num_parameters(),
                         "CircuitHeadModel::set_parameters: %zu values != %zu parameters",
                         params.size(), head_.num_parameters());
  head_.set_parameters(std::vector<float>(params.begin(), params.end()));
}

void CircuitHeadModel::forward(size_t n, const float* x, double* angles,
                               std::vector<double>* activations) const {
  const size_t T = head_.shape().trace_size(), q = size_t(head_.qubits()), d = head_.dim();
  if (activations != nullptr) activations->resize(n * T);
#pragma omp parallel if (n * T > kMinParallelWork / 8)
  {
    std::vector<double> local(activations == nullptr ? T : 0);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < int64_t(n); ++i) {
      double* trace = activations != nullptr ? activations->data() + size_t(i) * T : local.data();
      head_.forward_trace(x + size_t(i) * d, trace);
      std::copy_n(trace + T - q, q, angles + size_t(i) * q);
    }
  }
}

void CircuitHeadModel::backward(size_t n, const float* x, const std::vector<double>& activations,
                                const double* grad_angles, double* grad_params) const {
  const size_t T = head_.shape().trace_size();
  FAISS_THROW_IF_NOT_FMT(activations.empty() || activations.size() == n * T,
                         "CircuitHeadModel::backward: %zu activations != n %zu × trace %zu",
                         activations.size(), n, T);
  HeadGradient(head_).gradient_batch(n, x, activations.empty() ? nullptr : activations.data(),
                                     grad_angles, grad_params);
}

// ---------------------------------------------------------------------------------------------
// HeadTrainer

HeadTrainer::HeadTrainer(HeadTrainerOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  FAISS_THROW_IF_NOT_FMT(o.fidelity_scale > 0, "fidelity_scale=%g must be > 0", o.fidelity_scale);
  FAISS_THROW_IF_NOT_FMT(o.temperature >= 0,
                         "temperature=%g must be > 0 (or 0: the model's preferred τ)",
                         o.temperature);
  FAISS_THROW_IF_NOT_FMT(o.teacher_temperature > 0, "teacher_temperature=%g must be > 0",
                         o.teacher_temperature);
  FAISS_THROW_IF_NOT_FMT(o.learning_rate >= 0,
                         "learning_rate=%g must be > 0 (or 0: the model's preferred step size)",
                         o.learning_rate);
  FAISS_THROW_IF_NOT_FMT(
      o.schedule >= StepSchedule::kPreferred && o.schedule <= StepSchedule::kCosine,
      "schedule=%d is not a StepSchedule", int(o.schedule));
  FAISS_THROW_IF_NOT_FMT(o.adam_beta1 >= 0 && o.adam_beta1 < 1, "adam_beta1=%g must be in [0, 1)",
                         o.adam_beta1);
  FAISS_THROW_IF_NOT_FMT(o.adam_beta2 >= 0 && o.adam_beta2 < 1, "adam_beta2=%g must be in [0, 1)",
                         o.adam_beta2);
  FAISS_THROW_IF_NOT_FMT(o.adam_epsilon > 0, "adam_epsilon=%g must be > 0", o.adam_epsilon);
  FAISS_THROW_IF_NOT_FMT(o.batch_size == 0 || o.batch_size >= 2,
                         "batch_size=%zu must be >= 2 (or 0: the model's preferred size)",
                         o.batch_size);
  FAISS_THROW_IF_NOT_FMT(o.max_epochs >= 1, "max_epochs=%d must be >= 1", o.max_epochs);
  FAISS_THROW_IF_NOT_FMT(o.patience >= 0, "patience=%d must be >= 0", o.patience);
  FAISS_THROW_IF_NOT_FMT(o.min_improvement >= 0, "min_improvement=%g must be >= 0",
                         o.min_improvement);
  FAISS_THROW_IF_NOT_FMT(o.holdout_fraction >= 0 && o.holdout_fraction < 1,
                         "holdout_fraction=%g must be in [0, 1)", o.holdout_fraction);
}

double HeadTrainer::batch_loss(const TrainableModel& model, const TrainingData& data,
                               std::span<const size_t> batch, double* grad_params) const {
  const auto& o = options_;
  const size_t B = batch.size(), d = size_t(data.dim);
  const int q = model.output_dim();
  FAISS_THROW_IF_NOT_FMT(B >= 2, "a training batch needs at least 2 examples, got %zu", B);
  FAISS_THROW_IF_NOT_FMT(data.dim == model.input_dim(),
                         "training data dimension %d != model input dimension %d", data.dim,
                         model.input_dim());
  const size_t n = example_count(o, data);
  for (size_t i : batch)
    FAISS_THROW_IF_NOT_FMT(i < n, "batch index %zu out of range (n = %zu)", i, n);
  const bool supervised = o.mode == TrainingMode::kSupervised;
  const size_t h = supervised ? data.negatives_per_query : 0;

  // Inputs of one forward pass: unsupervised [rows]; supervised [queries; positives; negatives].
  const size_t na = B, nb = supervised ? B * (1 + h) : B;
  const size_t total = supervised ? na + nb : B;
  std::vector<float> x(total * d);
  if (supervised) {
    copy_rows(data.queries, d, batch, 1, x.data());
    copy_rows(data.positives, d, batch, 1, x.data() + B * d);
    if (h > 0) copy_rows(data.negatives, d, batch, h, x.data() + 2 * B * d);
  } else {
    copy_rows(data.rows, d, batch, 1, x.data());
  }
  std::vector<double> angles(total * size_t(q)), activations;
  model.forward(total, x.data(), angles.data(), grad_params != nullptr ? &activations : nullptr);
  const BlochComponents A(angles.data(), na, q);
  const BlochComponents D(supervised ? BlochComponents(angles.data() + na * q, nb, q) : A);
  std::vector<double> ell(na * nb);
  log_fidelity_matrix(A, D, q, ell.data());

  // Logits s = g(ℓ) and g'(ℓ) (given s): c·e^ℓ has derivative s itself; ℓ/(τS) has 1/(τS).
  const bool scaled = o.logits == LogitForm::kScaledFidelity;
  const double tau = o.temperature > 0 ? o.temperature : model.preferred_temperature(o.mode);
  const double inv_tau_scale = 1.0 / (tau * model.log_fidelity_scale());
  auto logit = [&](double l) {
    return scaled ? o.fidelity_scale * std::exp(l) : l * inv_tau_scale;
  };
  auto dlogit = [&](double s) { return scaled ? s : inv_tau_scale; };

  // Unsupervised teacher logits cos(x_i, x_j)/τ_t (double, zero vectors have cosine 0).
  std::vector<double> teacher;
  if (!supervised) {
    std::vector<double> unit(B * d);
    for (size_t i = 0; i < B; ++i) {
      double norm = 0;
      for (size_t k = 0; k < d; ++k) norm += double(x[i * d + k]) * x[i * d + k];
      const double inv = norm > 0 ? 1.0 / std::sqrt(norm) : 0.0;
      for (size_t k = 0; k < d; ++k) unit[i * d + k] = x[i * d + k] * inv;
    }
    teacher.resize(B * B);
#pragma omp parallel for schedule(static) if (B * B * d > kMinParallelWork)
    for (int64_t i = 0; i < int64_t(B); ++i)
      for (size_t j = 0; j < B; ++j) {
        double dot = 0;
        for (size_t k = 0; k < d; ++k) dot += unit[size_t(i) * d + k] * unit[j * d + k];
        teacher[size_t(i) * B + j] = dot / o.teacher_temperature;
      }
  }

  // Per-row loss and W = ∂loss/∂ℓ (loss is the mean over the B rows).
  std::vector<double> row_loss(na), W(grad_params != nullptr ? na * nb : 0);
#pragma omp parallel if (na * nb > kMinParallelWork / 8)
  {
    std::vector<double> s(nb), t(nb);
#pragma omp for schedule(static)
    for (int64_t ii = 0; ii < int64_t(na); ++ii) {
      const size_t i = size_t(ii);
      const double* l = &ell[i * nb];
      double smax = -std::numeric_limits<double>::infinity();
      for (size_t j = 0; j < nb; ++j) {
        if (!supervised && j == i) continue;
        s[j] = logit(l[j]);
        smax = std::max(smax, s[j]);
      }
      double ssum = 0;
      for (size_t j = 0; j < nb; ++j)
        if (supervised || j != i) ssum += std::exp(s[j] - smax);
      const double lse = smax + std::log(ssum);
      double* w = grad_params != nullptr ? &W[i * nb] : nullptr;
      if (supervised) {
        // InfoNCE: −log softmax_i(s)_i; ∂/∂s_j = softmax_j − [j = i].
        row_loss[i] = lse - s[i];
        if (w != nullptr)
          for (size_t j = 0; j < nb; ++j) {
            const double ds = (std::exp(s[j] - lse) - (j == i ? 1.0 : 0.0)) / double(B);
            w[j] = ds * dlogit(s[j]);
          }
      } else {
        // KL(t ‖ p) over j ≠ i, both softmaxes in log space; ∂/∂s_j = p_j − t_j.
        const double* tl = &teacher[i * B];
        double tmax = -std::numeric_limits<double>::infinity();
        for (size_t j = 0; j < nb; ++j)
          if (j != i) tmax = std::max(tmax, tl[j]);
        double tsum = 0;
        for (size_t j = 0; j < nb; ++j)
          if (j != i) tsum += std::exp(tl[j] - tmax);
        const double tlse = tmax + std::log(tsum);
        double kl = 0;
        for (size_t j = 0; j < nb; ++j) {
          if (j == i) {
            if (w != nullptr) w[j] = 0.0;
            continue;
          }
          const double log_t = tl[j] - tlse, log_p = s[j] - lse;
          t[j] = std::exp(log_t);
          kl += t[j] * (log_t - log_p);
          if (w != nullptr) w[j] = (std::exp(log_p) - t[j]) / double(B) * dlogit(s[j]);
        }
        row_loss[i] = kl;
      }
    }
  }
  double loss = 0;
  for (double v : row_loss) loss += v;
  loss /= double(B);
  if (grad_params == nullptr) return loss;

  std::vector<double> gA(na * size_t(q)), gD(nb * size_t(q));
  log_fidelity_backward(A, D, q, W.data(), gA.data(), gD.data());
  if (supervised) {
    std::vector<double> g(total * size_t(q));
    std::copy(gA.begin(), gA.end(), g.begin());
    std::copy(gD.begin(), gD.end(), g.begin() + ptrdiff_t(na * q));
    model.backward(total, x.data(), activations, g.data(), grad_params);
  } else {
    // Rows are both "queries" and "candidates": their angle gradients add.
    for (size_t k = 0; k < gA.size(); ++k) gA[k] += gD[k];
    model.backward(total, x.data(), activations, gA.data(), grad_params);
  }
  return loss;
}

HeadTrainingResult HeadTrainer::train(TrainableModel& model, const TrainingData& data) const {
  const auto t_start = Clock::now();
  const auto& o = options_;
  const size_t n = validate_data(o, model, data);
  const double learning_rate =
      o.learning_rate > 0 ? o.learning_rate : model.preferred_learning_rate(o.mode);
  const size_t batch_size = o.batch_size > 0 ? o.batch_size : model.preferred_batch_size(o.mode);
  const StepSchedule schedule = resolved_schedule(o, model);

  // Split: a seeded permutation; the first n_holdout examples are held out.
  std::mt19937_64 rng(o.seed);
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  shuffle(perm, rng);
  const size_t n_holdout =
      o.holdout_fraction > 0
          ? std::max<size_t>(2, size_t(std::llround(o.holdout_fraction * double(n))))
          : 0;
  FAISS_THROW_IF_NOT_FMT(n >= n_holdout + 2,
                         "%s training: %zu examples leave %zu for training after holding out "
                         "%zu (holdout_fraction=%g); need at least 2",
                         mode_name(o.mode), n, n >= n_holdout ? n - n_holdout : 0, n_holdout,
                         o.holdout_fraction);
  std::vector<size_t> holdout(perm.begin(), perm.begin() + ptrdiff_t(n_holdout));
  std::vector<size_t> train_idx(perm.begin() + ptrdiff_t(n_holdout), perm.end());
  const auto holdout_batches = make_batches(holdout, batch_size);
  auto holdout_loss = [&]() {
    double sum = 0;
    for (const auto& b : holdout_batches)
      sum += batch_loss(model, data, b, nullptr) * double(b.size());
    return sum / double(n_holdout);
  };

  HeadTrainingResult r;
  r.train_size = train_idx.size();
  r.holdout_size = n_holdout;
  const size_t P = model.num_parameters();
  std::vector<double> params = model.parameters(), best = params;
  std::vector<double> m1(P, 0.0), m2(P, 0.0), grad(P);
  double best_loss = std::numeric_limits<double>::infinity();
  if (n_holdout > 0) best_loss = r.initial_holdout_loss = holdout_loss();

  double step_seconds = 0, last_holdout = r.initial_holdout_loss;
  size_t samples_done = 0;
  int bad_epochs = 0;
  double b1_power = 1, b2_power = 1;
  // Every epoch has the same number of batches: the training split's size is fixed.
  const double total_steps =
      double(o.max_epochs) * double(make_batches(train_idx, batch_size).size());
  for (int epoch = 1; epoch <= o.max_epochs && !r.cancelled; ++epoch) {
    shuffle(train_idx, rng);
    const auto batches = make_batches(train_idx, batch_size);
    double loss_sum = 0;
    size_t loss_count = 0;
    auto report = [&](size_t epoch_step, bool epoch_end) {
      if (!o.progress) return true;
      TrainingProgress p;
      p.epoch = epoch;
      p.step = r.steps;
      p.epoch_step = epoch_step;
      p.steps_per_epoch = batches.size();
      p.train_loss = loss_count > 0 ? loss_sum / double(loss_count) : 0.0;
      p.holdout_loss = last_holdout;
      p.samples_per_second = step_seconds > 0 ? double(samples_done) / step_seconds : 0.0;
      p.epoch_end = epoch_end;
      return o.progress(p);
    };

    for (size_t bi = 0; bi < batches.size(); ++bi) {
      const auto t_step = Clock::now();
      std::fill(grad.begin(), grad.end(), 0.0);
      const double loss = batch_loss(model, data, batches[bi], grad.data());
      // Adam with bias correction: p −= lr·m̂/(√v̂ + ε).
      b1_power *= o.adam_beta1;
      b2_power *= o.adam_beta2;
      const double c1 = 1.0 / (1.0 - b1_power), c2 = 1.0 / (1.0 - b2_power);
      const double lr =
          scheduled_learning_rate(schedule, learning_rate, double(r.steps), total_steps);
      for (size_t k = 0; k < P; ++k) {
        m1[k] = o.adam_beta1 * m1[k] + (1 - o.adam_beta1) * grad[k];
        m2[k] = o.adam_beta2 * m2[k] + (1 - o.adam_beta2) * grad[k] * grad[k];
        params[k] -= lr * (m1[k] * c1) / (std::sqrt(m2[k] * c2) + o.adam_epsilon);
      }
      model.set_parameters(params);
      step_seconds += seconds_since(t_step);
      ++r.steps;
      samples_done += batches[bi].size();
      loss_sum += loss * double(batches[bi].size());
      loss_count += batches[bi].size();
      if (o.progress_every_steps > 0 && r.steps % o.progress_every_steps == 0 &&
          !report(bi + 1, false)) {
        r.cancelled = true;
        break;
      }
    }
    if (r.cancelled) break;

    r.epochs = epoch;
    r.final_train_loss = loss_sum / double(loss_count);
    double criterion = r.final_train_loss;
    if (n_holdout > 0) criterion = r.final_holdout_loss = last_holdout = holdout_loss();
    if (criterion < best_loss - o.min_improvement) {
      best_loss = criterion;
      best = params;
      r.best_epoch = epoch;
      bad_epochs = 0;
    } else {
      ++bad_epochs;
    }
    if (!report(batches.size(), true)) {
      r.cancelled = true;
      break;
    }
    if (o.patience > 0 && bad_epochs >= o.patience) {
      r.stopped_early = epoch < o.max_epochs;
      break;
    }
  }

  model.set_parameters(best);
  if (n_holdout > 0) r.best_holdout_loss = best_loss;
  r.samples_per_second = step_seconds > 0 ? double(samples_done) / step_seconds : 0.0;
  r.seconds = seconds_since(t_start);
  return r;
}

HeadTrainingResult HeadTrainer::train_unsupervised(CircuitHead& head, size_t n,
                                                   const float* x) const {
  FAISS_THROW_IF_NOT_FMT(options_.mode == TrainingMode::kUnsupervised,
                         "train_unsupervised called with mode = %s", mode_name(options_.mode));
  FAISS_THROW_IF_NOT_MSG(n == 0 || x != nullptr, "train_unsupervised: x is null");
  CircuitHeadModel model(head);
  TrainingData data;
  data.dim = head.dim();
  data.rows = std::span<const float>(x, n * size_t(head.dim()));
  return train(model, data);
}

HeadTrainingResult HeadTrainer::train_supervised(CircuitHead& head, size_t n, const float* queries,
                                                 const float* positives, size_t negatives_per_query,
                                                 const float* negatives) const {
  FAISS_THROW_IF_NOT_FMT(options_.mode == TrainingMode::kSupervised,
                         "train_supervised called with mode = %s", mode_name(options_.mode));
  FAISS_THROW_IF_NOT_MSG(n == 0 || (queries != nullptr && positives != nullptr),
                         "train_supervised: queries or positives is null");
  FAISS_THROW_IF_NOT_MSG(negatives_per_query == 0 || n == 0 || negatives != nullptr,
                         "train_supervised: negatives_per_query > 0 but negatives is null");
  CircuitHeadModel model(head);
  const size_t d = size_t(head.dim());
  TrainingData data;
  data.dim = head.dim();
  data.queries = std::span<const float>(queries, n * d);
  data.positives = std::span<const float>(positives, n * d);
  if (negatives_per_query > 0)
    data.negatives = std::span<const float>(negatives, n * negatives_per_query * d);
  data.negatives_per_query = negatives_per_query;
  return train(model, data);
}

}  // namespace bloch
