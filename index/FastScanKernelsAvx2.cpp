// AVX2 fast-scan kernel (FastScanKernels.h): 32 codes per block, one byte-group (two qubits)
// per step. Compiled with -mavx2 (index/CMakeLists.txt); called only when the CPU has it.
//
// Per group: the 32 code bytes split into low and high nibbles; each nibble vector indexes its
// qubit's 16-entry row with one byte shuffle (the row is repeated in both 128-bit lanes), giving
// 32 entries, one per code. Entries are summed in 16-bit lanes without widening: a register of
// bytes read as uint16 is lo + 256·hi (lo = even code, hi = odd code), so
//   raw += v  and  odd += v >> 8   give   even = raw − 256·odd  (mod 2^16),
// exact because every true sum is ≤ q·M ≤ 65535.

#include <immintrin.h>

#include "index/FastScanKernels.h"
#include "index/FastScanKernelsImpl.h"

namespace bloch::detail {

void fast_scan_accumulate_avx2(const uint8_t* lut, int groups, const uint8_t* blocks,
                               size_t nblocks, uint16_t* sums) {
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * kFastScanBlock * size_t(groups);
    __m256i raw = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
    for (int p = 0; p < groups; ++p)
      accumulate_group_avx2(block + size_t(p) * kFastScanBlock, lut, p, raw, odd);
    store_block_sums_avx2(raw, odd, sums + b * kFastScanBlock);
  }
}

}  // namespace bloch::detail
