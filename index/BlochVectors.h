#pragma once

// Bloch vectors of head angles (DESIGN §1.5, §3): qubit i with angle ϑ_i is the unit vector
// b_i = (sin 2ϑ_i, cos 2ϑ_i), and its fidelity with another qubit is
//
//   cos²(ϑ_i − ϑ'_i) = (1 + cos 2(ϑ_i − ϑ'_i))/2 = (1 + b_i·b'_i)/2.
//
// A code's concatenated Bloch vector B = (b_1, …, b_q) ∈ R^{2q} has |B|² = q, so
//
//   |B − B'|² = 2q − 2 Σ_i b_i·b'_i = 4 Σ_i (1 − cos²(ϑ_i − ϑ'_i)),
//
// four times the summed per-qubit infidelity: L2 k-means on Bloch vectors groups codes of high
// per-qubit fidelity, which is why the IVF coarse quantizer lives in this space.

#include <cstddef>

namespace bloch {

/// out (n × 2q) = concatenated Bloch vectors of angles (n × q): out[2i] = sin 2ϑ_i,
/// out[2i+1] = cos 2ϑ_i for every row.
void bloch_vectors(size_t n, int q, const float* angles, float* out);

}  // namespace bloch
