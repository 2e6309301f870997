// The scalar (baseline x86-64) build of the lane-batched head forward pass and the run-time
// choice of kernel; see HeadForwardKernels.h.

#include "index/HeadForwardKernels.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <vector>

#include "index/FidelityKernels.h"
#include "index/HeadForwardKernelsImpl.h"

namespace bloch {

namespace detail {

void head_forward_lanes_scalar(const HeadTables& tables, int lanes, const float* x, float* angles,
                               double* scratch) {
  head_forward_lanes_impl(tables, lanes, x, angles, scratch);
}

}  // namespace detail

std::vector<double> pair_coefficients(const PairGates* gates, size_t pairs) {
  std::vector<double> out(size_t(kPairCoefficients) * pairs);
  for (size_t g = 0; g < pairs; ++g) {
    const Complex v[] = {gates[g].a.m[0], gates[g].a.m[1], gates[g].a.m[2], gates[g].a.m[3],
                         gates[g].b.m[2], gates[g].b.m[3], gates[g].c.m[2], gates[g].c.m[3]};
    for (int e = 0; e < 8; ++e) {
      out[size_t(2 * e) * pairs + g] = v[e].real();
      out[size_t(2 * e + 1) * pairs + g] = v[e].imag();
    }
  }
  return out;
}

size_t head_forward_scratch_size(const HeadTables& tables) {
  return 2 * size_t(tables.circuit.padded_dim) * kHeadLanes;
}

void head_forward_lanes(const HeadTables& tables, int lanes, const float* x, float* angles,
                        double* scratch) {
  FAISS_THROW_IF_NOT_FMT(lanes >= 1 && lanes <= kHeadLanes,
                         "head_forward_lanes: lanes=%d not in [1, %d]", lanes, kHeadLanes);
  FAISS_THROW_IF_NOT_MSG(tables.circuit.coefficients != nullptr && tables.circuit.qubits > 0,
                         "head_forward_lanes: empty circuit tables");
  FAISS_THROW_IF_NOT_FMT(tables.mixer.width == 0 || tables.mixer.width == tables.circuit.input_dim,
                         "head_forward_lanes: mixer width %d differs from circuit input %d",
                         tables.mixer.width, tables.circuit.input_dim);
  const detail::HeadForwardFn fn = for_active_simd_level<detail::HeadForwardFn>(
      detail::head_forward_lanes_scalar, detail::head_forward_lanes_avx2,
      detail::head_forward_lanes_avx512);
  fn(tables, lanes, x, angles, scratch);
}

void head_forward(const HeadTables& tables, size_t n, const float* x, float* angles) {
  const size_t d = size_t(tables.input_dim()), q = size_t(tables.circuit.qubits);
  const int64_t batches = int64_t((n + kHeadLanes - 1) / kHeadLanes);
#pragma omp parallel if (batches > 1)
  {
    std::vector<double> scratch(head_forward_scratch_size(tables));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < batches; ++b) {
      const size_t first = size_t(b) * kHeadLanes;
      const int lanes = int(std::min<size_t>(kHeadLanes, n - first));
      head_forward_lanes(tables, lanes, x + first * d, angles + first * q, scratch.data());
    }
  }
}

}  // namespace bloch
