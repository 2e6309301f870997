// Dispatch and the non-SIMD parts of the log-fidelity kernels (DESIGN §1.5): the per-query
// tables, the symmetric code-vs-code score and the double reference. The per-ISA kernels live
// in FidelityKernels{Scalar,Avx2,Avx512}.cpp behind detail::KernelSet.

#include "index/FidelityKernels.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numbers>
#include <string_view>
#include <vector>

#include "index/FidelityKernelsImpl.h"

namespace bloch {

namespace {

SimdLevel detect() {
  // The AVX-512 file is compiled with F/BW/VL/DQ/VBMI (index/CMakeLists.txt): require all of
  // them, so code the compiler may have auto-vectorised with any of them is safe to run.
  // __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma"))
    return SimdLevel::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return SimdLevel::kAvx2;
  return SimdLevel::kScalar;
}

SimdLevel clamp_level(SimdLevel level) {
  return SimdLevel(std::clamp(int(level), int(SimdLevel::kScalar), int(detected_simd_level())));
}

// The first use reads BLOCH_SIMD; an unknown value is reported once and ignored.
SimdLevel initial_level() {
  SimdLevel level = detected_simd_level();
  if (const char* env = std::getenv("BLOCH_SIMD")) {
    const std::string_view name(env);
    if (name == "scalar")
      level = SimdLevel::kScalar;
    else if (name == "avx2")
      level = SimdLevel::kAvx2;
    else if (name == "avx512")
      level = SimdLevel::kAvx512;
    else
      std::fprintf(stderr, "bloch: ignoring BLOCH_SIMD=%s (expected scalar, avx2 or avx512)\n",
                   env);
  }
  return clamp_level(level);
}

std::atomic<int>& level_slot() {
  static std::atomic<int> slot{int(initial_level())};
  return slot;
}

const detail::KernelSet& kernels() {
  switch (SimdLevel(level_slot().load(std::memory_order_relaxed))) {
    case SimdLevel::kAvx512:
      return detail::kAvx512Kernels;
    case SimdLevel::kAvx2:
      return detail::kAvx2Kernels;
    case SimdLevel::kScalar:
      break;
  }
  return detail::kScalarKernels;
}

void check_scan_args(const Codec& codec, const float* query_angles, const float* table,
                     const uint8_t* codes, size_t n, float* out) {
  FAISS_THROW_IF_NOT_MSG(codec.qubits() > 0, "fidelity kernel: codec has no qubits");
  FAISS_THROW_IF_NOT_MSG(n == 0 || (codes != nullptr && out != nullptr),
                         "fidelity kernel: null codes or output");
  if (codec.type() == CodeType::kFloat)
    FAISS_THROW_IF_NOT_MSG(query_angles != nullptr,
                           "fidelity kernel: float codes need the query angles");
  else
    FAISS_THROW_IF_NOT_MSG(table != nullptr,
                           "fidelity kernel: quantised codes need the query's table "
                           "(compute_fidelity_table)");
}

// Symmetric table D[d] = log max(cos²(d·step), ε) for level differences d = |k − k'|,
// computed once per bit width in double (DESIGN §1.5, symmetric form).
template <int kLevels>
const std::array<float, kLevels>& difference_table() {
  static const std::array<float, kLevels> table = [] {
    std::array<float, kLevels> t{};
    const double step = (std::numbers::pi / 2) / (kLevels - 1);
    for (int d = 0; d < kLevels; ++d) t[d] = float(detail::log_fidelity_term(d * step, 0.0));
    return t;
  }();
  return table;
}

// Long 4-bit scans reuse the 8-bit kernels: byte j of a 4-bit code holds qubits 2j and 2j+1,
// so with the pair table P[j·256 + b] = T[2j·16 + (b & 0xF)] + T[(2j+1)·16 + (b >> 4)] (the
// last byte of an odd q has no high qubit) a 4-bit code of q qubits scores as an 8-bit code
// of ⌈q/2⌉ "qubits": half the look-ups, and the fast 8-bit scan (docs/BENCHMARKS.md). Building
// P costs ⌈q/2⌉·256 adds, repaid from a few thousand codes on. Each pair sum is rounded once
// to float (≤ 2e−6), well inside kKernelTolerance. The scalar level keeps the direct form:
// it is the reference the others are tested against.
constexpr size_t kPairTableMinCodes = 4 * 1024;

void scan_4bit_as_pairs(const detail::KernelSet& k, const float* table, int q, const uint8_t* codes,
                        size_t n, float* out) {
  const int pairs = (q + 1) / 2;
  std::vector<float> pair_table(size_t(pairs) * 256);
  for (int j = 0; j < pairs; ++j) {
    const float* lo = table + size_t(2 * j) * 16;
    const float* hi = 2 * j + 1 < q ? table + size_t(2 * j + 1) * 16 : nullptr;
    for (int b = 0; b < 256; ++b)
      pair_table[size_t(j) * 256 + b] = lo[b & 0xF] + (hi ? hi[b >> 4] : 0.0f);
  }
  k.scan_8bit(pair_table.data(), pairs, codes, n, out);
}

}  // namespace

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return "scalar";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "?";
}

SimdLevel detected_simd_level() {
  static const SimdLevel level = detect();
  return level;
}

SimdLevel active_simd_level() {
  return SimdLevel(level_slot().load(std::memory_order_relaxed));
}

SimdLevel set_simd_level(SimdLevel level) {
  const SimdLevel set = clamp_level(level);
  level_slot().store(int(set), std::memory_order_relaxed);
  return set;
}

void compute_fidelity_table(const Codec& codec, const float* query_angles, float* table) {
  FAISS_THROW_IF_NOT_MSG(codec.type() != CodeType::kFloat,
                         "compute_fidelity_table: float codes have no table");
  FAISS_THROW_IF_NOT_MSG(codec.qubits() > 0, "compute_fidelity_table: codec has no qubits");
  FAISS_THROW_IF_NOT_MSG(query_angles != nullptr && table != nullptr,
                         "compute_fidelity_table: null query or table");
  const int q = codec.qubits();
  const int levels = codec.levels();
  // cos(ϑ − lo − k·step) = cos(ϑ − lo)·cos(k·step) + sin(ϑ − lo)·sin(k·step), with the codec's
  // per-level cos/sin: 2 trig calls per qubit instead of one per entry. In double the sum's
  // absolute error is ~1e−16, so entries stay exact to float precision down to cos² = ε =
  // 1e−12 (|cos| = 1e−6).
  for (int i = 0; i < q; ++i) {
    const double a = double(query_angles[i]) - codec.qubit_low(i);
    const double c = std::cos(a), s = std::sin(a);
    const double* level_cos = codec.level_cos(i);
    const double* level_sin = codec.level_sin(i);
    float* row = table + size_t(i) * levels;
    for (int k = 0; k < levels; ++k) {
      // The entry is stored as a float, so the log is taken in float (logf: within 1 ulp, and
      // ~3× cheaper than a double log); cos² ≥ ε = 1e−12 is well inside float's range.
      const double f = c * level_cos[k] + s * level_sin[k];
      row[k] = std::log(std::max(float(f * f), float(kFidelityFloor)));
    }
  }
}

void log_fidelity_scan(const Codec& codec, const float* query_angles, const float* table,
                       const uint8_t* codes, size_t n, float* out) {
  check_scan_args(codec, query_angles, table, codes, n, out);
  if (n == 0) return;
  const detail::KernelSet& k = kernels();
  const int q = codec.qubits();
  switch (codec.type()) {
    case CodeType::kFloat:
      return k.scan_float(query_angles, q, codes, n, out);
    case CodeType::k8bit:
      return k.scan_8bit(table, q, codes, n, out);
    case CodeType::k4bit:
      if (n >= kPairTableMinCodes && active_simd_level() != SimdLevel::kScalar)
        return scan_4bit_as_pairs(k, table, q, codes, n, out);
      return k.scan_4bit(table, q, codes, n, out);
  }
}

void log_fidelity_gather(const Codec& codec, const float* query_angles, const float* table,
                         const uint8_t* codes, const int64_t* ids, size_t n, float* out) {
  check_scan_args(codec, query_angles, table, codes, n, out);
  if (n == 0) return;
  FAISS_THROW_IF_NOT_MSG(ids != nullptr, "log_fidelity_gather: null ids");
  // One pass over the ids is cheap next to q look-ups per id, and turns a −1 (FAISS's
  // "no result") into an error instead of a read before the codes.
  FAISS_THROW_IF_NOT_MSG(std::all_of(ids, ids + n, [](int64_t id) { return id >= 0; }),
                         "log_fidelity_gather: negative id");
  const detail::KernelSet& k = kernels();
  const int q = codec.qubits();
  switch (codec.type()) {
    case CodeType::kFloat:
      return k.gather_float(query_angles, q, codes, ids, n, out);
    case CodeType::k8bit:
      return k.gather_8bit(table, q, codes, ids, n, out);
    case CodeType::k4bit:
      return k.gather_4bit(table, q, codes, ids, n, out);
  }
}

float log_fidelity_code_pair(const Codec& codec, const uint8_t* a, const uint8_t* b) {
  FAISS_THROW_IF_NOT_MSG(codec.qubits() > 0, "log_fidelity_code_pair: codec has no qubits");
  FAISS_THROW_IF_NOT_MSG(a != nullptr && b != nullptr, "log_fidelity_code_pair: null code");
  const int q = codec.qubits();
  if (codec.type() == CodeType::kFloat) {
    // The exact kernel wants the query as aligned floats; a code may sit at any offset.
    constexpr int kStack = 1024;
    float stack_buf[kStack];
    std::vector<float> heap_buf;
    float* query = stack_buf;
    if (q > kStack) {
      heap_buf.resize(q);
      query = heap_buf.data();
    }
    std::memcpy(query, a, 4 * size_t(q));
    float out;
    kernels().scan_float(query, q, b, 1, &out);
    return out;
  }
  // Σ_i D[|k_i − k'_i|]: a table of level differences, so no per-query table is needed; one
  // for every qubit unless the codec is ranged (each qubit's own step).
  double sum = 0;
  if (codec.ranged()) {
    const std::span<const float> d = codec.difference_table();
    const size_t levels = size_t(codec.levels());
    for (int i = 0; i < q; ++i)
      sum += d[size_t(i) * levels + size_t(std::abs(codec.level(a, i) - codec.level(b, i)))];
  } else if (codec.type() == CodeType::k8bit) {
    const auto& d = difference_table<256>();
    for (int i = 0; i < q; ++i) sum += d[std::abs(int(a[i]) - int(b[i]))];
  } else {
    const auto& d = difference_table<16>();
    for (int i = 0; i < q; ++i) sum += d[std::abs(codec.level(a, i) - codec.level(b, i))];
  }
  return float(sum);
}

double log_fidelity_reference(const float* a, const float* b, int q) {
  FAISS_THROW_IF_NOT_MSG(q >= 0 && (q == 0 || (a != nullptr && b != nullptr)),
                         "log_fidelity_reference: bad arguments");
  double sum = 0;
  for (int i = 0; i < q; ++i) sum += detail::log_fidelity_term(a[i], b[i]);
  return sum;
}

}  // namespace bloch
