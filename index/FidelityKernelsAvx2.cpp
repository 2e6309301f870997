// AVX2 + FMA log-fidelity kernels, 8 qubits per instruction. Compiled with -mavx2 -mfma
// (index/CMakeLists.txt); only called when the CPU has them (FidelityKernels.cpp).
//
// Exact kernel (float codes), per qubit: t = max(cos²(a − b), ε), then ℓ = Σ log t.
//
//  cos² without cancellation. With hi = max(a, b), lo = min(a, b) (a, b ∈ [0, π/2]):
//      cos(a − b) = sin(r),   r = π/2 − (hi − lo) = (π/2_hi − hi) + (lo + π/2_lo)
//  where π/2 = π/2_hi + π/2_lo (π/2_hi = float(π/2)). Near-orthogonal qubits (the only place
//  where cos² is small and a relative error would matter) have hi ≈ π/2 and lo ≈ 0: then
//  π/2_hi − hi is exact (Sterbenz) and lo + π/2_lo and the last sum are accurate relative to
//  r itself, so t keeps ~1e−7 relative accuracy down to ε = 1e−12 (computing a − b first
//  would leave an absolute error of 6e−8 in r, i.e. a 10% error at cos² = 1e−12). When the
//  qubits are close, r ≈ π/2 carries an absolute error ≤ 6e−8 that moves sin(r) by
//  cos(r)·6e−8 — relative ~1e−7 again. (Angles outside [0, π/2] still work while
//  |a − b| ≤ π: sin² is even.)
//
//  sin(r) for |r| ≤ π/2: Taylor to r^11, sin r ≈ r(1 − z/3! + z²/5! − z³/7! + z⁴/9! − z⁵/11!),
//  z = r²; the first neglected term is |r|^13/13! ≤ 5.7e−8 at r = π/2 (where sin = 1) and
//  shrinks as r^13 below it, so the relative error stays below 6e−8 plus float rounding.
//
//  Σ log t without a log per qubit: the product P = Π t is kept as a mantissa in [1, 2) and an
//  integer exponent E. Every step multiplies P by t1·t2 (two qubits per lane, ≥ ε² = 1e−24,
//  so P never leaves the normal range) and moves P's exponent bits into E. At the end
//      Σ log t = E·ln 2 + log P,   log P = 2 atanh(s) = 2(s + s³/3 + s⁵/5 + s⁷/7 + s⁹/9),
//  s = (m − 1)/(m + 1) with m = P or P/2 so that m ∈ [√½, √2], |s| ≤ 0.172; the first neglected
//  term 2s¹¹/11 ≤ 7e−10. The product of q float-rounded factors has relative error ≤ q·6e−8,
//  i.e. an absolute error in ℓ of at most q·6e−8 (kKernelTolerance is 1e−5·q).
//
// Look-up kernels: gathers of 8 table entries, see the AVX-512 file for the blocking.

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "index/FidelityKernels.h"
#include "index/FidelityKernelsImpl.h"

namespace bloch::detail {
namespace {

constexpr float kHalfPiHi = 1.57079637050628662109375f;
constexpr float kHalfPiLo = -4.37113900018624283e-8f;
constexpr float kEps = float(kFidelityFloor);
constexpr double kLn2 = 0.693147180559945309417232121458;

inline __m256 cos2_floor(__m256 a, __m256 b) {
  const __m256 hi = _mm256_max_ps(a, b);
  const __m256 lo = _mm256_min_ps(a, b);
  const __m256 r = _mm256_add_ps(_mm256_sub_ps(_mm256_set1_ps(kHalfPiHi), hi),
                                 _mm256_add_ps(lo, _mm256_set1_ps(kHalfPiLo)));
  const __m256 z = _mm256_mul_ps(r, r);
  __m256 p = _mm256_set1_ps(-1.0f / 39916800);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.0f / 362880));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-1.0f / 5040));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-1.0f / 6));
  const __m256 s = _mm256_fmadd_ps(_mm256_mul_ps(r, z), p, r);
  return _mm256_max_ps(_mm256_mul_ps(s, s), _mm256_set1_ps(kEps));
}

// P·t, then P's biased exponent bits (P > 0: no sign bit) are added to E and P is reset to
// its mantissa in [1, 2). E therefore collects 127 per step too; finish_log removes it.
inline void multiply_renorm(__m256& p, __m256i& e, __m256 t) {
  const __m256i bits = _mm256_castps_si256(_mm256_mul_ps(p, t));
  e = _mm256_add_epi32(e, _mm256_srli_epi32(bits, 23));
  p = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)),
                                          _mm256_set1_epi32(0x3F800000)));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Σ over lanes of log(P·2^(E − 127·steps)), P ∈ [1, 2).
inline float finish_log(__m256 p, __m256i e, int steps) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 big = _mm256_cmp_ps(p, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
  const __m256 m = _mm256_blendv_ps(p, _mm256_mul_ps(p, _mm256_set1_ps(0.5f)), big);
  e = _mm256_sub_epi32(e, _mm256_castps_si256(big));  // big lanes are −1: E + 1
  const __m256 s = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one));
  const __m256 z = _mm256_mul_ps(s, s);
  __m256 poly = _mm256_set1_ps(1.0f / 9);
  poly = _mm256_fmadd_ps(poly, z, _mm256_set1_ps(1.0f / 7));
  poly = _mm256_fmadd_ps(poly, z, _mm256_set1_ps(1.0f / 5));
  poly = _mm256_fmadd_ps(poly, z, _mm256_set1_ps(1.0f / 3));
  poly = _mm256_fmadd_ps(poly, z, one);
  const __m256 log_m = _mm256_mul_ps(_mm256_add_ps(s, s), poly);
  const int exponent = hsum_epi32(e) - 127 * 8 * steps;
  return float(double(exponent) * kLn2 + double(hsum(log_m)));
}

inline __m256i tail_mask(int rem) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float exact_score(const float* query, int q, const uint8_t* code) {
  const float* c = reinterpret_cast<const float*>(code);  // only read through loadu/maskload
  __m256 p = _mm256_set1_ps(1.0f);
  __m256i e = _mm256_setzero_si256();
  int steps = 0, i = 0;
  for (; i + 16 <= q; i += 16, ++steps) {
    const __m256 t0 = cos2_floor(_mm256_loadu_ps(query + i), _mm256_loadu_ps(c + i));
    const __m256 t1 = cos2_floor(_mm256_loadu_ps(query + i + 8), _mm256_loadu_ps(c + i + 8));
    multiply_renorm(p, e, _mm256_mul_ps(t0, t1));
  }
  for (; i < q; i += 8, ++steps) {
    const __m256i mask = tail_mask(q - i);
    const __m256 t =
        cos2_floor(_mm256_maskload_ps(query + i, mask), _mm256_maskload_ps(c + i, mask));
    // Lanes past q keep a factor of exactly 1.
    multiply_renorm(p, e, _mm256_blendv_ps(_mm256_set1_ps(1.0f), t, _mm256_castsi256_ps(mask)));
  }
  return finish_log(p, e, steps);
}

inline double reduce_double(__m256 v) {
  const __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                  _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// Up to 7 trailing code bytes, zero-padded (a full 8-byte load could read past the code).
inline __m128i load_partial(const uint8_t* p, int bytes) {
  uint64_t x = 0;
  std::memcpy(&x, p, size_t(bytes));
  return _mm_cvtsi64_si128(int64_t(x));
}

// Float lane accumulators take at most kFlush terms per lane before they are added into a
// double (see the AVX-512 file).
constexpr int kFlush = 8;

// 8-bit look-up, blocked like the AVX-512 kernel: a block of codes is scored 8 qubits at a
// time so the 8 KiB table slice stays in L1. Lane j reads slice[j·256 + code[i0 + j]].
constexpr size_t kBlock8 = 64;

template <class CodeAt>
void table8_kernel(const float* table, int q, size_t n, CodeAt code_at, float* out) {
  const __m256i lane_off = _mm256_setr_epi32(0, 256, 512, 768, 1024, 1280, 1536, 1792);
  __m256 acc[kBlock8];
  double sums[kBlock8];
  const uint8_t* ptr[kBlock8];
  for (size_t v0 = 0; v0 < n; v0 += kBlock8) {
    const size_t nb = std::min(kBlock8, n - v0);
    for (size_t v = 0; v < nb; ++v) {
      ptr[v] = code_at(v0 + v);
      sums[v] = 0;
    }
    for (int s0 = 0; s0 < q; s0 += 8 * kFlush) {
      const int s1 = std::min(q, s0 + 8 * kFlush);
      const int full_end = s0 + ((s1 - s0) & ~7);
      for (size_t v = 0; v < nb; ++v) acc[v] = _mm256_setzero_ps();
      for (int i0 = s0; i0 < full_end; i0 += 8) {
        const float* slice = table + size_t(i0) * 256;
        for (size_t v = 0; v < nb; ++v) {
          const __m128i k = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(ptr[v] + i0));
          const __m256i idx = _mm256_add_epi32(_mm256_cvtepu8_epi32(k), lane_off);
          acc[v] = _mm256_add_ps(acc[v], _mm256_i32gather_ps(slice, idx, 4));
        }
      }
      if (full_end < s1) {  // last 1–7 qubits: partial load and masked gather
        const int rem = s1 - full_end;
        const __m256 mask = _mm256_castsi256_ps(tail_mask(rem));
        const float* slice = table + size_t(full_end) * 256;
        for (size_t v = 0; v < nb; ++v) {
          const __m256i idx = _mm256_add_epi32(
              _mm256_cvtepu8_epi32(load_partial(ptr[v] + full_end, rem)), lane_off);
          acc[v] = _mm256_add_ps(
              acc[v], _mm256_mask_i32gather_ps(_mm256_setzero_ps(), slice, idx, mask, 4));
        }
      }
      for (size_t v = 0; v < nb; ++v) sums[v] += reduce_double(acc[v]);
    }
    for (size_t v = 0; v < nb; ++v) out[v0 + v] = float(sums[v]);
  }
}

// 4-bit look-up, one code at a time (the q·64-byte table stays in L1). 4 code bytes hold 8
// qubits; byte b_j becomes the dword (b_j & 0xF) | (b_j >> 4) << 16, whose 16-bit halves widen
// to the levels of qubits 2j and 2j + 1. Lane j reads slice[j·16 + level].
float score_4bit(const float* table, int q, const uint8_t* code) {
  const __m256i lane_off = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
  auto levels = [&](__m128i bytes) {
    const __m128i x = _mm_cvtepu8_epi32(bytes);
    const __m128i y = _mm_or_si128(_mm_and_si128(x, _mm_set1_epi32(0x0F)),
                                   _mm_slli_epi32(_mm_and_si128(x, _mm_set1_epi32(0xF0)), 12));
    return _mm256_add_epi32(_mm256_cvtepu16_epi32(y), lane_off);
  };
  double sum = 0;
  __m256 acc = _mm256_setzero_ps();
  int i0 = 0, chunks = 0;
  for (; i0 + 8 <= q; i0 += 8) {
    uint32_t four;
    std::memcpy(&four, code + i0 / 2, 4);
    const __m128i bytes = _mm_cvtsi32_si128(int(four));
    acc = _mm256_add_ps(acc, _mm256_i32gather_ps(table + size_t(i0) * 16, levels(bytes), 4));
    if (++chunks == kFlush) {
      sum += reduce_double(acc);
      acc = _mm256_setzero_ps();
      chunks = 0;
    }
  }
  if (i0 < q) {
    const int rem = q - i0;
    const __m128i bytes = load_partial(code + i0 / 2, (rem + 1) / 2);
    acc = _mm256_add_ps(
        acc, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), table + size_t(i0) * 16, levels(bytes),
                                      _mm256_castsi256_ps(tail_mask(rem)), 4));
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
  table8_kernel(
      table, q, n, [=](size_t v) { return codes + v * size_t(q); }, out);
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

const KernelSet kAvx2Kernels = {scan_float,  gather_float, scan_8bit,
                                gather_8bit, scan_4bit,    gather_4bit};

}  // namespace bloch::detail
