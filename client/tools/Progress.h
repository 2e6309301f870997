#pragma once

// Progress of long command-line work: on a terminal, one line redrawn in place
// ("[#####.....]  52%  520,000/1,000,000  48,210/s  ETA 10s"); otherwise a plain line every few
// seconds, so logs stay readable. Written here because no Debian C++ library draws one.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace bloch::tools {

class Progress {
 public:
  /// `total` when known; `label` starts every line; output goes to stderr.
  Progress(std::string label, std::optional<uint64_t> total);
  /// Sets the amount done and redraws when due.
  void update(uint64_t done);
  /// Draws the final state and ends the line.
  void finish();
  double seconds() const;

 private:
  void draw(bool final);

  std::string label_;
  std::optional<uint64_t> total_;
  uint64_t done_ = 0;
  bool terminal_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// 1234567 → "1,234,567".
std::string with_thousands(uint64_t value);

}  // namespace bloch::tools
