#include "index/FidelityQuery.h"

#include "index/FidelityKernels.h"

namespace bloch {

FidelityQuery::FidelityQuery(const FidelityHead& head, const Codec& codec)
    : head_(&head), codec_(&codec), angles_(head.qubits()) {
  if (codec.type() != CodeType::kFloat) table_.resize(size_t(codec.qubits()) * codec.levels());
}

void FidelityQuery::set_raw(const float* x) {
  head_->forward(1, x, angles_.data());
  set_angles(angles_.data());
}

void FidelityQuery::set_angles(const float* angles) {
  if (angles != angles_.data()) angles_.assign(angles, angles + angles_.size());
  if (!table_.empty()) compute_fidelity_table(*codec_, angles_.data(), table_.data());
}

void FidelityQuery::scan(const uint8_t* codes, size_t n, float* out) const {
  log_fidelity_scan(*codec_, angles_.data(), table_.empty() ? nullptr : table_.data(), codes, n,
                    out);
}

float FidelityQuery::score(const uint8_t* code) const {
  float s;
  scan(code, 1, &s);
  return s;
}

}  // namespace bloch
