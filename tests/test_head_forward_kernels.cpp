// The lane-batched head forward pass (HeadForwardKernels.h): every SIMD level returns the same
// bits as the scalar build, a batch equals its inputs one at a time, and the result equals the
// training path's double-precision reference (mixer, then the circuit's per-layer angles).

#include <faiss/impl/FaissAssert.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "index/FidelityHead.h"
#include "index/FidelityHeadModel.h"
#include "index/FidelityKernels.h"
#include "index/HeadForwardKernels.h"

namespace bloch {
namespace {

// Rows of N(0, σ²) with a few saturating and exactly-zero features mixed in.
std::vector<float> rows(size_t n, int d, uint64_t seed, float sigma) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(n * size_t(d));
  for (auto& v : x) v = normal(rng);
  for (size_t i = 0; i < x.size(); i += 37)
    x[i] = (i / 37) % 3 == 0 ? 0.0f : 1e6f * (i % 2 ? 1 : -1);
  return x;
}

struct HeadCase {
  int d, q, butterflies;
};

const HeadCase kCases[] = {{300, 64, 0}, {384, 96, 3}, {768, 128, 3}, {40, 5, 2}};

std::vector<float> forward_at(SimdLevel level, const FidelityHead& head, size_t n,
                              const std::vector<float>& x) {
  set_simd_level(level);
  std::vector<float> angles(n * size_t(head.qubits()));
  head.forward(n, x.data(), angles.data());
  set_simd_level(detected_simd_level());
  return angles;
}

TEST(HeadForwardKernels, EverySimdLevelReturnsTheScalarBits) {
  for (const auto& [d, q, b] : kCases) {
    const FidelityHead head = FidelityHead::make({d, q, b, uint64_t(d + q)});
    for (size_t n : {1, 7, 8, 9, 20}) {
      const auto x = rows(n, d, n + 3, 1.5f);
      const auto scalar = forward_at(SimdLevel::kScalar, head, n, x);
      for (SimdLevel level : {SimdLevel::kAvx2, SimdLevel::kAvx512}) {
        if (set_simd_level(level) != level) continue;  // not on this CPU
        const auto simd = forward_at(level, head, n, x);
        EXPECT_EQ(std::memcmp(simd.data(), scalar.data(), simd.size() * sizeof(float)), 0)
            << simd_level_name(level) << " d=" << d << " q=" << q << " B=" << b << " n=" << n;
      }
    }
  }
}

TEST(HeadForwardKernels, ABatchEqualsItsInputsOneAtATime) {
  for (const auto& [d, q, b] : kCases) {
    const FidelityHead head = FidelityHead::make({d, q, b, 77});
    constexpr size_t n = 19;
    const auto x = rows(n, d, 5, 1.0f);
    std::vector<float> batch(n * q), one(q);
    head.forward(n, x.data(), batch.data());
    for (size_t i = 0; i < n; ++i) {
      head.forward(1, x.data() + i * d, one.data());
      EXPECT_EQ(std::memcmp(one.data(), batch.data() + i * q, q * sizeof(float)), 0)
          << "d=" << d << " row " << i;
    }
  }
}

TEST(HeadForwardKernels, EqualsTheTrainingReference) {
  // FidelityHeadModel::forward is the double-precision path the gradients are taken on:
  // FeatureMixer::forward then the circuit's angles layer by layer (trigonometry from libm).
  for (const auto& [d, q, b] : kCases) {
    FidelityHead head = FidelityHead::make({d, q, b, 91});
    constexpr size_t n = 12;
    for (float sigma : {0.3f, 3.0f}) {
      const auto x = rows(n, d, 9, sigma);
      std::vector<float> angles(n * q);
      head.forward(n, x.data(), angles.data());
      std::vector<double> reference(n * q);
      FidelityHeadModel(head).forward(n, x.data(), reference.data(), nullptr);
      double worst = 0;
      for (size_t i = 0; i < angles.size(); ++i) {
        ASSERT_GE(angles[i], 0.0f);
        ASSERT_LE(angles[i], float(M_PI / 2));
        worst = std::max(worst, std::abs(double(angles[i]) - reference[i]));
      }
      // The float output's own rounding (ulp of π/2 is 1.2e−7) dominates.
      EXPECT_LT(worst, 3e-7) << "d=" << d << " q=" << q << " B=" << b << " σ=" << sigma;
    }
  }
}

TEST(HeadForwardKernels, RejectsBadLaneCounts) {
  const FidelityHead head = FidelityHead::make({16, 4, 1, 3});
  const HeadTables tables{head.mixer()->tables(), head.circuit().tables()};
  std::vector<double> scratch(head_forward_scratch_size(tables));
  std::vector<float> x(16 * (kHeadLanes + 1)), angles(4 * (kHeadLanes + 1));
  EXPECT_THROW(head_forward_lanes(tables, 0, x.data(), angles.data(), scratch.data()),
               faiss::FaissException);
  EXPECT_THROW(head_forward_lanes(tables, kHeadLanes + 1, x.data(), angles.data(), scratch.data()),
               faiss::FaissException);
}

}  // namespace
}  // namespace bloch
