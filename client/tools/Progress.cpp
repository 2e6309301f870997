#include "Progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace bloch::tools {

std::string with_thousands(uint64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

Progress::Progress(std::string label, std::optional<uint64_t> total)
    : label_(std::move(label)),
      total_(total),
      terminal_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(uint64_t done) {
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  const auto period = terminal_ ? std::chrono::milliseconds(200) : std::chrono::seconds(5);
  if (now - last_draw_ >= period) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  draw(true);
}

void Progress::draw(bool final) {
  const double elapsed = std::max(seconds(), 1e-9);
  const double rate = double(done_) / elapsed;
  std::string line = label_ + "  ";
  if (total_ && *total_ > 0) {
    const double fraction = std::min(1.0, double(done_) / double(*total_));
    const int width = 24, filled = int(std::lround(fraction * width));
    if (terminal_) line += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    char percent[16];
    std::snprintf(percent, sizeof percent, "%3d%%  ", int(fraction * 100));
    line += percent + with_thousands(done_) + "/" + with_thousands(*total_);
  } else {
    line += with_thousands(done_);
  }
  line += "  " + with_thousands(uint64_t(rate)) + "/s";
  if (!final && total_ && rate > 0 && *total_ > done_) {
    line += "  ETA " + std::to_string(int64_t(double(*total_ - done_) / rate)) + "s";
  }
  if (final) line += "  in " + std::to_string(int64_t(std::lround(elapsed))) + "s";
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace bloch::tools
