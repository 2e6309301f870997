#pragma once

// The paper-exact circuit head (DESIGN §1, arXiv 2501.04591): a raw embedding x ∈ R^d is
// encoded one feature per qubit, zero-padded to d' = q·2^m qubits, and merged by m layers of
// pairwise 3-gate blocks down to q qubits. The output is one angle per qubit,
// ϑ_i ∈ [0, π/2], the state being cos ϑ_i|0> + sin ϑ_i|1>.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/HeadForwardKernels.h"
#include "index/ZyzGate.h"

namespace bloch {

class BinaryReader;
class BinaryWriter;

/// Dimensions of a head: d inputs, q outputs, padding d' = q·2^m with m = max(1, ⌈log2(d/q)⌉).
struct HeadShape {
  int d = 0;         ///< raw input dimension
  int q = 0;         ///< output qubits
  int padded_d = 0;  ///< d' = q·2^m: qubits entering the first layer (zero features pad x)
  int layers = 0;    ///< m = log2(d'/q)

  static HeadShape make(int d, int q);

  /// L = d'/q: input groups; output qubit i sees inputs i, i+q, …, i+(L−1)q.
  int groups() const { return padded_d / q; }
  /// Qubits entering layer l (l = 0 … m−1): d'/2^l.
  int layer_inputs(int l) const { return padded_d >> l; }
  /// Index of layer l's first raw parameter: 12·(d'/2 + d'/4 + … ) over earlier layers.
  size_t layer_param_offset(int l) const;
  /// 12·q·(L−1): the paper's count (all 12 parameters of every pair).
  size_t num_parameters() const { return size_t(kParamsPerPair) * q * (groups() - 1); }
  /// Qubit states of every layer (d' + d'/2 + … + q = 2d' − q): the trace training needs.
  size_t trace_size() const { return 2 * size_t(padded_d) - q; }
  /// "d=384 d'=512 (zero-padded +128) q=128 m=2 L=4 params=4608"
  std::string describe() const;
};

/// Encoding angle of one raw feature (DESIGN §1.1): θ = (tanh(x)+1)·π/2 and the state
/// cos(θ/2)|0> − sin(θ/2)|1> (phase φ = π), written as the real angle χ = −θ/2.
double input_qubit_angle(double x);

class CircuitHead {
 public:
  CircuitHead() = default;
  /// Raw parameters drawn i.i.d. N(0, 1) from a generator seeded with `seed`, as the reference.
  CircuitHead(int d, int q, uint64_t seed);

  const HeadShape& shape() const { return shape_; }
  int dim() const { return shape_.d; }
  int qubits() const { return shape_.q; }
  size_t num_parameters() const { return params_.size(); }

  const std::vector<float>& parameters() const { return params_; }
  /// Replaces all raw parameters (size must be num_parameters()) and rebuilds the gates.
  void set_parameters(std::vector<float> params);

  /// Angles ϑ ∈ [0, π/2] for n inputs: x is n×d, angles is n×q. Lane-batched
  /// (HeadForwardKernels.h), parallel over batches of kHeadLanes inputs (OpenMP).
  void forward(size_t n, const float* x, float* angles) const;

  /// The inference tables the lane kernels read; they point into this head and are valid until
  /// its parameters change.
  CircuitTables tables() const;

  /// Forward one input keeping every layer's qubit angles χ (shape().trace_size() doubles):
  /// trace[0 … d'−1] = encoded inputs, then each layer's outputs; the last q are the result.
  void forward_trace(const float* x, double* trace) const;

  /// Gates of pair `pair` in layer `layer` (pair < layer_inputs(layer)/2).
  const PairGates& gates(int layer, int pair) const;

  void serialize(BinaryWriter& out) const;
  static CircuitHead deserialize(BinaryReader& in);

  /// Standalone head files: magic, format version, shape, parameters, checksum.
  void save(const std::string& path) const;
  static CircuitHead load(const std::string& path);

 private:
  void rebuild_gates();

  HeadShape shape_;
  std::vector<float> params_;
  std::vector<PairGates> gates_;           // one per pair, layer by layer, same order as params_
  std::vector<double> lane_coefficients_;  // pair_coefficients(gates_): what inference reads
};

}  // namespace bloch
