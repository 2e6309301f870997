#pragma once

// Wall-clock timing for the benchmark programs.

#include <chrono>

namespace bloch::bench {

using Clock = std::chrono::steady_clock;

/// Seconds elapsed since t0.
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace bloch::bench
