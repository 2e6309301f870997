#pragma once

// Internal to the fast-scan kernels (FastScanKernels*.cpp), included only by files compiled
// with AVX2 enabled.

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace bloch::detail {
// Internal linkage (inline in an unnamed namespace): the AVX2 and AVX-512 files each keep a copy
// compiled for their own flags (a shared inline copy could be the AVX-512 one for both).
namespace {

// Adds byte-group p of one block (32 bytes at `group`) to the accumulators: each nibble
// vector indexes its qubit's row (rows 2p and 2p+1 of the table) with one byte shuffle.
inline void accumulate_group_avx2(const uint8_t* group, const uint8_t* lut, int p, __m256i& raw,
                                  __m256i& odd) {
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(group));
  const __m256i lo = _mm256_and_si256(c, nibble);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), nibble);
  const __m256i v1 = _mm256_shuffle_epi8(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + size_t(2 * p) * 32)), lo);
  const __m256i v2 = _mm256_shuffle_epi8(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + size_t(2 * p + 1) * 32)), hi);
  raw = _mm256_add_epi16(raw, _mm256_add_epi16(v1, v2));
  odd = _mm256_add_epi16(odd, _mm256_add_epi16(_mm256_srli_epi16(v1, 8), _mm256_srli_epi16(v2, 8)));
}

// Turns the two accumulators of one block into its 32 sums in code order. Lane m of `raw`
// (uint16) is lo + 256·hi summed over the groups, where lo belongs to code 2m and hi to code
// 2m+1 within each 128-bit half (codes 0–15 in the low half, 16–31 in the high half); `odd`
// holds the hi sums alone.
inline void store_block_sums_avx2(__m256i raw, __m256i odd, uint16_t* sums) {
  const __m256i even = _mm256_sub_epi16(raw, _mm256_slli_epi16(odd, 8));
  const __m256i first = _mm256_unpacklo_epi16(even, odd);   // codes 0–7 | 16–23
  const __m256i second = _mm256_unpackhi_epi16(even, odd);  // codes 8–15 | 24–31
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums),
                      _mm256_permute2x128_si256(first, second, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + 16),
                      _mm256_permute2x128_si256(first, second, 0x31));
}

}  // namespace
}  // namespace bloch::detail
