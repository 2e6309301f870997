#pragma once

// Internal to the fidelity kernels (FidelityKernels*.cpp): one set of kernels per instruction
// set, each compiled in its own translation unit with that ISA's flags (index/CMakeLists.txt)
// and chosen at run time by FidelityKernels.cpp. Callers use index/FidelityKernels.h.
//
// Conventions shared by every set (preconditions are checked once by the public entry points,
// never here):
//   - q ≥ 1 qubits; code sizes follow Codec: 4q bytes (float), q bytes (8-bit), ⌈q/2⌉ bytes
//     (4-bit, qubit 2j in the low nibble of byte j); codes need no alignment.
//   - float kernels take the q query angles; look-up kernels take the q·2^B table of
//     compute_fidelity_table (2^B = 256 or 16 floats per qubit).
//   - gather kernels score codes + ids[j]·code_size with ids[j] ≥ 0.
//   - kernels are single-threaded: the index parallelises over queries.

#include <cstddef>
#include <cstdint>

namespace bloch::detail {

using ScanFloatFn = void (*)(const float* query, int q, const uint8_t* codes, size_t n, float* out);
using GatherFloatFn = void (*)(const float* query, int q, const uint8_t* codes, const int64_t* ids,
                               size_t n, float* out);
using ScanTableFn = void (*)(const float* table, int q, const uint8_t* codes, size_t n, float* out);
using GatherTableFn = void (*)(const float* table, int q, const uint8_t* codes, const int64_t* ids,
                               size_t n, float* out);

struct KernelSet {
  ScanFloatFn scan_float;
  GatherFloatFn gather_float;
  ScanTableFn scan_8bit;
  GatherTableFn gather_8bit;
  ScanTableFn scan_4bit;
  GatherTableFn gather_4bit;
};

extern const KernelSet kScalarKernels;
extern const KernelSet kAvx2Kernels;
extern const KernelSet kAvx512Kernels;

/// log max(cos²(a − b), ε) in double: the per-qubit term of the exact score.
double log_fidelity_term(double a, double b);

}  // namespace bloch::detail
