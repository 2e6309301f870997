#pragma once

// The dense baseline of the quality evaluation (not part of the product): y = tanh(W·x + b),
// W ∈ R^{q×d}, compared by cosine. Trained with the same InfoNCE loss, batches, optimiser and
// epochs as the circuit heads, with logits s_ij = cos(y(query_i), y(positive_j))/τ.
//
// Gradients (ŷ = y/|y|, c_ij = ŷ_i·v̂_j, g_ij = ∂L/∂s_ij = (softmax_j(s_i·) − δ_ij)/B):
//   ∂L/∂ŷ_i = Σ_j g_ij v̂_j / τ,   ∂L/∂y = (∂L/∂ŷ − (∂L/∂ŷ·ŷ) ŷ)/|y|,
//   ∂L/∂h = ∂L/∂y ⊙ (1 − y²),      ∂L/∂W += ∂L/∂h ⊗ x,  ∂L/∂b += ∂L/∂h.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "index/HeadTrainer.h"

namespace bloch::bench {

struct DenseHeadOptions {
  int epochs = 10;
  size_t batch_size = 256;
  double learning_rate = 1e-3;
  double temperature = 0.05;
  // HeadTrainer's schedules; kPreferred is the dense head's own: constant.
  bloch::StepSchedule schedule = bloch::StepSchedule::kConstant;
  uint64_t seed = 1;
};

class DenseHead {
 public:
  DenseHead(int d, int q, uint64_t seed) : d_(d), q_(q), params_(size_t(q) * d + q, 0.0) {
    // Glorot-uniform weights, zero bias.
    std::mt19937_64 rng(seed);
    const double a = std::sqrt(6.0 / (d + q));
    std::uniform_real_distribution<double> u(-a, a);
    for (size_t i = 0; i < size_t(q) * d; ++i) params_[i] = u(rng);
  }

  int qubits() const { return q_; }
  size_t num_parameters() const { return params_.size(); }

  /// y = tanh(W x + b), normalised to unit length (n × q).
  void encode(size_t n, const float* x, float* out) const {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < int64_t(n); ++i) {
      std::vector<double> y(q_);
      forward(x + size_t(i) * d_, y.data());
      double norm = 0;
      for (double v : y) norm += v * v;
      norm = std::sqrt(std::max(norm, 1e-30));
      for (int k = 0; k < q_; ++k) out[size_t(i) * q_ + k] = float(y[k] / norm);
    }
  }

  /// Supervised InfoNCE training on (query, positive) rows; returns the final epoch's mean loss.
  double train(size_t n, const float* queries, const float* positives, const DenseHeadOptions& o) {
    adam_m_.assign(params_.size(), 0.0);
    adam_v_.assign(params_.size(), 0.0);
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(o.seed);
    size_t step = 0;
    double epoch_loss = 0;
    const double total_steps = double(o.epochs) * double((n + o.batch_size - 1) / o.batch_size);
    for (int e = 0; e < o.epochs; ++e) {
      std::shuffle(order.begin(), order.end(), rng);
      epoch_loss = 0;
      size_t batches = 0;
      for (size_t b0 = 0; b0 + 1 < n; b0 += o.batch_size) {
        const size_t B = std::min(o.batch_size, n - b0);
        if (B < 2) break;
        std::vector<double> grad(params_.size(), 0.0);
        epoch_loss += batch_step(queries, positives, order.data() + b0, B, o.temperature, grad);
        ++batches;
        const double lr =
            bloch::scheduled_learning_rate(o.schedule, o.learning_rate, double(step), total_steps);
        adam(grad, ++step, lr);
      }
      epoch_loss /= double(std::max<size_t>(1, batches));
    }
    return epoch_loss;
  }

 private:
  void forward(const float* x, double* y) const {
    for (int k = 0; k < q_; ++k) {
      const double* w = params_.data() + size_t(k) * d_;
      double h = params_[size_t(q_) * d_ + k];
      for (int j = 0; j < d_; ++j) h += w[j] * x[j];
      y[k] = std::tanh(h);
    }
  }

  double batch_step(const float* queries, const float* positives, const size_t* idx, size_t B,
                    double tau, std::vector<double>& grad) const {
    // Rows 0..B−1: queries, B..2B−1: positives.
    std::vector<double> y(2 * B * q_), yhat(2 * B * q_), norm(2 * B);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < int64_t(2 * B); ++r) {
      const float* x = r < int64_t(B) ? queries + idx[r] * d_ : positives + idx[r - B] * d_;
      forward(x, y.data() + r * q_);
      double s = 0;
      for (int k = 0; k < q_; ++k) s += y[r * q_ + k] * y[r * q_ + k];
      norm[r] = std::sqrt(std::max(s, 1e-30));
      for (int k = 0; k < q_; ++k) yhat[r * q_ + k] = y[r * q_ + k] / norm[r];
    }
    // Logits, softmax and g = ∂L/∂s.
    std::vector<double> g(B * B);
    double loss = 0;
    for (size_t i = 0; i < B; ++i) {
      double mx = -1e300;
      for (size_t j = 0; j < B; ++j) {
        double c = 0;
        for (int k = 0; k < q_; ++k) c += yhat[i * q_ + k] * yhat[(B + j) * q_ + k];
        g[i * B + j] = c / tau;
        mx = std::max(mx, g[i * B + j]);
      }
      double z = 0;
      for (size_t j = 0; j < B; ++j) z += std::exp(g[i * B + j] - mx);
      loss += mx + std::log(z) - g[i * B + i];
      for (size_t j = 0; j < B; ++j)
        g[i * B + j] = (std::exp(g[i * B + j] - mx) / z - (i == j ? 1.0 : 0.0)) / double(B);
    }
    // ∂L/∂ŷ for every row, then back through normalisation and tanh into per-row ∂L/∂h.
    std::vector<double> gh(2 * B * q_, 0.0);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < int64_t(2 * B); ++r) {
      std::vector<double> gy(q_, 0.0);
      for (size_t o = 0; o < B; ++o) {
        const double w = r < int64_t(B) ? g[size_t(r) * B + o] : g[o * B + size_t(r - B)];
        const double* other = r < int64_t(B) ? &yhat[(B + o) * q_] : &yhat[o * q_];
        for (int k = 0; k < q_; ++k) gy[k] += w * other[k] / tau;
      }
      double dot = 0;
      for (int k = 0; k < q_; ++k) dot += gy[k] * yhat[r * q_ + k];
      for (int k = 0; k < q_; ++k) {
        const double gyk = (gy[k] - dot * yhat[r * q_ + k]) / norm[r];
        gh[r * q_ + k] = gyk * (1 - y[r * q_ + k] * y[r * q_ + k]);
      }
    }
    // ∂L/∂W row by row (parallel over output units: no write conflicts, fixed order).
#pragma omp parallel for schedule(static)
    for (int k = 0; k < q_; ++k) {
      double* gw = grad.data() + size_t(k) * d_;
      for (size_t r = 0; r < 2 * B; ++r) {
        const float* x = r < B ? queries + idx[r] * d_ : positives + idx[r - B] * d_;
        const double h = gh[r * q_ + k];
        for (int j = 0; j < d_; ++j) gw[j] += h * x[j];
        grad[size_t(q_) * d_ + k] += h;
      }
    }
    return loss / double(B);
  }

  void adam(const std::vector<double>& grad, size_t t, double lr) {
    auto& m = adam_m_;
    auto& v = adam_v_;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const double c1 = 1 - std::pow(b1, double(t)), c2 = 1 - std::pow(b2, double(t));
    for (size_t i = 0; i < params_.size(); ++i) {
      m[i] = b1 * m[i] + (1 - b1) * grad[i];
      v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
      params_[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
    }
  }

  int d_, q_;
  std::vector<double> params_;           // W (q × d, row-major), then b (q)
  std::vector<double> adam_m_, adam_v_;  // Adam moments
};

}  // namespace bloch::bench
