// Scalar reference kernels (DESIGN §1.5). They define the scores the SIMD kernels must match
// within kKernelTolerance·q, and serve CPUs without AVX2. Accuracy over speed: the exact kernel
// works in double with std::cos/std::log, the look-up kernels add float table entries into
// double accumulators, so a score's only float rounding is that of the table entries and of
// the final result.

#include <algorithm>
#include <cmath>
#include <cstring>

#include "index/FidelityKernels.h"
#include "index/FidelityKernelsImpl.h"

namespace bloch::detail {

double log_fidelity_term(double a, double b) {
  const double c = std::cos(a - b);
  return std::log(std::max(c * c, kFidelityFloor));
}

namespace {

// Float codes may sit at any byte offset: memcpy avoids misaligned float loads.
float exact_score(const float* query, int q, const uint8_t* code) {
  double sum = 0;
  for (int i = 0; i < q; ++i) {
    float b;
    std::memcpy(&b, code + 4 * size_t(i), 4);
    sum += log_fidelity_term(query[i], b);
  }
  return float(sum);
}

// Σ_i T[i·256 + code[i]]; four accumulators hide the latency of the double adds.
float score_8bit(const float* table, int q, const uint8_t* code) {
  double s[4] = {0, 0, 0, 0};
  int i = 0;
  for (; i + 4 <= q; i += 4)
    for (int u = 0; u < 4; ++u) s[u] += table[size_t(i + u) * 256 + code[i + u]];
  for (; i < q; ++i) s[0] += table[size_t(i) * 256 + code[i]];
  return float((s[0] + s[1]) + (s[2] + s[3]));
}

// Byte j holds qubit 2j (low nibble) and 2j+1 (high nibble); odd q leaves the last high
// nibble unused.
float score_4bit(const float* table, int q, const uint8_t* code) {
  double s0 = 0, s1 = 0;
  const int pairs = q / 2;
  for (int j = 0; j < pairs; ++j) {
    s0 += table[size_t(2 * j) * 16 + (code[j] & 0xF)];
    s1 += table[size_t(2 * j + 1) * 16 + (code[j] >> 4)];
  }
  if (q & 1) s0 += table[size_t(q - 1) * 16 + (code[pairs] & 0xF)];
  return float(s0 + s1);
}

void scan_float(const float* query, int q, const uint8_t* codes, size_t n, float* out) {
  const size_t cs = 4 * size_t(q);
  for (size_t v = 0; v < n; ++v) out[v] = exact_score(query, q, codes + v * cs);
}

void gather_float(const float* query, int q, const uint8_t* codes, const int64_t* ids, size_t n,
                  float* out) {
  const size_t cs = 4 * size_t(q);
  for (size_t v = 0; v < n; ++v) out[v] = exact_score(query, q, codes + size_t(ids[v]) * cs);
}

void scan_8bit(const float* table, int q, const uint8_t* codes, size_t n, float* out) {
  for (size_t v = 0; v < n; ++v) out[v] = score_8bit(table, q, codes + v * size_t(q));
}

void gather_8bit(const float* table, int q, const uint8_t* codes, const int64_t* ids, size_t n,
                 float* out) {
  for (size_t v = 0; v < n; ++v) out[v] = score_8bit(table, q, codes + size_t(ids[v]) * q);
}

void scan_4bit(const float* table, int q, const uint8_t* codes, size_t n, float* out) {
  const size_t cs = (size_t(q) + 1) / 2;
  for (size_t v = 0; v < n; ++v) out[v] = score_4bit(table, q, codes + v * cs);
}

void gather_4bit(const float* table, int q, const uint8_t* codes, const int64_t* ids, size_t n,
                 float* out) {
  const size_t cs = (size_t(q) + 1) / 2;
  for (size_t v = 0; v < n; ++v) out[v] = score_4bit(table, q, codes + size_t(ids[v]) * cs);
}

}  // namespace

const KernelSet kScalarKernels = {scan_float,  gather_float, scan_8bit,
                                  gather_8bit, scan_4bit,    gather_4bit};

}  // namespace bloch::detail
