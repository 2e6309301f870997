#include "index/Codec.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "index/FidelityKernels.h"

namespace bloch {

const char* code_type_name(CodeType type) {
  switch (type) {
    case CodeType::kFloat:
      return "float";
    case CodeType::k8bit:
      return "8bit";
    case CodeType::k4bit:
      return "4bit";
  }
  return "?";
}

CodeType parse_code_type(const std::string& name) {
  if (name == "float" || name == "32") return CodeType::kFloat;
  if (name == "8bit" || name == "8") return CodeType::k8bit;
  if (name == "4bit" || name == "4") return CodeType::k4bit;
  FAISS_THROW_FMT("unknown code type '%s' (expected float, 8bit or 4bit)", name.c_str());
}

Codec::Codec(CodeType type, int q) : type_(type), q_(q) {
  FAISS_THROW_IF_NOT_FMT(q > 0, "codec qubits q=%d must be positive", q);
  FAISS_THROW_IF_NOT_FMT(
      type == CodeType::kFloat || type == CodeType::k8bit || type == CodeType::k4bit,
      "unknown code type %d", int(type));
}

Codec::Codec(CodeType type, int q, std::span<const float> lo, std::span<const float> hi)
    : Codec(type, q) {
  FAISS_THROW_IF_NOT_MSG(type != CodeType::kFloat, "float codes are exact and take no range");
  FAISS_THROW_IF_NOT_FMT(lo.size() == size_t(q) && hi.size() == size_t(q),
                         "codec ranges: %zu lows and %zu highs for q=%d qubits", lo.size(),
                         hi.size(), q);
  auto ranges = std::make_shared<Ranges>();
  ranges->low.resize(q);
  ranges->step.resize(q);
  const int levels = this->levels();
  constexpr double kHalfPi = std::numbers::pi / 2;
  for (int i = 0; i < q; ++i) {
    FAISS_THROW_IF_NOT_FMT(std::isfinite(lo[i]) && std::isfinite(hi[i]) && lo[i] <= hi[i],
                           "codec range of qubit %d is [%g, %g]: needs finite low <= high", i,
                           double(lo[i]), double(hi[i]));
    double low = std::clamp(double(lo[i]), 0.0, kHalfPi);
    double high = std::clamp(double(hi[i]), 0.0, kHalfPi);
    if (high - low < kMinRange) {
      low = std::clamp(0.5 * (low + high) - kMinRange / 2, 0.0, kHalfPi - kMinRange);
      high = low + kMinRange;
    }
    ranges->low[i] = low;
    ranges->step[i] = (high - low) / (levels - 1);
  }
  // D[i·K + δ]: cos²(δ·step_i), floored at ε, as log_fidelity_code_pair sums it.
  const size_t entries = size_t(q) * levels;
  ranges->level_cos.resize(entries);
  ranges->level_sin.resize(entries);
  ranges->differences.resize(entries);
  for (int i = 0; i < q; ++i)
    for (int k = 0; k < levels; ++k) {
      const size_t e = size_t(i) * levels + k;
      const double c = std::cos(k * ranges->step[i]);
      ranges->level_cos[e] = c;
      ranges->level_sin[e] = std::sin(k * ranges->step[i]);
      ranges->differences[e] = float(std::log(std::max(c * c, kFidelityFloor)));
    }
  ranges_ = std::move(ranges);
}

size_t Codec::code_size() const {
  switch (type_) {
    case CodeType::kFloat:
      return 4 * size_t(q_);
    case CodeType::k8bit:
      return size_t(q_);
    case CodeType::k4bit:
      return (size_t(q_) + 1) / 2;
  }
  return 0;
}

int Codec::bits() const {
  return type_ == CodeType::kFloat ? 32 : type_ == CodeType::k8bit ? 8 : 4;
}

int Codec::levels() const {
  return type_ == CodeType::kFloat ? 0 : 1 << bits();
}

double Codec::step() const {
  return type_ == CodeType::kFloat ? 0.0 : (std::numbers::pi / 2) / (levels() - 1);
}

namespace {

// cos / sin of k·(π/2)/(K − 1), shared by every full-range codec of K levels.
struct FullRangeLevels {
  std::vector<double> cos, sin;
  explicit FullRangeLevels(int levels) : cos(levels), sin(levels) {
    const double step = (std::numbers::pi / 2) / (levels - 1);
    for (int k = 0; k < levels; ++k) {
      cos[k] = std::cos(k * step);
      sin[k] = std::sin(k * step);
    }
  }
};

const FullRangeLevels& full_range_levels(CodeType type) {
  static const FullRangeLevels eight(256), four(16);
  return type == CodeType::k8bit ? eight : four;
}

}  // namespace

const double* Codec::level_cos(int i) const {
  if (ranges_) return ranges_->level_cos.data() + size_t(i) * levels();
  return full_range_levels(type_).cos.data();
}

const double* Codec::level_sin(int i) const {
  if (ranges_) return ranges_->level_sin.data() + size_t(i) * levels();
  return full_range_levels(type_).sin.data();
}

double Codec::max_angle_error() const {
  if (type_ == CodeType::kFloat) return 0.0;
  if (!ranges_) return step() / 2;
  return *std::max_element(ranges_->step.begin(), ranges_->step.end()) / 2;
}

void Codec::encode(size_t n, const float* angles, uint8_t* codes) const {
  const size_t cs = code_size();
  if (type_ == CodeType::kFloat) {
    for (size_t i = 0; i < n * q_; ++i) {
      const float a = std::clamp(angles[i], 0.0f, float(std::numbers::pi / 2));
      std::memcpy(codes + 4 * i, &a, 4);
    }
    return;
  }
  const int max_level = levels() - 1;
  for (size_t v = 0; v < n; ++v) {
    uint8_t* code = codes + v * cs;
    std::memset(code, 0, cs);
    for (int i = 0; i < q_; ++i) {
      // Clamp in floating point before rounding: lround of a huge or infinite angle is
      // unspecified and the long → int narrowing wraps, so 1e9 would otherwise map to level 0.
      // A NaN angle maps to level 0.
      const double t = (double(angles[v * q_ + i]) - qubit_low(i)) / qubit_step(i);
      const double clamped = t > 0.0 ? std::min(t, double(max_level)) : 0.0;
      const int k = int(std::lround(clamped));
      if (type_ == CodeType::k8bit)
        code[i] = uint8_t(k);
      else
        code[i >> 1] |= uint8_t(k << ((i & 1) * 4));
    }
  }
}

void Codec::decode(size_t n, const uint8_t* codes, float* angles) const {
  const size_t cs = code_size();
  if (type_ == CodeType::kFloat) {
    std::memcpy(angles, codes, n * cs);
    return;
  }
  for (size_t v = 0; v < n; ++v)
    for (int i = 0; i < q_; ++i)
      angles[v * q_ + i] = float(qubit_low(i) + level(codes + v * cs, i) * qubit_step(i));
}

bool Codec::operator==(const Codec& other) const {
  if (type_ != other.type_ || q_ != other.q_ || ranged() != other.ranged()) return false;
  return !ranges_ || ranges_ == other.ranges_ ||
         (ranges_->low == other.ranges_->low && ranges_->step == other.ranges_->step);
}

}  // namespace bloch
