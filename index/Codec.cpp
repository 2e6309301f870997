#include "index/Codec.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

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

void Codec::encode(size_t n, const float* angles, uint8_t* codes) const {
  const size_t cs = code_size();
  if (type_ == CodeType::kFloat) {
    for (size_t i = 0; i < n * q_; ++i) {
      const float a = std::clamp(angles[i], 0.0f, float(std::numbers::pi / 2));
      std::memcpy(codes + 4 * i, &a, 4);
    }
    return;
  }
  const double inv_step = 1.0 / step();
  const int max_level = levels() - 1;
  for (size_t v = 0; v < n; ++v) {
    uint8_t* code = codes + v * cs;
    std::memset(code, 0, cs);
    for (int i = 0; i < q_; ++i) {
      // Clamp in floating point before rounding: lround of a huge or infinite angle is
      // unspecified and the long → int narrowing wraps, so 1e9 would otherwise map to level 0.
      // A NaN angle maps to level 0.
      const double a = angles[v * q_ + i];
      const double clamped = a > 0.0 ? std::min(a, std::numbers::pi / 2) : 0.0;
      const int k = std::clamp(int(std::lround(clamped * inv_step)), 0, max_level);
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
  const double st = step();
  for (size_t v = 0; v < n; ++v)
    for (int i = 0; i < q_; ++i) angles[v * q_ + i] = float(level(codes + v * cs, i) * st);
}

}  // namespace bloch
