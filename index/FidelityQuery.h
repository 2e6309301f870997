#pragma once

// One query prepared for scoring against stored codes: its head angles and, for quantised
// codecs, its look-up table (DESIGN §1.5). Built once per query and reused for every code,
// so the per-code work is only the table look-ups (or the exact kernel for float codes).

#include <cstdint>
#include <vector>

#include "index/Codec.h"
#include "index/FidelityHead.h"

namespace bloch {

class FidelityQuery {
 public:
  FidelityQuery(const FidelityHead& head, const Codec& codec);

  /// Runs the head on one raw query (head.dim() floats) and rebuilds the table.
  void set_raw(const float* x);
  /// Uses already-computed angles (q floats in [0, π/2]) and rebuilds the table.
  void set_angles(const float* angles);

  /// out[j] = ℓ(query, codes[j]) for n contiguous codes.
  void scan(const uint8_t* codes, size_t n, float* out) const;
  /// ℓ(query, code) of one code.
  float score(const uint8_t* code) const;

  const std::vector<float>& angles() const { return angles_; }

 private:
  const FidelityHead* head_;
  const Codec* codec_;
  std::vector<float> angles_;
  std::vector<float> table_;  // q × levels(), empty for float codes
};

}  // namespace bloch
