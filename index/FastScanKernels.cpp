// The quantised fast-scan table, the block layout and the scalar reference kernel; the SIMD
// kernels are in FastScanKernels{Avx2,Avx512}.cpp. See FastScanKernels.h for the formulas.

#include "index/FastScanKernels.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numbers>

#include "index/Codec.h"
#include "index/FidelityKernels.h"

namespace bloch {

void build_fast_scan_table(const Codec& codec, const float* query_angles, float floor,
                           FastScanTable* table) {
  FAISS_THROW_IF_NOT_FMT(codec.type() == CodeType::k4bit && codec.qubits() >= 1,
                         "build_fast_scan_table: needs a 4-bit codec with qubits, not %s q=%d",
                         code_type_name(codec.type()), codec.qubits());
  FAISS_THROW_IF_NOT_FMT(floor <= 0, "build_fast_scan_table: floor=%g must be ≤ 0", floor);
  FAISS_THROW_IF_NOT_MSG(query_angles != nullptr && table != nullptr,
                         "build_fast_scan_table: null query or table");
  constexpr int kLevels = 16;
  const int q = codec.qubits();
  // The exact 4-bit table T[i][k] = log max(cos²(ϑ_i − lo_i − k·step_i), ε), the one the
  // exact-table scan uses, then clamped at `floor`.
  std::vector<float> exact(size_t(q) * kLevels);
  compute_fidelity_table(codec, query_angles, exact.data());
  const double clamp = std::max(double(floor), std::log(kFidelityFloor));
  std::vector<double> lo(q);
  double max_range = 0;
  for (int i = 0; i < q; ++i) {
    double row_lo = 0, row_hi = clamp;
    for (int k = 0; k < kLevels; ++k) {
      const double t = std::max(double(exact[size_t(i) * kLevels + k]), clamp);
      row_lo = std::min(row_lo, t);
      row_hi = std::max(row_hi, t);
    }
    lo[i] = row_lo;
    max_range = std::max(max_range, row_hi - row_lo);
  }
  // The largest entry M keeps q·M inside a uint16 lane.
  const int max_entry = std::min(255, 65535 / q);
  table->qubits = q;
  table->groups = (q + 1) / 2;
  table->scale = max_range > 0 ? max_entry / max_range : 1.0;
  table->bias = 0;
  for (int i = 0; i < q; ++i) table->bias += lo[i];
  table->lut.assign(size_t(2 * table->groups) * 32, 0);
  for (int i = 0; i < q; ++i) {
    uint8_t* row = table->lut.data() + size_t(i) * 32;
    for (int k = 0; k < kLevels; ++k) {
      // Entries are ≥ lo_i, so rounding half up by truncation equals std::round (which is a
      // libm call on baseline x86-64, and was a sixth of this function's time).
      const double t = std::max(double(exact[size_t(i) * kLevels + k]), clamp);
      const double e = (t - lo[i]) * table->scale;
      row[k] = row[k + 16] = uint8_t(std::min(uint32_t(e + 0.5), uint32_t(max_entry)));
    }
  }
}

void fast_scan_pack(const uint8_t* codes, size_t code_size, size_t first, size_t n,
                    std::vector<uint8_t>* blocks) {
  FAISS_THROW_IF_NOT_MSG(code_size > 0 && blocks != nullptr, "fast_scan_pack: bad arguments");
  const size_t block_bytes = fast_scan_block_bytes(code_size);
  const size_t nblocks = (first + n + kFastScanBlock - 1) / kFastScanBlock;
  if (blocks->size() < nblocks * block_bytes) blocks->resize(nblocks * block_bytes, 0);
  for (size_t v = 0; v < n; ++v) {
    const size_t i = first + v;
    uint8_t* block = blocks->data() + (i / kFastScanBlock) * block_bytes + i % kFastScanBlock;
    const uint8_t* code = codes + v * code_size;
    for (size_t p = 0; p < code_size; ++p) block[p * kFastScanBlock] = code[p];
  }
}

void fast_scan_unpack(const uint8_t* blocks, size_t code_size, size_t i, uint8_t* code) {
  const uint8_t* block =
      blocks + (i / kFastScanBlock) * fast_scan_block_bytes(code_size) + i % kFastScanBlock;
  for (size_t p = 0; p < code_size; ++p) code[p] = block[p * kFastScanBlock];
}

namespace detail {

void fast_scan_accumulate_scalar(const uint8_t* lut, int groups, const uint8_t* blocks,
                                 size_t nblocks, uint16_t* sums) {
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * kFastScanBlock * size_t(groups);
    for (size_t j = 0; j < kFastScanBlock; ++j) {
      uint32_t sum = 0;
      for (int p = 0; p < groups; ++p) {
        const uint8_t byte = block[size_t(p) * kFastScanBlock + j];
        sum += lut[size_t(2 * p) * 32 + (byte & 0xF)] + lut[size_t(2 * p + 1) * 32 + (byte >> 4)];
      }
      sums[b * kFastScanBlock + j] = uint16_t(sum);
    }
  }
}

}  // namespace detail

void fast_scan_accumulate(const FastScanTable& table, const uint8_t* blocks, size_t nblocks,
                          uint16_t* sums) {
  FAISS_THROW_IF_NOT_MSG(table.groups > 0 && table.lut.size() == size_t(table.groups) * 64,
                         "fast_scan_accumulate: table not built (build_fast_scan_table)");
  FAISS_THROW_IF_NOT_MSG(nblocks == 0 || (blocks != nullptr && sums != nullptr),
                         "fast_scan_accumulate: null blocks or sums");
  const detail::FastScanFn fn = for_active_simd_level<detail::FastScanFn>(
      detail::fast_scan_accumulate_scalar, detail::fast_scan_accumulate_avx2,
      detail::fast_scan_accumulate_avx512);
  fn(table.lut.data(), table.groups, blocks, nblocks, sums);
}

}  // namespace bloch
