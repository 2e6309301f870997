// AVX-512 (F/BW/VL/DQ) log-fidelity kernels, 16 qubits per instruction. Compiled with
// -mavx512* (index/CMakeLists.txt); only called when the CPU has them (FidelityKernels.cpp).
// The numerical method of the exact kernel is described in FidelityKernelsAvx2.cpp and is the
// same here; only the register width and the exponent tricks (getexp/getmant) differ.

// GCC 12's AVX-512 headers build _mm512_undefined_*() as `__m512 __Y = __Y;`, which trips
// -Wuninitialized inside the header (GCC bug 105593, fixed in GCC 13). The warning points at
// the header's lines, so disabling it around the include silences only that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cstring>
#include <vector>

#include "index/FidelityKernels.h"
#include "index/FidelityKernelsImpl.h"

namespace bloch::detail {
namespace {

// π/2 = kHalfPiHi + kHalfPiLo, kHalfPiHi = float(π/2) (Cody–Waite split).
constexpr float kHalfPiHi = 1.57079637050628662109375f;
constexpr float kHalfPiLo = -4.37113900018624283e-8f;
constexpr float kEps = float(kFidelityFloor);
constexpr double kLn2 = 0.693147180559945309417232121458;

// max(cos²(a − b), ε) for a, b ∈ [0, π/2], as sin²(r) with r = π/2 − |a − b| (see the AVX2
// file for the error analysis: relative error ~2e−7 down to the floor).
inline __m512 cos2_floor(__m512 a, __m512 b) {
  const __m512 hi = _mm512_max_ps(a, b);
  const __m512 lo = _mm512_min_ps(a, b);
  const __m512 r = _mm512_add_ps(_mm512_sub_ps(_mm512_set1_ps(kHalfPiHi), hi),
                                 _mm512_add_ps(lo, _mm512_set1_ps(kHalfPiLo)));
  const __m512 z = _mm512_mul_ps(r, r);
  __m512 p = _mm512_set1_ps(-1.0f / 39916800);
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.0f / 362880));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-1.0f / 5040));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-1.0f / 6));
  const __m512 s = _mm512_fmadd_ps(_mm512_mul_ps(r, z), p, r);
  return _mm512_max_ps(_mm512_mul_ps(s, s), _mm512_set1_ps(kEps));
}

// Σ over lanes of log(P·2^E) with P ∈ [1, 2): see finish_log in the AVX2 file.
inline float finish_log(__m512 p, __m512 e) {
  const __mmask16 big = _mm512_cmp_ps_mask(p, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
  const __m512 m = _mm512_mask_mul_ps(p, big, p, _mm512_set1_ps(0.5f));
  e = _mm512_mask_add_ps(e, big, e, _mm512_set1_ps(1.0f));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 s = _mm512_div_ps(_mm512_sub_ps(m, one), _mm512_add_ps(m, one));
  const __m512 z = _mm512_mul_ps(s, s);
  __m512 poly = _mm512_set1_ps(1.0f / 9);
  poly = _mm512_fmadd_ps(poly, z, _mm512_set1_ps(1.0f / 7));
  poly = _mm512_fmadd_ps(poly, z, _mm512_set1_ps(1.0f / 5));
  poly = _mm512_fmadd_ps(poly, z, _mm512_set1_ps(1.0f / 3));
  poly = _mm512_fmadd_ps(poly, z, one);
  const __m512 log_m = _mm512_mul_ps(_mm512_add_ps(s, s), poly);
  // E holds small integers (|E| < 2^24): its float sum is exact.
  return float(double(_mm512_reduce_add_ps(e)) * kLn2 + double(_mm512_reduce_add_ps(log_m)));
}

// One renormalisation step: P·t → mantissa in [1, 2), exponent added to E. Lanes outside
// `mask` keep P and E unchanged (tails).
inline void multiply_renorm(__m512& p, __m512& e, __mmask16 mask, __m512 t) {
  p = _mm512_mask_mul_ps(p, mask, p, t);
  e = _mm512_add_ps(e, _mm512_getexp_ps(p));
  p = _mm512_getmant_ps(p, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
}

float exact_score(const float* query, int q, const uint8_t* code) {
  const float* c = reinterpret_cast<const float*>(code);  // only read through loadu
  __m512 p = _mm512_set1_ps(1.0f), e = _mm512_setzero_ps();
  int i = 0;
  // Two chunks per renormalisation: P·t1·t2 ≥ 1·ε² = 1e−24, far above FLT_MIN.
  for (; i + 32 <= q; i += 32) {
    const __m512 t0 = cos2_floor(_mm512_loadu_ps(query + i), _mm512_loadu_ps(c + i));
    const __m512 t1 = cos2_floor(_mm512_loadu_ps(query + i + 16), _mm512_loadu_ps(c + i + 16));
    multiply_renorm(p, e, 0xFFFF, _mm512_mul_ps(t0, t1));
  }
  for (; i < q; i += 16) {
    const __mmask16 mask = q - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (q - i)) - 1);
    const __m512 t =
        cos2_floor(_mm512_maskz_loadu_ps(mask, query + i), _mm512_maskz_loadu_ps(mask, c + i));
    multiply_renorm(p, e, mask, t);
  }
  return finish_log(p, e);
}

// Σ of the 16 lanes in double.
inline double reduce_double(__m512 v) {
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
  return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

// Float lane accumulators take at most kFlush gathers (kFlush terms per lane) before they are
// added into a double: a float accumulator growing to q/16·27.6 would lose ~1e−5·q to
// rounding at q = 512 with every qubit at the floor (the kKernelTolerance budget).
constexpr int kFlush = 8;

// 8-bit look-up, blocked for the L1 cache. The table is q·1 KiB (128 KiB at q = 128: L2, not
// L1), and a gather of 16 qubits touches 16 different 1 KiB rows. Scanning code by code would
// stream the whole table through L1 for every code; instead a block of kBlock8 codes is scored
// 16 qubits at a time, so the 16 KiB table slice of those qubits stays in L1 while the block's
// codes (kBlock8·q bytes, L1/L2) are read once per slice. acc[v] holds 16 per-lane partial
// sums; lane j of a gather reads slice[j·256 + code[i0 + j]].
constexpr size_t kBlock8 = 64;

template <class CodeAt>
void table8_kernel(const float* table, int q, size_t n, CodeAt code_at, float* out) {
  const __m512i lane_off =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(256));
  __m512 acc[kBlock8];
  double sums[kBlock8];
  const uint8_t* ptr[kBlock8];
  for (size_t v0 = 0; v0 < n; v0 += kBlock8) {
    const size_t nb = std::min(kBlock8, n - v0);
    for (size_t v = 0; v < nb; ++v) {
      ptr[v] = code_at(v0 + v);
      sums[v] = 0;
    }
    for (int s0 = 0; s0 < q; s0 += 16 * kFlush) {
      const int s1 = std::min(q, s0 + 16 * kFlush);
      const int full_end = s0 + ((s1 - s0) & ~15);
      for (size_t v = 0; v < nb; ++v) acc[v] = _mm512_setzero_ps();
      for (int i0 = s0; i0 < full_end; i0 += 16) {
        const float* slice = table + size_t(i0) * 256;
        for (size_t v = 0; v < nb; ++v) {
          const __m128i k = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ptr[v] + i0));
          const __m512i idx = _mm512_add_epi32(_mm512_cvtepu8_epi32(k), lane_off);
          acc[v] = _mm512_add_ps(acc[v], _mm512_i32gather_ps(idx, slice, 4));
        }
      }
      if (full_end < s1) {  // last 1–15 qubits: masked byte load and gather
        const __mmask16 mask = __mmask16((1u << (s1 - full_end)) - 1);
        const float* slice = table + size_t(full_end) * 256;
        for (size_t v = 0; v < nb; ++v) {
          const __m128i k = _mm_maskz_loadu_epi8(mask, ptr[v] + full_end);
          const __m512i idx = _mm512_add_epi32(_mm512_cvtepu8_epi32(k), lane_off);
          acc[v] = _mm512_add_ps(
              acc[v], _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, idx, slice, 4));
        }
      }
      for (size_t v = 0; v < nb; ++v) sums[v] += reduce_double(acc[v]);
    }
    for (size_t v = 0; v < nb; ++v) out[v0 + v] = float(sums[v]);
  }
}

// 8-bit look-up for long contiguous scans, in registers instead of gathers (AVX-512 VBMI).
// A gather fetches one table entry per element and runs at about one element per cycle on
// the CPU measured (docs/BENCHMARKS.md); vpermi2b looks up 64 bytes at once in a 128-byte
// table held in two registers. So:
//  - the query's float table is split into 4 byte planes per qubit, planes[i][p][k] = byte p
//    of T[i·256 + k] (repack_planes, q KiB per query);
//  - a block of 64 codes is transposed (64 codes × 64 qubits of bytes, in registers) so that
//    one register holds the levels of the 64 codes at one qubit;
//  - per qubit and plane, two vpermi2b (levels 0–127 and 128–255; index bit 6 picks the
//    register) and a blend on bit 7 give byte p of the 64 entries; interleaving the 4 planes
//    rebuilds the 64 floats bit-exactly, which are added per code.
// About 0.5 vector instructions per look-up. kPlaneSub sub-blocks of 64 codes share each
// qubit's plane loads; 1, 2 and 4 were measured at q = 64–256 and 2 was fastest.
constexpr int kPlaneSub = 2;
constexpr size_t kPlaneBlock = 64 * kPlaneSub;  // codes per transposed block
constexpr size_t kPlaneMinCodes = 4 * 1024;     // below this, repacking the table is not repaid

// 64-byte aligned storage for the planes (std::vector<__m512i> would drop the alignment
// attribute of the vector type).
struct alignas(64) Line64 {
  uint8_t bytes[64];
};

void repack_planes(const float* table, int q, Line64* planes) {
  uint8_t* out = planes[0].bytes;
  for (size_t i = 0; i < size_t(q); ++i) {
    for (int k = 0; k < 256; ++k) {
      uint32_t bits;
      std::memcpy(&bits, table + i * 256 + k, 4);
      for (int p = 0; p < 4; ++p) out[i * 1024 + p * 256 + k] = uint8_t(bits >> (8 * p));
    }
  }
}

// In-lane 16×16 byte transpose of r[0..15]: afterwards, in each 128-bit lane, byte c of r[j]
// is what byte j of input row c was. Four rounds of unpacks (8-, 16-, 32-, 64-bit units); this
// index pattern yields the columns in natural order.
inline void transpose16x16_lanes(__m512i* r) {
  __m512i a[16], b[16];
  for (int k = 0; k < 8; ++k) {
    a[k] = _mm512_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
    a[k + 8] = _mm512_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
  }
  for (int h = 0; h < 16; h += 8) {
    for (int k = 0; k < 4; ++k) {
      b[h + k] = _mm512_unpacklo_epi16(a[h + 2 * k], a[h + 2 * k + 1]);
      b[h + k + 4] = _mm512_unpackhi_epi16(a[h + 2 * k], a[h + 2 * k + 1]);
    }
  }
  for (int base = 0; base < 16; base += 4) {
    for (int k = 0; k < 2; ++k) {
      a[base + k] = _mm512_unpacklo_epi32(b[base + 2 * k], b[base + 2 * k + 1]);
      a[base + k + 2] = _mm512_unpackhi_epi32(b[base + 2 * k], b[base + 2 * k + 1]);
    }
  }
  for (int base = 0; base < 16; base += 2) {
    r[base] = _mm512_unpacklo_epi64(a[base], a[base + 1]);
    r[base + 1] = _mm512_unpackhi_epi64(a[base], a[base + 1]);
  }
}

// Table entries of one qubit for the levels x[s][l] of each sub-block s; f[s][m] lane l'
// element t belongs to code 16l' + 4m + t of sub-block s. The 16 plane registers are loaded
// once for all sub-blocks.
template <int kSub>
inline void plane_lookup(const Line64* planes, const __m512i (*x)[4], int l, __m512 (*f)[4]) {
  __m512i pl[16];
  for (int k = 0; k < 16; ++k) pl[k] = _mm512_load_si512(planes + k);
  for (int sb = 0; sb < kSub; ++sb) {
    const __m512i xs = x[sb][l];
    const __mmask64 upper = _mm512_movepi8_mask(xs);  // level ≥ 128
    __m512i b[4];
    for (int p = 0; p < 4; ++p) {
      const __m512i lo = _mm512_permutex2var_epi8(pl[4 * p], xs, pl[4 * p + 1]);
      const __m512i hi = _mm512_permutex2var_epi8(pl[4 * p + 2], xs, pl[4 * p + 3]);
      b[p] = _mm512_mask_blend_epi8(upper, lo, hi);
    }
    const __m512i w01lo = _mm512_unpacklo_epi8(b[0], b[1]);
    const __m512i w01hi = _mm512_unpackhi_epi8(b[0], b[1]);
    const __m512i w23lo = _mm512_unpacklo_epi8(b[2], b[3]);
    const __m512i w23hi = _mm512_unpackhi_epi8(b[2], b[3]);
    f[sb][0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(w01lo, w23lo));
    f[sb][1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(w01lo, w23lo));
    f[sb][2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(w01hi, w23hi));
    f[sb][3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(w01hi, w23hi));
  }
}

// Scores the kSub·64 codes at `block` (stride q bytes) into out[0 .. kSub·64). Sub-blocks of
// 64 codes share each qubit's 16 plane registers (loaded once per qubit, used kSub times).
template <int kSub>
void plane_block(const Line64* planes, int q, const uint8_t* block, float* out) {
  // cols[s][a][j] lane l: codes 64s + 16a .. +15 at qubit g + 16l + j.
  alignas(64) __m512i cols[kSub][4][16];
  __m512d acc[kSub][8];
  for (auto& sub : acc)
    for (auto& x : sub) x = _mm512_setzero_pd();
  for (int g = 0; g < q; g += 64) {
    const int width = std::min(64, q - g);
    const __mmask64 row_mask = width == 64 ? ~__mmask64(0) : (__mmask64(1) << width) - 1;
    for (int sa = 0; sa < 4 * kSub; ++sa) {
      __m512i r[16];
      for (int c = 0; c < 16; ++c)
        r[c] = _mm512_maskz_loadu_epi8(row_mask, block + size_t(16 * sa + c) * q + g);
      transpose16x16_lanes(r);
      for (int j = 0; j < 16; ++j) cols[sa / 4][sa % 4][j] = r[j];
    }
    __m512 part[kSub][4];
    for (int j = 0; j < 16; ++j) {
      // 4×4 transpose of 128-bit lanes: x[s][l] = lane l of cols[s][0..3][j], i.e. the levels
      // of the 64 codes of sub-block s, in order, at qubit g + 16l + j.
      __m512i x[kSub][4];
      for (int sb = 0; sb < kSub; ++sb) {
        const __m512i* c = &cols[sb][0][0];
        const __m512i e0 = _mm512_shuffle_i64x2(c[j], c[16 + j], 0x44);
        const __m512i e1 = _mm512_shuffle_i64x2(c[j], c[16 + j], 0xEE);
        const __m512i e2 = _mm512_shuffle_i64x2(c[32 + j], c[48 + j], 0x44);
        const __m512i e3 = _mm512_shuffle_i64x2(c[32 + j], c[48 + j], 0xEE);
        x[sb][0] = _mm512_shuffle_i64x2(e0, e2, 0x88);
        x[sb][1] = _mm512_shuffle_i64x2(e0, e2, 0xDD);
        x[sb][2] = _mm512_shuffle_i64x2(e1, e3, 0x88);
        x[sb][3] = _mm512_shuffle_i64x2(e1, e3, 0xDD);
      }
      if ((j & 1) == 0)
        for (auto& sub : part)
          for (auto& p : sub) p = _mm512_setzero_ps();
      for (int l = 0; l < 4; ++l) {
        const int i = g + 16 * l + j;
        if (i >= q) continue;
        __m512 f[kSub][4];
        plane_lookup<kSub>(planes + size_t(i) * 16, x, l, f);
        for (int sb = 0; sb < kSub; ++sb)
          for (int m = 0; m < 4; ++m) part[sb][m] = _mm512_add_ps(part[sb][m], f[sb][m]);
      }
      // Flush every 8 qubits (≤ 8 float terms per code, as kFlush) into double.
      if ((j & 1) == 1) {
        for (int sb = 0; sb < kSub; ++sb) {
          for (int m = 0; m < 4; ++m) {
            const __m512 p = part[sb][m];
            acc[sb][2 * m] =
                _mm512_add_pd(acc[sb][2 * m], _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
            acc[sb][2 * m + 1] =
                _mm512_add_pd(acc[sb][2 * m + 1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(p, 1)));
          }
        }
      }
    }
  }
  // acc[s][2m + h] element e is lane 8h + e of part[s][m]: 128-bit lane l = 2h + e/4, element
  // e % 4, i.e. code 64s + 16l + 4m + e % 4.
  for (int sb = 0; sb < kSub; ++sb) {
    alignas(64) double sums[8][8];
    for (int k = 0; k < 8; ++k) _mm512_store_pd(sums[k], acc[sb][k]);
    for (int m = 0; m < 4; ++m)
      for (int h = 0; h < 2; ++h)
        for (int e = 0; e < 8; ++e)
          out[64 * sb + 16 * (2 * h + e / 4) + 4 * m + e % 4] = float(sums[2 * m + h][e]);
  }
}

// 4-bit look-up: the table is only q·64 bytes (8 KiB at q = 128) and stays in L1, so codes
// are scored one at a time. 8 code bytes hold 16 qubits; byte b_j becomes the dword
// (b_j & 0xF) | (b_j >> 4) << 16, whose two 16-bit halves widen to the levels of qubits 2j
// and 2j + 1 in order. Lane j then reads slice[j·16 + level].
float score_4bit(const float* table, int q, const uint8_t* code) {
  const __m512i lane_off =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(16));
  const __m256i lo_mask = _mm256_set1_epi32(0x0F);
  const __m256i hi_mask = _mm256_set1_epi32(0xF0);
  auto levels = [&](__m128i bytes) {
    const __m256i x = _mm256_cvtepu8_epi32(bytes);
    const __m256i y = _mm256_or_si256(_mm256_and_si256(x, lo_mask),
                                      _mm256_slli_epi32(_mm256_and_si256(x, hi_mask), 12));
    return _mm512_add_epi32(_mm512_cvtepu16_epi32(y), lane_off);
  };
  double sum = 0;
  __m512 acc = _mm512_setzero_ps();
  int i0 = 0, chunks = 0;
  for (; i0 + 16 <= q; i0 += 16) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(code + i0 / 2));
    acc = _mm512_add_ps(acc, _mm512_i32gather_ps(levels(bytes), table + size_t(i0) * 16, 4));
    if (++chunks == kFlush) {
      sum += reduce_double(acc);
      acc = _mm512_setzero_ps();
      chunks = 0;
    }
  }
  if (i0 < q) {
    const int rem = q - i0;
    const __mmask16 bytes_mask = __mmask16((1u << ((rem + 1) / 2)) - 1);
    const __mmask16 mask = __mmask16((1u << rem) - 1);
    const __m128i bytes = _mm_maskz_loadu_epi8(bytes_mask, code + i0 / 2);
    acc = _mm512_add_ps(acc, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, levels(bytes),
                                                      table + size_t(i0) * 16, 4));
  }
  return float(sum + reduce_double(acc));
}

void scan_float(const float* query, int q, const uint8_t* codes, size_t n, float* out) {
  const size_t cs = 4 * size_t(q);
  for (size_t v = 0; v < n; ++v) out[v] = exact_score(query, q, codes + v * cs);
}

void gather_float(const float* query, int q, const uint8_t* codes, const int64_t* ids, size_t n,
                  float* out) {
  const size_t cs = 4 * size_t(q);
  for (size_t v = 0; v < n; ++v) out[v] = exact_score(query, q, codes + size_t(ids[v]) * cs);
}

void scan_8bit(const float* table, int q, const uint8_t* codes, size_t n, float* out) {
  size_t done = 0;
  if (n >= kPlaneMinCodes) {
    std::vector<Line64> planes(size_t(q) * 16);  // q KiB
    repack_planes(table, q, planes.data());
    for (; done + kPlaneBlock <= n; done += kPlaneBlock)
      plane_block<kPlaneSub>(planes.data(), q, codes + done * size_t(q), out + done);
  }
  const uint8_t* rest = codes + done * size_t(q);
  table8_kernel(
      table, q, n - done, [=](size_t v) { return rest + v * size_t(q); }, out + done);
}

void gather_8bit(const float* table, int q, const uint8_t* codes, const int64_t* ids, size_t n,
                 float* out) {
  table8_kernel(
      table, q, n, [=](size_t v) { return codes + size_t(ids[v]) * size_t(q); }, out);
}

void scan_4bit(const float* table, int q, const uint8_t* codes, size_t n, float* out) {
  const size_t cs = (size_t(q) + 1) / 2;
  for (size_t v = 0; v < n; ++v) out[v] = score_4bit(table, q, codes + v * cs);
}

void gather_4bit(const float* table, int q, const uint8_t* codes, const int64_t* ids, size_t n,
                 float* out) {
  const size_t cs = (size_t(q) + 1) / 2;
  for (size_t v = 0; v < n; ++v) out[v] = score_4bit(table, q, codes + size_t(ids[v]) * cs);
}

}  // namespace

const KernelSet kAvx512Kernels = {scan_float,  gather_float, scan_8bit,
                                  gather_8bit, scan_4bit,    gather_4bit};

}  // namespace bloch::detail
