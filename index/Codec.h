#pragma once

// Codes for head outputs (DESIGN §1.5): an angle ϑ ∈ [0, π/2] is kept as a float (exact) or
// quantised uniformly to B bits with K = 2^B levels per qubit,
//
//   level k of qubit i ↔ lo_i + k·step_i,   step_i = (hi_i − lo_i)/(K − 1),
//
// over [lo_i, hi_i] = [0, π/2] unless the codec is ranged (per-qubit ranges fitted to the
// angles a head gives, FidelityHead::fit_angle_ranges). Full range, the worst angle error is
// half a step: 3.08e−3 rad at 8 bits, 5.24e−2 rad at 4 bits. A normalised readout keeps every
// angle within a few ρ/√q of π/4 (NormalizedReadout.h), so full-range 4-bit levels leave most
// qubits two or three levels to use; fitted ranges give them all sixteen.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace bloch {

enum class CodeType : uint8_t {
  kFloat = 0,  ///< 4q bytes: the float angles themselves
  k8bit = 1,   ///< q bytes: one level per qubit
  k4bit = 2,   ///< ⌈q/2⌉ bytes: qubit 2j in the low nibble of byte j, qubit 2j+1 in the high
};

/// "float", "8bit", "4bit".
const char* code_type_name(CodeType type);
/// Inverse of code_type_name; also accepts "8" and "4". Throws on anything else.
CodeType parse_code_type(const std::string& name);

class Codec {
 public:
  /// Narrowest range a ranged qubit gets: a qubit whose sample angles were all equal still
  /// needs a positive step.
  static constexpr double kMinRange = 1e-6;

  Codec() = default;
  /// Levels span [0, π/2] on every qubit.
  Codec(CodeType type, int q);
  /// Levels of qubit i span [lo[i], hi[i]] (clipped to [0, π/2], widened to kMinRange).
  /// Quantised types only: float codes are exact and take no range.
  Codec(CodeType type, int q, std::span<const float> lo, std::span<const float> hi);

  CodeType type() const { return type_; }
  int qubits() const { return q_; }
  size_t code_size() const;
  /// Bits per qubit: 32 (float), 8 or 4.
  int bits() const;
  /// 2^B quantisation levels (0 for float codes).
  int levels() const;
  /// Step of the full range [0, π/2]: (π/2)/(2^B − 1) (0 for float codes).
  double step() const;
  /// Whether qubits have their own ranges (else every qubit spans [0, π/2]).
  bool ranged() const { return ranges_ != nullptr; }
  /// Angle of level 0 of qubit i, and the angle between its consecutive levels.
  double qubit_low(int i) const { return ranges_ ? ranges_->low[i] : 0.0; }
  double qubit_step(int i) const { return ranges_ ? ranges_->step[i] : step(); }
  /// Worst-case |decode(encode(ϑ)) − ϑ| for ϑ inside the qubits' ranges: the largest half
  /// step (0 for float codes). Angles outside a range are clamped to it first.
  double max_angle_error() const;

  /// angles: n×q (values outside a qubit's range are clamped to it); codes: n×code_size().
  void encode(size_t n, const float* angles, uint8_t* codes) const;
  void decode(size_t n, const uint8_t* codes, float* angles) const;
  /// Level of qubit i in one code (quantised codecs only).
  int level(const uint8_t* code, int i) const {
    return type_ == CodeType::k8bit ? code[i] : (code[i >> 1] >> ((i & 1) * 4)) & 0xF;
  }
  /// cos(k·step_i) and sin(k·step_i) for the K levels k of qubit i (quantised codecs only):
  /// the query tables are cos(ϑ − lo_i − k·step_i) = cos(ϑ − lo_i)·cos(k·step_i) +
  /// sin(ϑ − lo_i)·sin(k·step_i), two trig calls per qubit instead of one per entry.
  const double* level_cos(int i) const;
  const double* level_sin(int i) const;
  /// Ranged codecs: the q×K table D[i·K + δ] = log max(cos²(δ·step_i), ε) of level
  /// differences δ, which scores two codes against each other (log_fidelity_code_pair).
  /// Empty for unranged codecs, whose qubits share one table.
  std::span<const float> difference_table() const {
    return ranges_ ? std::span<const float>(ranges_->differences) : std::span<const float>();
  }

  /// Same type, qubits and ranges: codes of one mean the same angles under the other.
  bool operator==(const Codec& other) const;

 private:
  struct Ranges {
    std::vector<double> low, step;
    std::vector<double> level_cos, level_sin;  // q×K: cos / sin of k·step_i
    std::vector<float> differences;
  };

  CodeType type_ = CodeType::k8bit;
  int q_ = 0;
  // Shared: codecs are copied into every query and scanner; the ranges never change.
  std::shared_ptr<const Ranges> ranges_;
};

}  // namespace bloch
