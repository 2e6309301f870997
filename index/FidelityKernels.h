#pragma once

// Log-fidelity kernels (DESIGN §1.5): the score of a query against n stored codes.
//
//   ℓ(query, code) = Σ_i log max(cos²(ϑ_i − ϑ'_i), ε),   ε = kFidelityFloor = 1e−12
//
// A sum of logs never underflows (a product of q cos² terms does, for q ≥ ~100 dissimilar
// qubits). Two forms:
//   - exact: the code holds float angles ϑ' (CodeType::kFloat);
//   - look-up: the code holds B-bit levels k_i; a per-query table
//       T[i·K + k] = log max(cos²(ϑ_i − lo_i − k·step_i), ε),  K = 2^B
//     (lo_i = 0 and step_i = (π/2)/(K − 1) unless the codec is ranged, Codec.h),
//     turns the score into Σ_i T[i·K + k_i] (asymmetric: exact query, quantised codes).
//
// Every kernel has a scalar reference; AVX2 and AVX-512 versions are chosen at run time
// (SimdLevel) and agree with the scalar reference within kKernelTolerance per score.

#include <cstddef>
#include <cstdint>

#include "index/Codec.h"

namespace bloch {

/// ε: the floor of every per-qubit cos² term, so an orthogonal qubit costs log ε = −27.63.
inline constexpr double kFidelityFloor = 1e-12;

/// Absolute tolerance between a SIMD score and the scalar reference score, relative to the
/// number of qubits: |simd − scalar| ≤ kKernelTolerance · q (float rounding of q terms).
inline constexpr double kKernelTolerance = 1e-5;

enum class SimdLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

/// "scalar", "avx2", "avx512".
const char* simd_level_name(SimdLevel level);
/// The best level this CPU supports (cpuid, checked once).
SimdLevel detected_simd_level();
/// The level the kernels use: detected_simd_level() unless lowered by set_simd_level() or the
/// BLOCH_SIMD environment variable ("scalar", "avx2", "avx512"). Levels above what the CPU
/// supports are clamped down.
SimdLevel active_simd_level();
/// Overrides the level (tests and benchmarks compare levels in one process); returns the
/// level actually set after clamping to the CPU's support.
SimdLevel set_simd_level(SimdLevel level);

/// The one of three per-level kernels that active_simd_level() selects.
template <typename Fn>
Fn for_active_simd_level(Fn scalar, Fn avx2, Fn avx512) {
  switch (active_simd_level()) {
    case SimdLevel::kAvx512:
      return avx512;
    case SimdLevel::kAvx2:
      return avx2;
    case SimdLevel::kScalar:
      break;
  }
  return scalar;
}

/// Per-query look-up table for a quantised codec: table has q·levels() floats,
/// table[i·K + k] = log max(cos²(query[i] − lo_i − k·step_i), ε) (the codec's level angles).
void compute_fidelity_table(const Codec& codec, const float* query_angles, float* table);

/// Scores n codes of `codec` against one query. `query_angles` (q floats) is used by the
/// exact (float-code) kernel; `table` (from compute_fidelity_table) by the look-up kernels —
/// pass the one the codec needs, the other may be null. out[j] = ℓ(query, code j).
void log_fidelity_scan(const Codec& codec, const float* query_angles, const float* table,
                       const uint8_t* codes, size_t n, float* out);

/// Scores of an arbitrary list of codes (codes + ids[j]·code_size), same semantics as
/// log_fidelity_scan; used by graph walks and re-ranking.
void log_fidelity_gather(const Codec& codec, const float* query_angles, const float* table,
                         const uint8_t* codes, const int64_t* ids, size_t n, float* out);

/// ℓ between two codes of the same codec (symmetric form, used to build graphs):
/// quantised codes use the one shared table of |k − k'| differences.
float log_fidelity_code_pair(const Codec& codec, const uint8_t* a, const uint8_t* b);

/// Reference scalar score of two angle vectors, in double: Σ log max(cos²(a_i − b_i), ε).
double log_fidelity_reference(const float* a, const float* b, int q);

}  // namespace bloch
