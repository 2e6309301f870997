// AVX-512BW fast-scan kernel (FastScanKernels.h): the AVX2 scheme with two byte-groups per
// step (a 512-bit register holds groups p and p+1 of one block, each against its own pair of
// rows). The two 256-bit halves accumulate the same 32 codes, so they are added at the end;
// an odd last group runs at 256 bits. Compiled with the AVX-512 flags (index/CMakeLists.txt).

// GCC 12's AVX-512 insert/extract intrinsics start from _mm256_undefined_si256(), which its
// -Wmaybe-uninitialized reports as a read of an uninitialised value (GCC bug 105593, fixed in
// GCC 13); the value is never read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "index/FastScanKernels.h"
#include "index/FastScanKernelsImpl.h"

namespace bloch::detail {

namespace {

inline __m512i two_rows(const uint8_t* lut, int row_a, int row_b) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + size_t(row_a) * 32));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + size_t(row_b) * 32));
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

}  // namespace

void fast_scan_accumulate_avx512(const uint8_t* lut, int groups, const uint8_t* blocks,
                                 size_t nblocks, uint16_t* sums) {
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * kFastScanBlock * size_t(groups);
    __m512i raw = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
    int p = 0;
    for (; p + 2 <= groups; p += 2) {
      const __m512i c = _mm512_loadu_si512(block + size_t(p) * kFastScanBlock);
      const __m512i lo = _mm512_and_si512(c, nibble);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), nibble);
      const __m512i v1 = _mm512_shuffle_epi8(two_rows(lut, 2 * p, 2 * p + 2), lo);
      const __m512i v2 = _mm512_shuffle_epi8(two_rows(lut, 2 * p + 1, 2 * p + 3), hi);
      raw = _mm512_add_epi16(raw, _mm512_add_epi16(v1, v2));
      odd = _mm512_add_epi16(odd,
                             _mm512_add_epi16(_mm512_srli_epi16(v1, 8), _mm512_srli_epi16(v2, 8)));
    }
    __m256i raw256 =
        _mm256_add_epi16(_mm512_castsi512_si256(raw), _mm512_extracti64x4_epi64(raw, 1));
    __m256i odd256 =
        _mm256_add_epi16(_mm512_castsi512_si256(odd), _mm512_extracti64x4_epi64(odd, 1));
    if (p < groups)
      accumulate_group_avx2(block + size_t(p) * kFastScanBlock, lut, p, raw256, odd256);
    store_block_sums_avx2(raw256, odd256, sums + b * kFastScanBlock);
  }
}

}  // namespace bloch::detail
