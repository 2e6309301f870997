// Log-fidelity kernels (DESIGN §1.5): every SIMD level against the scalar reference, the
// tables against their formula, exp(ℓ) against an explicit state-vector inner product, the
// absence of underflow at q = 512, and the quantisation error against its analytic bound.

#include <faiss/impl/FaissAssert.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "index/Codec.h"
#include "index/FidelityKernels.h"

namespace bloch {
namespace {

constexpr double kHalfPi = std::numbers::pi / 2;
constexpr CodeType kAllTypes[] = {CodeType::kFloat, CodeType::k8bit, CodeType::k4bit};
constexpr int kQubitCounts[] = {1, 7, 64, 100, 128, 256, 512};

// Restores the kernels' SIMD level when a test ends (tests switch levels in one process).
class SimdLevelGuard {
 public:
  SimdLevelGuard() : saved_(active_simd_level()) {}
  ~SimdLevelGuard() { set_simd_level(saved_); }

 private:
  SimdLevel saved_;
};

std::vector<SimdLevel> simd_levels_available() {
  std::vector<SimdLevel> levels;
  for (SimdLevel l : {SimdLevel::kAvx2, SimdLevel::kAvx512})
    if (int(l) <= int(detected_simd_level())) levels.push_back(l);
  return levels;
}

// Uniform angles in [0, π/2], with ~10% at or next to the ends so that near-orthogonal qubits
// (cos² near or below the floor ε) are exercised too.
std::vector<float> random_angles(size_t count, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(0.0f, float(kHalfPi));
  std::uniform_int_distribution<int> pick(0, 49);
  const float ends[] = {0.0f, 1e-7f, 1e-6f, 3e-6f, float(kHalfPi), float(kHalfPi) - 1e-6f};
  std::vector<float> a(count);
  for (auto& x : a) {
    const int p = pick(rng);
    x = p < 6 ? ends[p] : u(rng);
  }
  return a;
}

// Scores of `n` codes of `codec` (encoded from `data`) for one query, at the active level.
struct Fixture {
  Codec codec;
  std::vector<float> query;
  std::vector<float> table;
  std::vector<uint8_t> codes;

  Fixture(CodeType type, int q, size_t n, uint64_t seed) : codec(type, q) {
    std::mt19937_64 rng(seed);
    query = random_angles(q, rng);
    const std::vector<float> data = random_angles(n * q, rng);
    codes.resize(n * codec.code_size());
    codec.encode(n, data.data(), codes.data());
    if (type != CodeType::kFloat) {
      table.resize(size_t(q) * codec.levels());
      compute_fidelity_table(codec, query.data(), table.data());
    }
  }
  const float* table_or_null() const { return table.empty() ? nullptr : table.data(); }
  size_t n() const { return codes.size() / codec.code_size(); }

  std::vector<float> scan() const {
    std::vector<float> out(n());
    log_fidelity_scan(codec, query.data(), table_or_null(), codes.data(), n(), out.data());
    return out;
  }
  std::vector<float> gather(const std::vector<int64_t>& ids) const {
    std::vector<float> out(ids.size());
    log_fidelity_gather(codec, query.data(), table_or_null(), codes.data(), ids.data(), ids.size(),
                        out.data());
    return out;
  }
};

TEST(FidelityKernels, LevelNamesAndClamping) {
  SimdLevelGuard guard;
  EXPECT_STREQ(simd_level_name(SimdLevel::kScalar), "scalar");
  EXPECT_STREQ(simd_level_name(SimdLevel::kAvx2), "avx2");
  EXPECT_STREQ(simd_level_name(SimdLevel::kAvx512), "avx512");
  EXPECT_EQ(set_simd_level(SimdLevel::kScalar), SimdLevel::kScalar);
  EXPECT_EQ(active_simd_level(), SimdLevel::kScalar);
  EXPECT_EQ(set_simd_level(SimdLevel::kAvx512), detected_simd_level());
  EXPECT_EQ(active_simd_level(), detected_simd_level());
  std::printf("detected SIMD level: %s\n", simd_level_name(detected_simd_level()));
}

TEST(FidelityKernels, SimdMatchesScalar) {
  SimdLevelGuard guard;
  const auto levels = simd_levels_available();
  if (levels.empty()) GTEST_SKIP() << "no SIMD level on this CPU";
  // 150 codes: two full blocks of the blocked 8-bit kernels plus a partial one.
  constexpr size_t kCodes = 150;
  for (CodeType type : kAllTypes) {
    for (int q : kQubitCounts) {
      const Fixture f(type, q, kCodes, 1000 + q);
      std::mt19937_64 rng(q);
      std::uniform_int_distribution<int64_t> pick(0, kCodes - 1);
      std::vector<int64_t> ids(97);
      for (auto& id : ids) id = pick(rng);
      ids[0] = ids[1];  // repeated ids are allowed

      set_simd_level(SimdLevel::kScalar);
      const std::vector<float> ref_scan = f.scan();
      const std::vector<float> ref_gather = f.gather(ids);
      for (size_t j = 0; j < ids.size(); ++j) ASSERT_EQ(ref_gather[j], ref_scan[ids[j]]);

      const double tol = kKernelTolerance * q;
      for (SimdLevel level : levels) {
        ASSERT_EQ(set_simd_level(level), level);
        SCOPED_TRACE(testing::Message()
                     << simd_level_name(level) << " " << code_type_name(type) << " q=" << q);
        const std::vector<float> scan = f.scan();
        const std::vector<float> gather = f.gather(ids);
        for (size_t v = 0; v < kCodes; ++v) {
          ASSERT_TRUE(std::isfinite(scan[v]));
          ASSERT_NEAR(scan[v], ref_scan[v], tol) << "code " << v;
        }
        for (size_t j = 0; j < ids.size(); ++j)
          ASSERT_NEAR(gather[j], ref_gather[j], tol) << "id " << ids[j];
      }
    }
  }
}

// Long contiguous scans take a different path in some kernels (AVX-512: transposed blocks of
// 64 codes with in-register look-ups, from a few thousand codes on); 4096 + 77 codes cover
// full blocks and a tail.
TEST(FidelityKernels, LongScanMatchesScalar) {
  SimdLevelGuard guard;
  const auto levels = simd_levels_available();
  if (levels.empty()) GTEST_SKIP() << "no SIMD level on this CPU";
  constexpr size_t kCodes = 4096 + 77;
  for (CodeType type : {CodeType::k8bit, CodeType::k4bit}) {
    for (int q : kQubitCounts) {
      const Fixture f(type, q, kCodes, 2000 + q);
      set_simd_level(SimdLevel::kScalar);
      const std::vector<float> ref = f.scan();
      for (SimdLevel level : levels) {
        set_simd_level(level);
        const std::vector<float> out = f.scan();
        for (size_t v = 0; v < kCodes; ++v)
          ASSERT_NEAR(out[v], ref[v], kKernelTolerance * q)
              << simd_level_name(level) << " " << code_type_name(type) << " q=" << q << " code "
              << v;
      }
    }
  }
}

TEST(FidelityKernels, ScanOfNothingAndSingleCode) {
  SimdLevelGuard guard;
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    set_simd_level(level);
    for (CodeType type : kAllTypes) {
      const Fixture f(type, 33, 1, 7);
      float out = 1.0f;
      log_fidelity_scan(f.codec, f.query.data(), f.table_or_null(), f.codes.data(), 0, &out);
      EXPECT_EQ(out, 1.0f);  // n = 0 writes nothing
      log_fidelity_scan(f.codec, f.query.data(), f.table_or_null(), f.codes.data(), 1, &out);
      std::vector<float> decoded(33);
      f.codec.decode(1, f.codes.data(), decoded.data());
      EXPECT_NEAR(out, log_fidelity_reference(f.query.data(), decoded.data(), 33),
                  type == CodeType::kFloat ? kKernelTolerance * 33 : 1e-3);
    }
  }
}

TEST(FidelityKernels, TableMatchesFormula) {
  std::mt19937_64 rng(3);
  for (CodeType type : {CodeType::k8bit, CodeType::k4bit}) {
    const int q = 7;
    const Codec codec(type, q);
    const std::vector<float> query = random_angles(q, rng);
    std::vector<float> table(size_t(q) * codec.levels());
    compute_fidelity_table(codec, query.data(), table.data());
    for (int i = 0; i < q; ++i) {
      for (int k = 0; k < codec.levels(); ++k) {
        const double c = std::cos(double(query[i]) - k * (kHalfPi / (codec.levels() - 1)));
        const double expected = std::log(std::max(c * c, 1e-12));
        ASSERT_NEAR(table[size_t(i) * codec.levels() + k], expected,
                    1e-6 * std::max(1.0, std::abs(expected)))
            << code_type_name(type) << " i=" << i << " k=" << k << " angle " << query[i];
      }
    }
  }
}

// A ranged codec of `type`: qubit i's levels over a band of its own inside [0, π/2].
Codec ranged_codec(CodeType type, int q) {
  std::vector<float> lo(q), hi(q);
  for (int i = 0; i < q; ++i) {
    lo[i] = float(0.05 + 0.9 * double(i % 5) / 5);
    hi[i] = float(lo[i] + 0.02 + 0.1 * double(i % 3));
  }
  return Codec(type, q, lo, hi);
}

TEST(FidelityKernels, RangedTableMatchesTheDecodedLevels) {
  std::mt19937_64 rng(4);
  for (CodeType type : {CodeType::k8bit, CodeType::k4bit}) {
    const int q = 9;
    const Codec codec = ranged_codec(type, q);
    const std::vector<float> query = random_angles(q, rng);
    std::vector<float> table(size_t(q) * codec.levels());
    compute_fidelity_table(codec, query.data(), table.data());
    for (int i = 0; i < q; ++i) {
      for (int k = 0; k < codec.levels(); ++k) {
        const double level = codec.qubit_low(i) + k * codec.qubit_step(i);
        const double c = std::cos(double(query[i]) - level);
        const double expected = std::log(std::max(c * c, 1e-12));
        ASSERT_NEAR(table[size_t(i) * codec.levels() + k], expected,
                    1e-6 * std::max(1.0, std::abs(expected)))
            << code_type_name(type) << " i=" << i << " k=" << k << " angle " << query[i];
      }
    }
  }
}

TEST(FidelityKernels, RangedScanAndCodePairsScoreTheDecodedAngles) {
  SimdLevelGuard guard;
  std::mt19937_64 rng(12);
  for (CodeType type : {CodeType::k8bit, CodeType::k4bit}) {
    for (int q : {7, 128, 129}) {
      const Codec codec = ranged_codec(type, q);
      const size_t n = 40;
      const std::vector<float> query = random_angles(q, rng);
      const std::vector<float> data = random_angles(n * q, rng);
      std::vector<uint8_t> codes(n * codec.code_size());
      codec.encode(n, data.data(), codes.data());
      std::vector<float> decoded(n * q), table(size_t(q) * codec.levels()), out(n);
      codec.decode(n, codes.data(), decoded.data());
      compute_fidelity_table(codec, query.data(), table.data());
      for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
        set_simd_level(level);
        log_fidelity_scan(codec, nullptr, table.data(), codes.data(), n, out.data());
        for (size_t j = 0; j < n; ++j)
          ASSERT_NEAR(out[j], log_fidelity_reference(query.data(), decoded.data() + j * q, q),
                      kKernelTolerance * q)
              << code_type_name(type) << " q=" << q << " code " << j;
        const uint8_t* a = codes.data();
        const uint8_t* b = codes.data() + codec.code_size();
        const float ab = log_fidelity_code_pair(codec, a, b);
        EXPECT_EQ(ab, log_fidelity_code_pair(codec, b, a));
        EXPECT_NEAR(ab, log_fidelity_reference(decoded.data(), decoded.data() + q, q),
                    kKernelTolerance * q)
            << code_type_name(type) << " q=" << q;
      }
    }
  }
}

// |<Q|P>|² from the explicit 2^n-dimensional product states Σ_b Π_i (b_i ? sin ϑ_i : cos ϑ_i)|b>.
double tensor_product_fidelity(const std::vector<float>& a, const std::vector<float>& b) {
  const int n = int(a.size());
  double inner = 0;
  for (uint32_t basis = 0; basis < (1u << n); ++basis) {
    double pa = 1, pb = 1;
    for (int i = 0; i < n; ++i) {
      const bool one = (basis >> i) & 1;
      pa *= one ? std::sin(double(a[i])) : std::cos(double(a[i]));
      pb *= one ? std::sin(double(b[i])) : std::cos(double(b[i]));
    }
    inner += pa * pb;
  }
  return inner * inner;
}

TEST(FidelityKernels, MatchesTensorProductInnerProduct) {
  SimdLevelGuard guard;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> u(0.0f, float(kHalfPi));
  for (int n = 1; n <= 10; ++n) {
    for (int trial = 0; trial < 5; ++trial) {
      std::vector<float> a(n), b(n);
      for (auto& x : a) x = u(rng);
      // Closer pairs in some trials so that F is not always tiny.
      for (int i = 0; i < n; ++i)
        b[i] = trial < 2 ? u(rng) : std::clamp(a[i] + 0.3f * (u(rng) - 0.8f), 0.0f, float(kHalfPi));
      const double f = tensor_product_fidelity(a, b);
      const Codec codec(CodeType::kFloat, n);
      std::vector<uint8_t> code(codec.code_size());
      codec.encode(1, b.data(), code.data());
      EXPECT_NEAR(std::exp(log_fidelity_reference(a.data(), b.data(), n)), f, 1e-12 + 1e-9 * f);
      for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
        set_simd_level(level);
        float l;
        log_fidelity_scan(codec, a.data(), nullptr, code.data(), 1, &l);
        // |exp(ℓ) − F| ≤ F·|Δℓ| with |Δℓ| ≤ kKernelTolerance·n.
        EXPECT_NEAR(std::exp(double(l)), f, 1e-15 + 2 * kKernelTolerance * n * f)
            << simd_level_name(active_simd_level()) << " n=" << n;
      }
    }
  }
}

// The query's angles moved by ±δ on every qubit (the sign that stays inside [0, π/2]).
std::vector<float> at_distance(const std::vector<float>& query, float delta) {
  std::vector<float> out(query.size());
  for (size_t i = 0; i < query.size(); ++i)
    out[i] = query[i] + delta <= float(kHalfPi) ? query[i] + delta : query[i] - delta;
  return out;
}

TEST(FidelityKernels, NoUnderflowAtLargeQ) {
  SimdLevelGuard guard;
  constexpr int q = 512;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(0.0f, float(kHalfPi));
  std::vector<float> query(q);
  for (auto& x : query) x = u(rng);
  // Per-qubit distances δ ∈ [0.5, 0.775]: already at δ = 0.5, Π cos² = 0.770^512 ≈ 1e−58,
  // below the smallest float.
  constexpr int kCodes = 12;
  std::vector<float> data;
  for (int m = 0; m < kCodes; ++m) {
    const std::vector<float> code = at_distance(query, 0.5f + 0.025f * m);
    float naive = 1.0f;
    for (int i = 0; i < q; ++i) {
      const float c = std::cos(query[i] - code[i]);
      naive *= c * c;
    }
    // Below FLT_MIN the product is denormal: it keeps at most a few bits, and with factors
    // above 1/2 round-to-nearest parks it on the smallest denormals, so codes tie.
    ASSERT_LT(naive, std::numeric_limits<float>::min()) << "the naive product should underflow";
    data.insert(data.end(), code.begin(), code.end());
  }
  // One more code orthogonal on every qubit: ℓ = 512·log ε, Π cos² = 0 exactly.
  std::vector<float> zeros(q, 0.0f), ortho(q, float(kHalfPi));
  float naive_ortho = 1.0f;
  for (int i = 0; i < q; ++i) naive_ortho *= std::cos(ortho[i]) * std::cos(ortho[i]);
  ASSERT_EQ(naive_ortho, 0.0f);
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    set_simd_level(level);
    for (CodeType type : kAllTypes) {
      SCOPED_TRACE(testing::Message()
                   << simd_level_name(active_simd_level()) << " " << code_type_name(type));
      const Codec codec(type, q);
      std::vector<uint8_t> codes(kCodes * codec.code_size());
      codec.encode(kCodes, data.data(), codes.data());
      std::vector<float> table(type == CodeType::kFloat ? 0 : size_t(q) * codec.levels());
      if (!table.empty()) compute_fidelity_table(codec, query.data(), table.data());
      std::vector<float> out(kCodes);
      log_fidelity_scan(codec, query.data(), table.data(), codes.data(), kCodes, out.data());
      for (int m = 0; m < kCodes; ++m) {
        ASSERT_TRUE(std::isfinite(out[m])) << m;
        ASSERT_LT(out[m], -100.0f) << m;
        const double ref = log_fidelity_reference(query.data(), data.data() + size_t(m) * q, q);
        if (type == CodeType::kFloat) {
          EXPECT_NEAR(out[m], ref, kKernelTolerance * q) << m;
        }
        if (m > 0) {
          EXPECT_LT(out[m], out[m - 1]) << "farther code ranks lower, m=" << m;
        }
      }
      // All-orthogonal pair.
      std::vector<uint8_t> ortho_code(codec.code_size());
      codec.encode(1, ortho.data(), ortho_code.data());
      std::vector<float> zero_table(type == CodeType::kFloat ? 0 : size_t(q) * codec.levels());
      if (!zero_table.empty()) compute_fidelity_table(codec, zeros.data(), zero_table.data());
      float l;
      log_fidelity_scan(codec, zeros.data(), zero_table.data(), ortho_code.data(), 1, &l);
      EXPECT_NEAR(l, q * std::log(kFidelityFloor), kKernelTolerance * q);
    }
  }
}

// Quantised codes move each code angle by at most e = max_angle_error. The per-qubit term
// g(Δ) = log max(cos²Δ, ε) has |g'(Δ)| = 2|tan Δ| (0 where the floor holds), so
//   |ℓ_quantised − ℓ_exact| ≤ Σ_i 2e·tan(min(|Δ_i| + e, Δ_ε)) + table rounding,
// with Δ_ε = acos(√ε) the distance at which the floor takes over.
TEST(FidelityKernels, QuantisationErrorWithinBound) {
  SimdLevelGuard guard;
  const double delta_floor = std::acos(std::sqrt(kFidelityFloor));
  for (CodeType type : {CodeType::k8bit, CodeType::k4bit}) {
    for (int q : {7, 128}) {
      const Fixture f(type, q, 200, 77 + q);
      const Fixture exact(CodeType::kFloat, q, 200, 77 + q);  // same angles, float codes
      const double e = f.codec.max_angle_error();
      ASSERT_GT(e, 0.0);
      for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx512}) {
        set_simd_level(level);
        const std::vector<float> lq = f.scan();
        const std::vector<float> le = exact.scan();
        double worst_ratio = 0;
        for (size_t v = 0; v < lq.size(); ++v) {
          const float* angles = reinterpret_cast<const float*>(exact.codes.data()) + v * q;
          double bound = kKernelTolerance * q;
          for (int i = 0; i < q; ++i) {
            const double d = std::abs(double(exact.query[i]) - double(angles[i]));
            bound += 2 * e * std::tan(std::min(d + e, delta_floor));
          }
          const double err = std::abs(double(lq[v]) - double(le[v]));
          ASSERT_LE(err, bound) << code_type_name(type) << " q=" << q << " code " << v;
          worst_ratio = std::max(worst_ratio, err / bound);
        }
        EXPECT_GT(worst_ratio, 0.0);  // quantisation did change the scores
      }
    }
  }
}

TEST(FidelityKernels, CodePairIsSymmetricAndMatchesDecodedAngles) {
  SimdLevelGuard guard;
  std::mt19937_64 rng(9);
  for (CodeType type : kAllTypes) {
    for (int q : {1, 7, 128, 129}) {
      const Codec codec(type, q);
      const std::vector<float> angles = random_angles(2 * size_t(q), rng);
      std::vector<uint8_t> codes(2 * codec.code_size());
      codec.encode(2, angles.data(), codes.data());
      std::vector<float> decoded(2 * size_t(q));
      codec.decode(2, codes.data(), decoded.data());
      const uint8_t* a = codes.data();
      const uint8_t* b = codes.data() + codec.code_size();
      const double ref = log_fidelity_reference(decoded.data(), decoded.data() + q, q);
      for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx512}) {
        set_simd_level(level);
        const float ab = log_fidelity_code_pair(codec, a, b);
        EXPECT_EQ(ab, log_fidelity_code_pair(codec, b, a));
        EXPECT_NEAR(ab, ref, kKernelTolerance * q) << code_type_name(type) << " q=" << q;
        EXPECT_NEAR(log_fidelity_code_pair(codec, a, a), 0.0, kKernelTolerance * q);
      }
    }
  }
}

TEST(FidelityKernels, PreconditionsThrow) {
  const Codec c8(CodeType::k8bit, 16), cf(CodeType::kFloat, 16);
  std::vector<float> query(16, 0.5f), table(16 * 256), out(2);
  std::vector<uint8_t> codes(2 * 64);
  EXPECT_THROW(log_fidelity_scan(c8, query.data(), nullptr, codes.data(), 2, out.data()),
               faiss::FaissException);
  EXPECT_THROW(log_fidelity_scan(cf, nullptr, table.data(), codes.data(), 2, out.data()),
               faiss::FaissException);
  EXPECT_THROW(compute_fidelity_table(cf, query.data(), table.data()), faiss::FaissException);
  EXPECT_THROW(log_fidelity_scan(Codec(), query.data(), table.data(), codes.data(), 2, out.data()),
               faiss::FaissException);
  const int64_t bad_ids[] = {0, -1};
  compute_fidelity_table(c8, query.data(), table.data());
  EXPECT_THROW(
      log_fidelity_gather(c8, query.data(), table.data(), codes.data(), bad_ids, 2, out.data()),
      faiss::FaissException);
}

}  // namespace
}  // namespace bloch
