// The lane-batched head forward pass (HeadForwardKernels.h) compiled for AVX512
// (index/CMakeLists.txt); called only when the CPU has it.

#include "index/HeadForwardKernelsImpl.h"

namespace bloch::detail {

void head_forward_lanes_avx512(const HeadTables& tables, int lanes, const float* x, float* angles,
                               double* scratch) {
  head_forward_lanes_impl(tables, lanes, x, angles, scratch);
}

}  // namespace bloch::detail
