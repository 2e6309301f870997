// Analytic gradients of the circuit head (index/HeadGradient) and of the training losses
// (HeadTrainer::batch_loss) against central finite differences.

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "index/CircuitHead.h"
#include "index/HeadGradient.h"
#include "index/HeadTrainer.h"

namespace bloch {
namespace {

std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

std::vector<double> random_doubles(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

// L = Σ_i w_i ϑ_i for input x (double-precision forward).
double linear_loss(const CircuitHead& head, const std::vector<double>& x,
                   const std::vector<double>& w) {
  std::vector<double> trace(head.shape().trace_size());
  forward_trace_double(head, x.data(), trace.data());
  double l = 0;
  for (int i = 0; i < head.qubits(); ++i) l += w[i] * trace[trace.size() - head.qubits() + i];
  return l;
}

// Central differences in float parameters: the step is whatever float(p ± h) actually is, so the
// quotient uses the exact perturbation.
template <typename LossFn>
std::vector<double> fd_parameters(CircuitHead& head, LossFn loss, float h = 1e-4f) {
  std::vector<float> p = head.parameters();
  std::vector<double> g(p.size());
  for (size_t k = 0; k < p.size(); ++k) {
    const float orig = p[k], plus = orig + h, minus = orig - h;
    p[k] = plus;
    head.set_parameters(p);
    const double lp = loss();
    p[k] = minus;
    head.set_parameters(p);
    const double lm = loss();
    p[k] = orig;
    g[k] = (lp - lm) / (double(plus) - double(minus));
  }
  head.set_parameters(p);
  return g;
}

void expect_close(const std::vector<double>& analytic, const std::vector<double>& fd, double atol,
                  double rtol, const std::string& what) {
  ASSERT_EQ(analytic.size(), fd.size());
  double scale = 0;
  for (double v : fd) scale = std::max(scale, std::abs(v));
  int bad = 0;
  for (size_t k = 0; k < fd.size(); ++k) {
    const double tol = atol + rtol * std::max(std::abs(fd[k]), scale * 1e-2);
    if (std::abs(analytic[k] - fd[k]) > tol && ++bad <= 5)
      ADD_FAILURE() << what << "[" << k << "]: analytic " << analytic[k] << " vs fd " << fd[k];
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << fd.size() << " components differ";
}

struct Shape {
  int d, q;
};

class HeadGradientShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(HeadGradientShapes, ForwardTraceDoubleMatchesFloatPath) {
  const auto [d, q] = GetParam();
  const CircuitHead head(d, q, 7);
  const auto xf = random_floats(size_t(d), 11);
  const std::vector<double> xd(xf.begin(), xf.end());
  std::vector<double> a(head.shape().trace_size()), b(a.size());
  head.forward_trace(xf.data(), a.data());
  forward_trace_double(head, xd.data(), b.data());
  EXPECT_EQ(a, b);
}

TEST_P(HeadGradientShapes, ParametersAndInputsMatchFiniteDifferences) {
  const auto [d, q] = GetParam();
  for (uint64_t seed : {1, 2, 3}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    CircuitHead head(d, q, 100 + seed);
    const auto xf = random_floats(size_t(d), 200 + seed);
    const std::vector<double> x(xf.begin(), xf.end());
    const auto w = random_doubles(size_t(q), 300 + seed);

    std::vector<double> grad(head.num_parameters(), 0.0), grad_x(static_cast<size_t>(d));
    HeadGradient(head).gradient(xf.data(), w.data(), grad.data(), grad_x.data());

    const auto fd = fd_parameters(head, [&] { return linear_loss(head, x, w); });
    expect_close(grad, fd, 1e-7, 1e-4, "dL/dparams");

    std::vector<double> fdx(static_cast<size_t>(d));
    const double h = 1e-5;
    for (int j = 0; j < d; ++j) {
      auto xp = x, xm = x;
      xp[j] += h;
      xm[j] -= h;
      fdx[j] = (linear_loss(head, xp, w) - linear_loss(head, xm, w)) / (2 * h);
    }
    expect_close(grad_x, fdx, 1e-8, 1e-5, "dL/dx");
  }
}

// Parameter names via snprintf: GCC 12 at -O3 reports a false -Wrestrict on chained
// std::string concatenation here.
std::string shape_name(const ::testing::TestParamInfo<Shape>& info) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "d%dq%d", info.param.d, info.param.q);
  return buf;
}

INSTANTIATE_TEST_SUITE_P(Shapes, HeadGradientShapes,
                         ::testing::Values(Shape{6, 2}, Shape{8, 2}, Shape{5, 1}, Shape{16, 4},
                                           Shape{3, 3}, Shape{33, 4}),
                         shape_name);

// n·trace is above the size where gradient_batch goes parallel, so 2 and 3 threads really split
// the 19 blocks.
TEST(HeadGradient, BatchEqualsSumOfSamplesForAnyThreadCount) {
  const int d = 20, q = 4;
  const size_t n = 150;
  const CircuitHead head(d, q, 5);
  const auto x = random_floats(n * d, 6);
  const auto w = random_doubles(n * q, 7);
  const HeadGradient hg(head);

  std::vector<double> sum(head.num_parameters(), 0.0), gx_single(n * d);
  for (size_t i = 0; i < n; ++i)
    hg.gradient(x.data() + i * d, w.data() + i * q, sum.data(), gx_single.data() + i * d);

  const int threads = omp_get_max_threads();
  std::vector<std::vector<double>> results;
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    std::vector<double> g(head.num_parameters(), 0.0), gx(n * d);
    hg.gradient_batch(n, x.data(), nullptr, w.data(), g.data(), gx.data());
    EXPECT_EQ(gx, gx_single);
    results.push_back(g);
  }
  omp_set_num_threads(threads);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
  for (size_t k = 0; k < sum.size(); ++k) EXPECT_NEAR(results[0][k], sum[k], 1e-12);

  // With stored traces the result is the same.
  std::vector<double> traces(n * head.shape().trace_size());
  for (size_t i = 0; i < n; ++i)
    head.forward_trace(x.data() + i * d, traces.data() + i * head.shape().trace_size());
  std::vector<double> g(head.num_parameters(), 0.0);
  hg.gradient_batch(n, x.data(), traces.data(), w.data(), g.data());
  EXPECT_EQ(g, results[0]);
}

// Raw parameters 0 squash to 2π: every gate is ±identity, so the output qubit equals |χ_in|;
// inputs ±30 encode to χ = −π/2 / 0 exactly, i.e. p1 = 1 / 0, where dχ/dp1 = 1/sin 2χ is
// singular. The clamp must keep every gradient finite.
TEST(HeadGradient, BoundaryAnglesGiveFiniteGradients) {
  CircuitHead head(8, 2, 1);
  head.set_parameters(std::vector<float>(head.num_parameters(), 0.0f));
  const std::vector<float> x = {30, -30, 30, -30, 30, 30, -30, -30};
  std::vector<double> trace(head.shape().trace_size());
  head.forward_trace(x.data(), trace.data());
  const double w[2] = {1.0, -1.0};
  std::vector<double> g(head.num_parameters(), 0.0), gx(8);
  HeadGradient(head).gradient(x.data(), w, g.data(), gx.data());
  for (double v : g) EXPECT_TRUE(std::isfinite(v));
  for (double v : gx) EXPECT_TRUE(std::isfinite(v));
}

// ---------------------------------------------------------------------------------------------
// Training losses.

struct LossCase {
  TrainingMode mode;
  LogitForm logits;
  const char* name;
};

class TrainingLossGradient : public ::testing::TestWithParam<LossCase> {};

TEST_P(TrainingLossGradient, MatchesFiniteDifferences) {
  const auto c = GetParam();
  const int d = 8, q = 2;
  const size_t n = 6, h = 1;
  HeadTrainerOptions o;
  o.mode = c.mode;
  o.logits = c.logits;
  o.temperature = 0.2;
  o.teacher_temperature = 0.1;
  const HeadTrainer trainer(o);

  const auto a = random_floats(n * d, 41), b = random_floats(n * d, 42),
             neg = random_floats(n * h * d, 43);
  TrainingData data;
  data.dim = d;
  if (c.mode == TrainingMode::kSupervised) {
    data.queries = a;
    data.positives = b;
    data.negatives = neg;
    data.negatives_per_query = h;
  } else {
    data.rows = a;
  }
  const std::vector<size_t> batch = {4, 0, 2, 5};

  CircuitHead head(d, q, 9);
  CircuitHeadModel model(head);
  std::vector<double> grad(head.num_parameters(), 0.0);
  const double loss = trainer.batch_loss(model, data, batch, grad.data());
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_GT(loss, 0.0);
  EXPECT_DOUBLE_EQ(trainer.batch_loss(model, data, batch, nullptr), loss);

  const auto fd =
      fd_parameters(head, [&] { return trainer.batch_loss(model, data, batch, nullptr); });
  expect_close(grad, fd, 1e-7, 1e-4, c.name);
}

INSTANTIATE_TEST_SUITE_P(
    Losses, TrainingLossGradient,
    ::testing::Values(
        LossCase{TrainingMode::kSupervised, LogitForm::kScaledFidelity, "SupervisedScaled"},
        LossCase{TrainingMode::kSupervised, LogitForm::kLogFidelity, "SupervisedLog"},
        LossCase{TrainingMode::kUnsupervised, LogitForm::kScaledFidelity, "UnsupervisedScaled"},
        LossCase{TrainingMode::kUnsupervised, LogitForm::kLogFidelity, "UnsupervisedLog"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace bloch
