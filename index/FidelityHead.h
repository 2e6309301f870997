#pragma once

// The head an index encodes with: the paper-exact CircuitHead alone, or a FeatureMixer in front
// of it, and a readout after it (DESIGN §1.7 extensions). Raw embedding x ∈ R^d ↦ angles
// ϑ ∈ [0, π/2]^q.
//
//   paper-exact : ϑ = circuit(x)                       12·q·(L−1) parameters
//   mixed       : ϑ = circuit(mixer(x)), circuit d = mixer width P
//                 B·log2(P)·P/2 + P + 12·q·(P'/q − 1) parameters (P' = circuit padding of P)
//   readout     : raw (the paper's, ϑ as above) or normalised (NormalizedReadout.h: the same
//                 angles moved onto a sphere around π/4; no parameters)
//
// A trained head also knows the range [lo_i, hi_i] its angles take on a sample
// (fit_angle_ranges): the codec() of its 4-bit codes spreads the 16 levels over that range.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <vector>

#include "index/CircuitHead.h"
#include "index/Codec.h"
#include "index/FeatureMixer.h"
#include "index/NormalizedReadout.h"

namespace bloch {

class BinaryReader;
class BinaryWriter;

/// Butterflies of a HeadSpec unless said otherwise. The paper-exact circuit alone (0) ranks
/// below raw cosine on frozen embeddings; three butterflies in front of it more than double its
/// nDCG@10 on the Debian dev split for 2.6× its parameters. Trained at the preferred batch and
/// step, six beat three by +0.011 to +0.018 nDCG@10 at q = 64 / 128 / 256 (3 seeds; q = 128,
/// one seed: 3 / 6 / 9 / 12 give 0.459 / 0.471 / 0.475 / 0.466) for 26 % less encoding
/// throughput (docs/QUALITY.md, docs/BENCHMARKS.md).
inline constexpr int kDefaultButterflies = 6;

/// What kind of head to build: the form a collection or a factory string names.
struct HeadSpec {
  int d = 0;                              ///< raw input dimension
  int q = 0;                              ///< output qubits
  int butterflies = kDefaultButterflies;  ///< 0: paper-exact (no mixer); B ≥ 1: B in front
  uint64_t seed = 1234;  ///< initial parameters (circuit N(0,1), mixer angles U(−π, π))
  /// kRaw with butterflies = 0 is the paper-exact head. The normalised readout lifts the
  /// three-butterfly head from nDCG@10 0.396 to 0.435 on the Debian dev split (q = 128, mean of
  /// 3 seeds, docs/QUALITY.md).
  Readout readout = kDefaultReadout;
  /// Lower bound on the mixer width P (a power of two ≥ max(d, 2q, this)); 0 means 2q. Output
  /// qubit i reads P/q mixed features through log2(P/q) circuit layers. Wider costs encoding
  /// time (O(P log P) per vector: 0.25× the throughput at P = 2,048, q = 256) and pays at
  /// large q: at q = 256 on the Debian set with three butterflies, P = 512 / 1,024 / 2,048 give
  /// nDCG@10 0.473 / 0.485 / 0.502 on one seed, and P = 2,048 0.499 over 3 seeds (at q = 128,
  /// 1,024 gains nothing over 512; docs/QUALITY.md). Ignored without a mixer.
  int min_mixer_width = 0;
};

class FidelityHead {
 public:
  FidelityHead() = default;
  /// The circuit alone: the paper-exact head with the raw readout.
  explicit FidelityHead(CircuitHead circuit, Readout readout = Readout::kRaw);
  /// Mixer in front of the circuit; circuit.dim() must equal mixer.width().
  FidelityHead(FeatureMixer mixer, CircuitHead circuit, Readout readout = Readout::kRaw);
  /// A fresh (untrained) head of the given form.
  static FidelityHead make(const HeadSpec& spec);

  int dim() const { return mixer_ ? mixer_->input_dim() : circuit_.dim(); }
  int qubits() const { return circuit_.qubits(); }
  bool has_mixer() const { return mixer_.has_value(); }
  Readout readout() const { return readout_; }
  /// The paper's head: no mixer, raw readout.
  bool paper_exact() const { return !mixer_ && readout_ == Readout::kRaw; }
  const FeatureMixer* mixer() const { return mixer_ ? &*mixer_ : nullptr; }
  FeatureMixer* mixer() { return mixer_ ? &*mixer_ : nullptr; }
  const CircuitHead& circuit() const { return circuit_; }
  CircuitHead& circuit() { return circuit_; }

  /// Every trained parameter: mixer (angles + scales) + circuit.
  size_t num_parameters() const;
  /// "paper-exact circuit d=384 d'=512 … params=4608" or "mixer d=384 P=512 butterflies=6 … +
  /// circuit …", with " (angle ranges fitted)" once fit_angle_ranges has run.
  std::string describe() const;

  /// Angles for n inputs (after the readout): x is n×d, angles n×q. Parallel over n (OpenMP)
  /// when n > 1.
  void forward(size_t n, const float* x, float* angles) const;

  /// Sets each qubit's angle range to the [min, max] of its angles on the n rows of x. Training
  /// moves the angles, so ranges are fitted after it (train_head_unsupervised does; a
  /// supervised caller fits on the documents it trained with). Changing the parameters through
  /// FidelityHeadModel clears them.
  void fit_angle_ranges(size_t n, const float* x);
  /// Per-qubit ranges (q lows ≤ highs in [0, π/2]), or none: empty vectors.
  void set_angle_ranges(std::vector<float> low, std::vector<float> high);
  void clear_angle_ranges() { set_angle_ranges({}, {}); }
  bool has_angle_ranges() const { return !angle_low_.empty(); }
  const std::vector<float>& angle_low() const { return angle_low_; }
  const std::vector<float>& angle_high() const { return angle_high_; }
  /// The codec for this head's codes of `type`. 4-bit codes use the fitted ranges when there
  /// are any: with the normalised readout (angles within a few ρ/√q of π/4) full-range 4-bit
  /// codes lose 0.102 nDCG@10 against 8-bit at q = 256 on the Debian set, fitted ranges 0.009
  /// (3 seeds, docs/QUALITY.md). 8-bit and float codes span [0, π/2]: with a mixer 8-bit codes
  /// already score within 0.002 of float angles.
  Codec codec(CodeType type) const;

  bool operator==(const FidelityHead& other) const;

  void serialize(BinaryWriter& out) const;
  static FidelityHead deserialize(BinaryReader& in);
  /// Standalone head files: magic, format version, head, checksum.
  void save(const std::string& path) const;
  static FidelityHead load(const std::string& path);
  /// The bytes of a head file, and back; `what` names the source in error messages. A short,
  /// corrupted or foreign record is refused.
  std::string to_bytes() const;
  static FidelityHead from_bytes(std::string_view bytes, const std::string& what);

 private:
  std::optional<FeatureMixer> mixer_;
  CircuitHead circuit_;
  Readout readout_ = Readout::kRaw;
  std::vector<float> angle_low_, angle_high_;
};

}  // namespace bloch
