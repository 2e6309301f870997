#pragma once

// 4-bit fast scan (DESIGN §3): approximate log-fidelity of one query against many 4-bit codes
// with in-register table look-ups (the idea of FAISS's PQ4 fast scan, written for fidelity
// codes; Debian's FAISS is built without AVX2, and its kernels know nothing of our tables).
//
// The exact look-up score of a 4-bit code is ℓ = Σ_i T[i][k_i] with 16 float entries per qubit
// (FidelityKernels.h). The fast scan quantises each query's table to bytes,
//
//   E[i][k] = round((max(T[i][k], floor) − lo_i) · s),   lo_i = min_k max(T[i][k], floor),
//   s = M / max_i (max_k T[i][k] − lo_i),                 M = min(255, ⌊65535 / q⌋),
//
// so that ℓ ≈ Σ_i lo_i + (Σ_i E[i][k_i]) / s and the byte sum fits a uint16 lane. A 16-entry
// row fits one 128-bit register, so one byte shuffle (pshufb) looks up 16 or 32 codes at once.
// Entries below `floor` are clamped: a qubit that far off already rules the code out of the
// top candidates, and the clamp buys resolution where the ranking is decided. The scores only
// pre-select candidates; the index re-ranks them with its exact codes (IndexFidelityFastScan).
//
// Code layout: blocks of kFastScanBlock = 32 codes. A block of codes with B = ⌈q/2⌉ bytes each
// is stored transposed, byte-group by byte-group: group p (32 bytes) holds byte p of each of
// the 32 codes, i.e. qubit 2p in the low nibble and qubit 2p+1 in the high nibble (the Codec's
// 4-bit layout), so a block is 32·B bytes — the same memory as the codes themselves.
//
// Kernels: a scalar reference and AVX2 / AVX-512BW versions, chosen by active_simd_level();
// all compute the same integers, so they agree exactly.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/Codec.h"

namespace bloch {

/// Codes per fast-scan block.
inline constexpr size_t kFastScanBlock = 32;

/// Default clamp of the quantised table's entries: log cos² below log(1e−3) ≈ −6.9 (a qubit
/// more than 1.54 rad off) counts as −6.9. Measured on the Debian set (docs/BENCHMARKS.md):
/// against the full range down to log ε = −27.6 it keeps more true neighbours among the
/// candidates at the same re-rank depth.
inline constexpr float kFastScanDefaultFloor = -6.9077553f;

/// One query's quantised table for the fast scan.
struct FastScanTable {
  int qubits = 0;
  /// Byte-groups per code, ⌈q/2⌉.
  int groups = 0;
  /// 2·groups rows of 32 bytes: row r holds E[r][0 … 15] twice (one copy per 128-bit lane);
  /// the row of the missing qubit of an odd q is zero.
  std::vector<uint8_t> lut;
  /// ℓ ≈ bias + sum / scale for a code whose byte sum is `sum`.
  double bias = 0;
  double scale = 1;

  double approx_log_fidelity(uint32_t sum) const { return bias + sum / scale; }
};

/// Builds the quantised table of one query (q angles in [0, π/2]) against the levels of a 4-bit
/// codec (full-range or ranged, Codec.h). `floor` ≤ 0 is the clamp described above (use
/// kFastScanDefaultFloor).
void build_fast_scan_table(const Codec& codec, const float* query_angles, float floor,
                           FastScanTable* table);

/// Bytes of one block for codes of `code_size` bytes (= ⌈q/2⌉).
inline size_t fast_scan_block_bytes(size_t code_size) {
  return kFastScanBlock * code_size;
}

/// Writes n 4-bit codes (n × code_size bytes, Codec layout) as the codes first … first+n−1 of
/// `blocks`, growing it to whole blocks (new bytes zero: padding codes score as level 0).
void fast_scan_pack(const uint8_t* codes, size_t code_size, size_t first, size_t n,
                    std::vector<uint8_t>* blocks);

/// Reads code i back out of `blocks` (code_size bytes, Codec layout).
void fast_scan_unpack(const uint8_t* blocks, size_t code_size, size_t i, uint8_t* code);

/// sums[b·32 + j] = Σ_i E[i][k_i] of code j of block b, for nblocks consecutive blocks.
void fast_scan_accumulate(const FastScanTable& table, const uint8_t* blocks, size_t nblocks,
                          uint16_t* sums);

namespace detail {

/// Per-ISA kernels of fast_scan_accumulate: `lut` is FastScanTable::lut, `groups` its groups.
using FastScanFn = void (*)(const uint8_t* lut, int groups, const uint8_t* blocks, size_t nblocks,
                            uint16_t* sums);
void fast_scan_accumulate_scalar(const uint8_t* lut, int groups, const uint8_t* blocks,
                                 size_t nblocks, uint16_t* sums);
void fast_scan_accumulate_avx2(const uint8_t* lut, int groups, const uint8_t* blocks,
                               size_t nblocks, uint16_t* sums);
void fast_scan_accumulate_avx512(const uint8_t* lut, int groups, const uint8_t* blocks,
                                 size_t nblocks, uint16_t* sums);

}  // namespace detail

}  // namespace bloch
