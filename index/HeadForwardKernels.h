#pragma once

// Lane-batched inference of a head (FidelityHead.h): kHeadLanes inputs at a time, every qubit
// and every mixer feature held as kHeadLanes doubles side by side, so each rotation, gate and
// square root of the forward pass is one SIMD operation over the lanes.
//
// The arithmetic is that of the per-sample reference (FeatureMixer::forward, then
// CircuitHead::forward_trace): the same rotations, the DESIGN §1.3 closed form per pair, and
// the encoding amplitudes of DESIGN §1.1,
//
//   χ = −(1 + tanh x)·π/4,  tanh x = 1 − 2/(e^{2x} + 1),
//
// with e^{2x} and cos/sin of β = (π/4)·tanh x computed by polynomials (exact to a few ulp),
// not by libm, so that the lanes vectorise. The kernel files are compiled without FMA
// contraction, so the scalar, AVX2 and AVX-512 kernels round identically and return the same
// bits (a code does not depend on the CPU that encoded it).

#include <cstddef>
#include <vector>

#include "index/ZyzGate.h"

namespace bloch {

/// Inputs per kernel call.
inline constexpr int kHeadLanes = 8;

/// The mixer's inference tables (FeatureMixer.h), borrowed from the mixer; width 0: no mixer.
struct MixerTables {
  int input_dim = 0;  ///< d
  int width = 0;      ///< P = 2^log2_width
  int log2_width = 0;
  int stages = 0;                   ///< B·log2(P) rotation stages of P/2 pairs each
  const double* mean = nullptr;     ///< d
  const double* inv_std = nullptr;  ///< d
  const double* cos = nullptr;      ///< stages × P/2
  const double* sin = nullptr;      ///< stages × P/2
  const double* scale = nullptr;    ///< P
};

/// The 16 real coefficients of a pair's closed form (DESIGN §1.3) the kernels read: both rows
/// of U_a, and the second rows of U_b and U_c, real and imaginary parts.
enum PairCoefficient : int {
  kA00r,
  kA00i,
  kA01r,
  kA01i,
  kA10r,
  kA10i,
  kA11r,
  kA11i,
  kB10r,
  kB10i,
  kB11r,
  kB11i,
  kC10r,
  kC10i,
  kC11r,
  kC11i,
  kPairCoefficients
};

/// Coefficients of `pairs` pairs, structure of arrays: coefficient m of pair g at
/// out[m·pairs + g] (a run of pairs reads each coefficient from contiguous memory).
std::vector<double> pair_coefficients(const PairGates* gates, size_t pairs);

/// The circuit's inference tables (CircuitHead.h), borrowed from the circuit.
struct CircuitTables {
  int input_dim = 0;   ///< inputs fed to the circuit (d, or the mixer width)
  int padded_dim = 0;  ///< d' = q·2^layers
  int layers = 0;
  int qubits = 0;
  size_t pairs = 0;                      ///< d' − q, layer by layer
  const double* coefficients = nullptr;  ///< pair_coefficients() of the pairs
};

struct HeadTables {
  MixerTables mixer;
  CircuitTables circuit;
  /// Raw input dimension of x.
  int input_dim() const { return mixer.width > 0 ? mixer.input_dim : circuit.input_dim; }
};

/// Doubles of scratch one call needs.
size_t head_forward_scratch_size(const HeadTables& tables);

/// Angles (lanes × q floats, row-major) of lanes ≤ kHeadLanes inputs x (lanes × d floats,
/// row-major). The SIMD level is active_simd_level().
void head_forward_lanes(const HeadTables& tables, int lanes, const float* x, float* angles,
                        double* scratch);

/// Angles (n × q) of n inputs (n × d): batches of kHeadLanes through head_forward_lanes,
/// parallel over batches (OpenMP) when there is more than one.
void head_forward(const HeadTables& tables, size_t n, const float* x, float* angles);

namespace detail {

using HeadForwardFn = void (*)(const HeadTables&, int, const float*, float*, double*);
void head_forward_lanes_scalar(const HeadTables&, int, const float*, float*, double*);
void head_forward_lanes_avx2(const HeadTables&, int, const float*, float*, double*);
void head_forward_lanes_avx512(const HeadTables&, int, const float*, float*, double*);

}  // namespace detail

}  // namespace bloch
