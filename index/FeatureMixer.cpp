#include "index/FeatureMixer.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include "index/BinaryIO.h"

namespace bloch {

namespace {

constexpr uint32_t kMixerFormatVersion = 1;
constexpr int kMaxWidth = 1 << 16;

// Calls f(i, j, p) for the P/2 pairs of stage s: j = i + h with h = 2^(s mod k) and bit h of i
// clear; p numbers the pairs 0 … P/2−1 in order of i.
template <typename F>
void for_each_pair(int width, int log2_width, int stage, F&& f) {
  const int h = 1 << (stage % log2_width);
  int p = 0;
  for (int base = 0; base < width; base += 2 * h)
    for (int o = 0; o < h; ++o, ++p) f(base + o, base + o + h, p);
}

}  // namespace

FeatureMixer::FeatureMixer(int d, int min_width, int butterflies, uint64_t seed)
    : d_(d), butterflies_(butterflies) {
  FAISS_THROW_IF_NOT_FMT(d > 0 && d <= kMaxWidth, "mixer input dimension d=%d not in [1, %d]", d,
                         kMaxWidth);
  FAISS_THROW_IF_NOT_FMT(butterflies >= 1 && butterflies <= 64,
                         "mixer butterflies=%d not in [1, 64]", butterflies);
  width_ = 2;
  log2_width_ = 1;
  while (width_ < std::max(d, min_width)) {
    width_ *= 2;
    ++log2_width_;
  }
  FAISS_THROW_IF_NOT_FMT(width_ <= kMaxWidth, "mixer width %d exceeds %d", width_, kMaxWidth);
  mean_.assign(d, 0.0);
  inv_std_.assign(d, 1.0);
  params_.assign(scale_offset() + width_, 1.0);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> angle(-std::numbers::pi, std::numbers::pi);
  for (size_t i = 0; i < scale_offset(); ++i) params_[i] = angle(rng);
  refresh_rotations();
}

void FeatureMixer::refresh_rotations() {
  cos_.resize(scale_offset());
  sin_.resize(scale_offset());
  for (size_t i = 0; i < scale_offset(); ++i) {
    cos_[i] = std::cos(params_[i]);
    sin_[i] = std::sin(params_[i]);
  }
}

void FeatureMixer::set_parameters(std::vector<double> params) {
  FAISS_THROW_IF_NOT_FMT(params.size() == params_.size(), "mixer expects %zu parameters, got %zu",
                         params_.size(), params.size());
  params_ = std::move(params);
  refresh_rotations();
}

MixerTables FeatureMixer::tables() const {
  MixerTables t;
  t.input_dim = d_;
  t.width = width_;
  t.log2_width = log2_width_;
  t.stages = stages();
  t.mean = mean_.data();
  t.inv_std = inv_std_.data();
  t.cos = cos_.data();
  t.sin = sin_.data();
  t.scale = params_.data() + scale_offset();
  return t;
}

void FeatureMixer::fit_standardization(size_t n, const float* x) {
  FAISS_THROW_IF_NOT_MSG(n >= 2, "fit_standardization needs at least 2 rows");
  std::vector<double> sum(d_, 0.0), sq(d_, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (int j = 0; j < d_; ++j) {
      const double v = x[i * d_ + j];
      sum[j] += v;
      sq[j] += v * v;
    }
  std::vector<double> sd(d_);
  for (int j = 0; j < d_; ++j) {
    mean_[j] = sum[j] / double(n);
    sd[j] = std::sqrt(std::max(sq[j] / double(n) - mean_[j] * mean_[j], 0.0));
  }
  const double floor = 1e-6 * std::max(*std::max_element(sd.begin(), sd.end()), 1e-30);
  for (int j = 0; j < d_; ++j) inv_std_[j] = 1.0 / std::max(sd[j], floor);
}

void FeatureMixer::forward(const float* x, double* y) const {
  for (int j = 0; j < d_; ++j) y[j] = (double(x[j]) - mean_[j]) * inv_std_[j];
  std::fill(y + d_, y + width_, 0.0);
  for (int s = 0; s < stages(); ++s) {
    const double* cs = cos_.data() + size_t(s) * (width_ / 2);
    const double* sns = sin_.data() + size_t(s) * (width_ / 2);
    for_each_pair(width_, log2_width_, s, [&](int i, int j, int p) {
      const double c = cs[p], sn = sns[p];
      const double a = y[i], b = y[j];
      y[i] = c * a - sn * b;
      y[j] = sn * a + c * b;
    });
  }
  const double* scale = params_.data() + scale_offset();
  for (int j = 0; j < width_; ++j) y[j] *= scale[j];
}

void FeatureMixer::backward(const double* y, const double* grad_y, double* grad_params,
                            double* scratch) const {
  // Undo the scale: z = y / w (the rotations' output), g = ∂L/∂z = grad_y · w,
  // ∂L/∂w_j = grad_y_j · z_j.
  double* z = scratch;
  double* g = scratch + width_;
  const double* scale = params_.data() + scale_offset();
  double* grad_scale = grad_params + scale_offset();
  for (int j = 0; j < width_; ++j) {
    z[j] = scale[j] != 0.0 ? y[j] / scale[j] : 0.0;
    grad_scale[j] += grad_y[j] * z[j];
    g[j] = grad_y[j] * scale[j];
  }
  // Stages in reverse. Forward (a, b) → (u, v) = (c·a − s·b, s·a + c·b), so
  //   ∂L/∂θ = g_u·(−s·a − c·b) + g_v·(c·a − s·b) = −g_u·v + g_v·u,
  //   (a, b) = (c·u + s·v, −s·u + c·v),   (g_a, g_b) = (c·g_u + s·g_v, −s·g_u + c·g_v).
  for (int s = stages() - 1; s >= 0; --s) {
    const double* cs = cos_.data() + size_t(s) * (width_ / 2);
    const double* sns = sin_.data() + size_t(s) * (width_ / 2);
    double* grad_angles = grad_params + size_t(s) * (width_ / 2);
    for_each_pair(width_, log2_width_, s, [&](int i, int j, int p) {
      const double c = cs[p], sn = sns[p];
      const double u = z[i], v = z[j], gu = g[i], gv = g[j];
      grad_angles[p] += -gu * v + gv * u;
      z[i] = c * u + sn * v;
      z[j] = -sn * u + c * v;
      g[i] = c * gu + sn * gv;
      g[j] = -sn * gu + c * gv;
    });
  }
}

void FeatureMixer::serialize(BinaryWriter& out) const {
  out.put<uint32_t>(kMixerFormatVersion);
  out.put<int32_t>(d_);
  out.put<int32_t>(width_);
  out.put<int32_t>(butterflies_);
  out.put_vector(mean_);
  out.put_vector(inv_std_);
  out.put_vector(params_);
}

FeatureMixer FeatureMixer::deserialize(BinaryReader& in) {
  const auto version = in.get<uint32_t>("mixer.version");
  FAISS_THROW_IF_NOT_FMT(version == kMixerFormatVersion,
                         "%s: mixer format version %u is not supported (this build reads %u)",
                         in.what().c_str(), version, kMixerFormatVersion);
  const auto d = in.get<int32_t>("mixer.d");
  const auto width = in.get<int32_t>("mixer.width");
  const auto butterflies = in.get<int32_t>("mixer.butterflies");
  FeatureMixer m(d, width, butterflies, 0);
  FAISS_THROW_IF_NOT_FMT(m.width_ == width, "%s: mixer width %d is not a power of two ≥ d=%d",
                         in.what().c_str(), width, d);
  m.mean_ = in.get_vector<double>("mixer.mean", size_t(d));
  m.inv_std_ = in.get_vector<double>("mixer.inv_std", size_t(d));
  FAISS_THROW_IF_NOT_FMT(m.mean_.size() == size_t(d) && m.inv_std_.size() == size_t(d),
                         "%s: mixer statistics do not have d=%d entries", in.what().c_str(), d);
  m.set_parameters(in.get_vector<double>("mixer.parameters", m.params_.size()));
  return m;
}

}  // namespace bloch
