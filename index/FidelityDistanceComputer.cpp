#include "index/FidelityDistanceComputer.h"

#include "index/FidelityKernels.h"
#include "index/IndexFidelityFlat.h"

namespace bloch {

FidelityDistanceComputer::FidelityDistanceComputer(const IndexFidelityFlat& index)
    : faiss::FlatCodesDistanceComputer(index.codes.data(), index.code_size),
      index_(index),
      query_(index.head(), index.codec()) {}

void FidelityDistanceComputer::set_query(const float* x) {
  query_.set_raw(x);
}

float FidelityDistanceComputer::distance_to_code(const uint8_t* code) {
  return query_.score(code);
}

float FidelityDistanceComputer::symmetric_dis(faiss::Index::idx_t i, faiss::Index::idx_t j) {
  return log_fidelity_code_pair(index_.codec(), codes + i * code_size, codes + j * code_size);
}

}  // namespace bloch
