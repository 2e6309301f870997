#pragma once

// Codes for head outputs (DESIGN §1.5): an angle ϑ ∈ [0, π/2] is kept as a float (exact) or
// quantised uniformly to B bits, level k ↔ k·step with step = (π/2)/(2^B − 1). The worst
// angle error is half a step: 3.08e−3 rad at 8 bits, 5.24e−2 rad at 4 bits.

#include <cstddef>
#include <cstdint>
#include <string>

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
  Codec() = default;
  Codec(CodeType type, int q);

  CodeType type() const { return type_; }
  int qubits() const { return q_; }
  size_t code_size() const;
  /// Bits per qubit: 32 (float), 8 or 4.
  int bits() const;
  /// 2^B quantisation levels (0 for float codes).
  int levels() const;
  /// Angle of level k: k·(π/2)/(2^B − 1).
  double step() const;
  /// Worst-case |decode(encode(ϑ)) − ϑ| for ϑ ∈ [0, π/2]: step/2 (0 for float codes).
  double max_angle_error() const { return type_ == CodeType::kFloat ? 0.0 : step() / 2; }

  /// angles: n×q in [0, π/2] (values outside are clamped); codes: n×code_size().
  void encode(size_t n, const float* angles, uint8_t* codes) const;
  void decode(size_t n, const uint8_t* codes, float* angles) const;
  /// Level of qubit i in one code (quantised codecs only).
  int level(const uint8_t* code, int i) const {
    return type_ == CodeType::k8bit ? code[i] : (code[i >> 1] >> ((i & 1) * 4)) & 0xF;
  }

 private:
  CodeType type_ = CodeType::k8bit;
  int q_ = 0;
};

}  // namespace bloch
