// Correctness of the paper-exact circuit head (DESIGN §1.1–§1.4) against an independent
// complex state-vector simulation (StateVectorSim.h), plus its shape/padding rules,
// determinism, batching and the standalone head file format.

#include <faiss/impl/FaissException.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "StateVectorSim.h"
#include "index/BinaryIO.h"
#include "index/CircuitHead.h"

namespace bloch {
namespace {

constexpr double kHalfPi = std::numbers::pi / 2;
// The head returns float angles; the oracle is double. 1e-5 rad is ~100 float ulps at π/2.
constexpr double kAngleTol = 1e-5;

std::vector<float> random_vector(size_t n, std::mt19937_64& rng, double sigma) {
  std::normal_distribution<double> normal(0.0, sigma);
  std::vector<float> v(n);
  for (auto& e : v) e = float(normal(rng));
  return v;
}

/// Inputs for the oracle comparison: ordinary, wide, saturating (|x| up to 1e30) and exact zeros.
std::vector<float> random_inputs(size_t n, int d, std::mt19937_64& rng) {
  std::vector<float> x(n * d);
  std::uniform_int_distribution<int> kind(0, 9);
  std::normal_distribution<double> normal(0.0, 1.0);
  const float extremes[] = {1e30f, -1e30f, 1e3f, -1e3f, 20.0f, -20.0f, 0.0f};
  for (size_t i = 0; i < x.size(); ++i) {
    const int k = kind(rng);
    if (k < 6)
      x[i] = float(normal(rng));
    else if (k < 8)
      x[i] = float(5.0 * normal(rng));
    else
      x[i] = extremes[std::uniform_int_distribution<int>(0, 6)(rng)];
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Oracle sanity: hand-derivable circuits. These pin the oracle (and the head) to §1 without
// trusting either simulation: all-zero raw parameters squash to α=β=γ=δ=2π, i.e. U = −I.

double half_theta(double x) {
  return (std::tanh(x) + 1.0) * std::numbers::pi / 4;
}

/// Raw-parameter index of gate g's γ (g = 0: U_a, 1: U_b, 2: U_c) in a 12-parameter pair.
constexpr int gamma_of(int gate) {
  return 4 * gate + 2;
}

TEST(CircuitHeadOracle, HandDerivedSinglePairCircuits) {
  // γ raw = atanh(−1/2) gives γ = π: a magnitude swap |0> ↔ |1> (ϑ → π/2 − ϑ).
  const float flip = float(std::atanh(-0.5));
  // U_b with γ = 3π/2 (raw atanh(−1/4)) maps the x_b = 0 qubit cos(π/4)|0> − sin(π/4)|1>
  // (phase φ = π) exactly onto |1>, so P_b = 1 and U_c acts fully (with φ = 0, P_b would be 0).
  const float to_one = float(std::atanh(-0.25));
  const float xa = 0.7f;
  struct Case {
    const char* name;
    std::vector<std::pair<int, float>> raw;  // (parameter index, raw value); others are 0
    float xb;
    double expected;
  };
  const Case cases[] = {
      {"all gates -I", {}, 0.3f, half_theta(xa)},
      {"U_a flips", {{gamma_of(0), flip}}, 0.3f, kHalfPi - half_theta(xa)},
      {"P_b = 1, U_c = -I", {{gamma_of(1), to_one}}, 0.0f, half_theta(xa)},
      {"P_b = 1, U_c flips",
       {{gamma_of(1), to_one}, {gamma_of(2), flip}},
       0.0f,
       kHalfPi - half_theta(xa)},
      {"P_b = 1, U_a and U_c flips cancel",
       {{gamma_of(0), flip}, {gamma_of(1), to_one}, {gamma_of(2), flip}},
       0.0f,
       half_theta(xa)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<float> params(12, 0.0f);
    for (const auto& [index, value] : c.raw) params[index] = value;
    const float x[2] = {xa, c.xb};
    // The oracle is checked too: these expectations come from the §1 algebra alone.
    EXPECT_NEAR(oracle::simulate_head(2, 1, params, x)[0], c.expected, 1e-6);
    CircuitHead head(2, 1, 0);
    head.set_parameters(params);
    float out = -1;
    head.forward(1, x, &out);
    EXPECT_NEAR(out, c.expected, kAngleTol);
  }
}

TEST(CircuitHeadOracle, ZeroParametersPassInputsThrough) {
  // With every gate = −I each layer keeps qubit i's magnitudes, so output i is input i's
  // encoding angle θ_i/2 (the inputs i+q, i+2q, … only contribute phases).
  const int d = 16, q = 4;
  CircuitHead head(d, q, 1);
  head.set_parameters(std::vector<float>(head.num_parameters(), 0.0f));
  std::mt19937_64 rng(3);
  const auto x = random_vector(d, rng, 1.0);
  std::vector<float> out(q);
  head.forward(1, x.data(), out.data());
  for (int i = 0; i < q; ++i) EXPECT_NEAR(out[i], half_theta(x[i]), kAngleTol) << i;
}

TEST(CircuitHeadOracle, ReferencePhaseMatchesPiAndPhaseMatters) {
  // §1.1: the reference uses φ = π − 5e−10; treating it as π must be indistinguishable, while a
  // really different phase (φ = 0) must change the outputs (the comparison is phase-sensitive).
  std::mt19937_64 rng(11);
  const int d = 8, q = 2;
  const auto params = random_vector(oracle::num_parameters(d, q), rng, 1.0);
  double max_pi_diff = 0, max_zero_diff = 0;
  for (int t = 0; t < 50; ++t) {
    const auto x = random_vector(d, rng, 1.0);
    const auto ref = oracle::simulate_head(d, q, params, x.data(), oracle::kReferencePhase);
    const auto pi = oracle::simulate_head(d, q, params, x.data(), std::numbers::pi);
    const auto zero = oracle::simulate_head(d, q, params, x.data(), 0.0);
    for (int i = 0; i < q; ++i) {
      max_pi_diff = std::max(max_pi_diff, std::abs(ref[i] - pi[i]));
      max_zero_diff = std::max(max_zero_diff, std::abs(ref[i] - zero[i]));
    }
  }
  EXPECT_LT(max_pi_diff, 1e-8);
  EXPECT_GT(max_zero_diff, 1e-2);
}

// ---------------------------------------------------------------------------------------------
// Head forward vs the oracle.

struct Dims {
  int d, q;
};

void expect_matches_oracle(int d, int q, double param_sigma, uint64_t seed) {
  SCOPED_TRACE("d=" + std::to_string(d) + " q=" + std::to_string(q) +
               " sigma=" + std::to_string(param_sigma));
  std::mt19937_64 rng(seed);
  CircuitHead head(d, q, seed);
  ASSERT_EQ(head.num_parameters(), oracle::num_parameters(d, q));
  auto params = random_vector(head.num_parameters(), rng, param_sigma);
  head.set_parameters(params);
  const size_t n = 24;
  const auto x = random_inputs(n, d, rng);
  std::vector<float> out(n * q);
  head.forward(n, x.data(), out.data());
  double worst = 0;
  for (size_t v = 0; v < n; ++v) {
    const auto expected = oracle::simulate_head(d, q, params, x.data() + v * d);
    for (int i = 0; i < q; ++i) {
      const double diff = std::abs(double(out[v * q + i]) - expected[i]);
      worst = std::max(worst, diff);
      EXPECT_LE(diff, kAngleTol) << "input " << v << " qubit " << i << " head " << out[v * q + i]
                                 << " oracle " << expected[i];
    }
  }
  ::testing::Test::RecordProperty("worst_diff_d" + std::to_string(d) + "_q" + std::to_string(q),
                                  std::to_string(worst));
}

TEST(CircuitHeadOracle, ForwardMatchesStateVectorSimulation) {
  const Dims dims[] = {{2, 1}, {4, 2}, {6, 2}, {8, 2}, {12, 3}, {16, 4}, {40, 8}, {5, 1}, {3, 3}};
  uint64_t seed = 100;
  for (const auto& [d, q] : dims)
    for (double sigma : {1.0, 3.0, 30.0}) expect_matches_oracle(d, q, sigma, ++seed);
}

TEST(CircuitHeadOracle, ForwardMatchesOracleAtRealisticSize) {
  // One realistic shape with padding (384 → 512, q = 128) to cover long parameter offsets.
  expect_matches_oracle(384, 128, 1.0, 7);
}

TEST(CircuitHeadOracle, TraceHoldsEncodingAndResult) {
  // forward_trace: the first d' entries are the encoded inputs as χ = −θ/2 (the φ = π state
  // cos χ|0> + sin χ|1>), padding encodes x = 0, and the last q entries are forward's result.
  const int d = 6, q = 2;
  CircuitHead head(d, q, 5);
  std::mt19937_64 rng(5);
  const auto x = random_vector(d, rng, 2.0);
  std::vector<double> trace(head.shape().trace_size());
  ASSERT_EQ(trace.size(), size_t(2 * 8 - 2));
  head.forward_trace(x.data(), trace.data());
  for (int j = 0; j < 8; ++j) {
    const double theta = (std::tanh(j < d ? double(x[j]) : 0.0) + 1) * kHalfPi;
    EXPECT_NEAR(trace[j], -theta / 2, 1e-12) << j;
  }
  std::vector<float> out(q);
  head.forward(1, x.data(), out.data());
  // forward carries amplitudes (cos χ, sin χ) between layers instead of angles: the same
  // result up to rounding.
  for (int i = 0; i < q; ++i) EXPECT_NEAR(out[i], trace[trace.size() - q + i], 1e-6);
}

TEST(CircuitHead, ForwardEqualsTheAngleTraceAtRealisticSizes) {
  // The inference path (lane-batched amplitudes, one input alone or 20 at once: two full
  // batches of 8 and a partial one) against forward_trace (angles per layer, the gradients'
  // reference), including padding and saturated inputs.
  const Dims dims[] = {{384, 128}, {768, 96}, {300, 64}};
  uint64_t seed = 900;
  constexpr int kInputs = 20;
  for (const auto& [d, q] : dims) {
    CircuitHead head(d, q, ++seed);
    std::mt19937_64 rng(seed);
    std::vector<double> trace(head.shape().trace_size());
    std::vector<float> xs;
    for (int v = 0; v < kInputs; ++v) {
      const auto x = random_vector(d, rng, v % 2 == 0 ? 1.0 : 20.0);
      xs.insert(xs.end(), x.begin(), x.end());
    }
    std::vector<float> batched(size_t(kInputs) * q);
    head.forward(kInputs, xs.data(), batched.data());
    double worst = 0;
    for (int v = 0; v < kInputs; ++v) {
      const float* x = xs.data() + size_t(v) * d;
      head.forward_trace(x, trace.data());
      std::vector<float> alone(q);
      head.forward(1, x, alone.data());
      for (int i = 0; i < q; ++i) {
        const double reference = trace[trace.size() - q + i];
        worst = std::max({worst, std::abs(alone[i] - reference),
                          std::abs(batched[size_t(v) * q + i] - reference)});
        EXPECT_EQ(alone[i], batched[size_t(v) * q + i]) << "lane position must not matter";
      }
    }
    EXPECT_LT(worst, 1e-6) << "d=" << d << " q=" << q;
  }
}

// ---------------------------------------------------------------------------------------------
// Shape, parameter count and padding (§1.1, §1.4).

struct ShapeCase {
  int d, q, padded_d, layers;
  size_t params;
};

TEST(HeadShape, PaddingAndParameterCount) {
  const ShapeCase cases[] = {
      // The examples of §1.4.
      {768, 384, 768, 1, 4608},
      {768, 96, 768, 3, 8064},
      {512, 128, 512, 2, 4608},
      {512, 256, 512, 1, 3072},
      {384, 96, 384, 2, 3456},
      {384, 48, 384, 3, 4032},
      {768, 24, 768, 5, 8928},
      // Padding: d/q not a power of two.
      {384, 128, 512, 2, 4608},
      {6, 2, 8, 2, 72},
      {40, 8, 64, 3, 672},
      {5, 1, 8, 3, 84},
      {100, 3, 192, 6, 2268},
      // d = q: m = max(1, 0) = 1, so d' = 2q.
      {8, 8, 16, 1, 96},
      {1, 1, 2, 1, 12},
      {2, 1, 2, 1, 12},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("d=" + std::to_string(c.d) + " q=" + std::to_string(c.q));
    const int m = std::max(1, int(std::ceil(std::log2(double(c.d) / c.q))));
    ASSERT_EQ(m, c.layers) << "table entry disagrees with the §1.1 formula";
    ASSERT_EQ(c.params, size_t(12) * c.q * (c.padded_d / c.q - 1));
    ASSERT_EQ(c.params, oracle::num_parameters(c.d, c.q));

    const HeadShape s = HeadShape::make(c.d, c.q);
    EXPECT_EQ(s.d, c.d);
    EXPECT_EQ(s.q, c.q);
    EXPECT_EQ(s.padded_d, c.padded_d);
    EXPECT_EQ(s.layers, c.layers);
    EXPECT_EQ(s.groups(), c.padded_d / c.q);
    EXPECT_EQ(s.num_parameters(), c.params);
    EXPECT_EQ(s.layer_param_offset(s.layers), c.params);
    EXPECT_EQ(s.trace_size(), size_t(2 * c.padded_d - c.q));

    const CircuitHead head(c.d, c.q, 1);
    EXPECT_EQ(head.num_parameters(), c.params);
    EXPECT_EQ(head.parameters().size(), c.params);
    EXPECT_EQ(head.dim(), c.d);
    EXPECT_EQ(head.qubits(), c.q);
  }
}

TEST(HeadShape, DescribeReportsPadding) {
  const std::string text = HeadShape::make(384, 128).describe();
  for (const char* part : {"d=384", "d'=512", "+128", "q=128", "m=2", "L=4", "4608"})
    EXPECT_NE(text.find(part), std::string::npos) << part << " missing from: " << text;
  const std::string unpadded = HeadShape::make(768, 96).describe();
  EXPECT_NE(unpadded.find("d'=768"), std::string::npos) << unpadded;
  EXPECT_NE(unpadded.find("+0"), std::string::npos) << unpadded;
}

TEST(HeadShape, InvalidDimensionsThrow) {
  const Dims bad[] = {{4, 5}, {4, 0}, {4, -1}, {0, 1}, {-3, 1}, {0, 0}};
  for (const auto& [d, q] : bad) {
    SCOPED_TRACE("d=" + std::to_string(d) + " q=" + std::to_string(q));
    EXPECT_THROW(HeadShape::make(d, q), faiss::FaissException);
    EXPECT_THROW(CircuitHead(d, q, 1), faiss::FaissException);
  }
}

TEST(HeadShape, PaddedInputEqualsExplicitZeroExtension) {
  // d = 6, q = 2 pads to d' = 8: it must behave exactly like a d = 8 head given x ‖ (0, 0).
  CircuitHead head6(6, 2, 21);
  CircuitHead head8(8, 2, 22);
  ASSERT_EQ(head6.num_parameters(), head8.num_parameters());
  head8.set_parameters(head6.parameters());
  std::mt19937_64 rng(23);
  const size_t n = 40;
  const auto x6 = random_inputs(n, 6, rng);
  std::vector<float> x8(n * 8, 0.0f), x8_nonzero_pad(n * 8, 1.0f);
  for (size_t v = 0; v < n; ++v)
    for (int j = 0; j < 6; ++j) x8[v * 8 + j] = x8_nonzero_pad[v * 8 + j] = x6[v * 6 + j];
  std::vector<float> out6(n * 2), out8(n * 2), out8_nonzero(n * 2);
  head6.forward(n, x6.data(), out6.data());
  head8.forward(n, x8.data(), out8.data());
  head8.forward(n, x8_nonzero_pad.data(), out8_nonzero.data());
  EXPECT_EQ(out6, out8);
  // Sensitivity: the pad value does reach the output.
  EXPECT_NE(out6, out8_nonzero);
}

// ---------------------------------------------------------------------------------------------
// Range, determinism, batching.

TEST(CircuitHead, OutputAnglesInRange) {
  std::mt19937_64 rng(31);
  for (const auto& [d, q] : {Dims{12, 3}, Dims{40, 8}, Dims{384, 96}}) {
    CircuitHead head(d, q, 32);
    head.set_parameters(random_vector(head.num_parameters(), rng, 10.0));
    const size_t n = 64;
    const auto x = random_inputs(n, d, rng);
    std::vector<float> out(n * q, -1.0f);
    head.forward(n, x.data(), out.data());
    for (float a : out) {
      ASSERT_TRUE(std::isfinite(a));
      EXPECT_GE(a, 0.0f);
      EXPECT_LE(a, float(kHalfPi));
    }
  }
}

TEST(CircuitHead, SeedDeterminesParameters) {
  const CircuitHead a(768, 96, 42), b(768, 96, 42), c(768, 96, 43);
  EXPECT_EQ(a.parameters(), b.parameters());
  EXPECT_NE(a.parameters(), c.parameters());
  // §1.2: raw parameters are N(0, 1). 8064 samples: mean SE ≈ 0.011, variance SE ≈ 0.016.
  double sum = 0, sq = 0;
  for (float p : a.parameters()) {
    sum += p;
    sq += double(p) * p;
  }
  const double n = double(a.num_parameters());
  const double mean = sum / n;
  EXPECT_NEAR(mean, 0.0, 0.1);
  EXPECT_NEAR(sq / n - mean * mean, 1.0, 0.1);
}

TEST(CircuitHead, SetParametersValidatesSize) {
  CircuitHead head(8, 2, 1);
  EXPECT_THROW(head.set_parameters(std::vector<float>(head.num_parameters() - 1)),
               faiss::FaissException);
  EXPECT_THROW(head.set_parameters({}), faiss::FaissException);
  const CircuitHead empty;
  float x = 0, out = 0;
  EXPECT_THROW(empty.forward(1, &x, &out), faiss::FaissException);
}

TEST(CircuitHead, BatchEqualsRowByRow) {
#ifdef _OPENMP
  // More threads than cores so the parallel path really splits the batch.
  const int saved = omp_get_max_threads();
  omp_set_num_threads(4);
#endif
  const int d = 40, q = 8;
  CircuitHead head(d, q, 51);
  std::mt19937_64 rng(52);
  const size_t n = 301;
  const auto x = random_inputs(n, d, rng);
  std::vector<float> batch(n * q);
  head.forward(n, x.data(), batch.data());
  for (size_t v = 0; v < n; ++v) {
    std::vector<float> row(q);
    head.forward(1, x.data() + v * d, row.data());
    for (int i = 0; i < q; ++i) ASSERT_EQ(batch[v * q + i], row[i]) << v << " " << i;
  }
  // n = 0 is a no-op.
  head.forward(0, x.data(), batch.data());
#ifdef _OPENMP
  omp_set_num_threads(saved);
#endif
}

// ---------------------------------------------------------------------------------------------
// Head files (§3 serialization): round trip and refusal of damaged files.

class HeadFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("bloch_head_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static void write_raw(const std::string& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    ASSERT_TRUE(out.good());
  }

  /// Loads `bytes` as a head file and returns the exception message ("" if it loaded).
  std::string load_error(const std::string& bytes) {
    const std::string p = path("damaged.head");
    write_raw(p, bytes);
    try {
      CircuitHead::load(p);
    } catch (const faiss::FaissException& e) {
      return e.what();
    }
    return "";
  }

  /// A head file written field by field (§3 layout) so single fields can be made wrong while
  /// the checksum stays valid.
  static std::string handmade(const char (&magic)[9], uint32_t version, int32_t d, int32_t q,
                              const std::vector<float>& params, bool trailing = false) {
    BinaryWriter w;
    std::array<char, 8> m;
    std::copy(magic, magic + 8, m.begin());
    w.put(m);
    w.put<uint32_t>(version);
    w.put<int32_t>(d);
    w.put<int32_t>(q);
    w.put_vector(params);
    if (trailing) w.put<uint32_t>(0xdeadbeef);
    return w.finish_with_checksum();
  }

  std::filesystem::path dir_;
};

bool contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

TEST_F(HeadFile, SaveLoadRoundTrip) {
  for (const auto& [d, q] : {Dims{6, 2}, Dims{384, 128}}) {
    CircuitHead head(d, q, 61);
    std::mt19937_64 rng(62);
    head.set_parameters(random_vector(head.num_parameters(), rng, 3.0));
    const std::string p = path("h.head");
    head.save(p);
    EXPECT_FALSE(std::filesystem::exists(p + ".tmp"));
    const CircuitHead loaded = CircuitHead::load(p);
    EXPECT_EQ(loaded.dim(), d);
    EXPECT_EQ(loaded.qubits(), q);
    EXPECT_EQ(loaded.shape().padded_d, head.shape().padded_d);
    EXPECT_EQ(loaded.parameters(), head.parameters());
    const size_t n = 16;
    const auto x = random_inputs(n, d, rng);
    std::vector<float> a(n * q), b(n * q);
    head.forward(n, x.data(), a.data());
    loaded.forward(n, x.data(), b.data());
    EXPECT_EQ(a, b);
  }
}

TEST_F(HeadFile, HandmadeFileMatchesSavedLayout) {
  // Guards the tests below: the handmade writer must reproduce what save() writes, byte for
  // byte, otherwise "wrong version" etc. would test a different format.
  CircuitHead head(6, 2, 63);
  head.save(path("h.head"));
  EXPECT_EQ(read_file(path("h.head")), handmade("BLOCHHD1", 1, 6, 2, head.parameters()));
}

TEST_F(HeadFile, EveryTruncationIsRefused) {
  CircuitHead head(6, 2, 64);
  head.save(path("h.head"));
  const std::string bytes = read_file(path("h.head"));
  ASSERT_GT(bytes.size(), 16u);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(bytes.size()));
    const std::string msg = load_error(bytes.substr(0, cut));
    ASSERT_FALSE(msg.empty()) << "truncated file loaded";
    if (cut >= 8)
      EXPECT_TRUE(contains(msg, "truncated")) << msg;
    else  // shorter than the magic: reported as a bad magic
      EXPECT_TRUE(contains(msg, "truncated") || contains(msg, "magic")) << msg;
  }
}

TEST_F(HeadFile, EveryFlippedByteIsRefused) {
  CircuitHead head(6, 2, 65);
  head.save(path("h.head"));
  const std::string bytes = read_file(path("h.head"));
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    for (unsigned char mask : {0x01, 0x80}) {
      SCOPED_TRACE("byte " + std::to_string(pos) + " mask " + std::to_string(mask));
      std::string damaged = bytes;
      damaged[pos] = char(damaged[pos] ^ mask);
      const std::string msg = load_error(damaged);
      ASSERT_FALSE(msg.empty()) << "corrupted file loaded";
      EXPECT_TRUE(pos < 8 ? contains(msg, "magic") : contains(msg, "checksum")) << msg;
    }
  }
}

TEST_F(HeadFile, BadMagicIsRefused) {
  const std::vector<float> params(72, 0.5f);
  EXPECT_TRUE(contains(load_error(handmade("BLOCHXX1", 1, 6, 2, params)), "magic"));
  EXPECT_TRUE(contains(load_error("this is not a head file at all"), "magic"));
}

TEST_F(HeadFile, WrongVersionIsRefused) {
  const std::vector<float> params(72, 0.5f);
  for (uint32_t version : {0u, 2u, 0xffffffffu}) {
    const std::string msg = load_error(handmade("BLOCHHD1", version, 6, 2, params));
    EXPECT_TRUE(contains(msg, "version")) << msg;
  }
}

TEST_F(HeadFile, InconsistentContentsAreRefused) {
  // Valid checksums, wrong contents: each must still be refused, naming the problem.
  const std::vector<float> params(72, 0.5f);
  std::string msg = load_error(handmade("BLOCHHD1", 1, 6, 2, std::vector<float>(71, 0.5f)));
  EXPECT_TRUE(contains(msg, "parameters")) << msg;
  msg = load_error(handmade("BLOCHHD1", 1, 6, 2, std::vector<float>(73, 0.5f)));
  EXPECT_TRUE(contains(msg, "head.parameters")) << msg;
  msg = load_error(handmade("BLOCHHD1", 1, 6, 2, params, /*trailing=*/true));
  EXPECT_TRUE(contains(msg, "trailing")) << msg;
  msg = load_error(handmade("BLOCHHD1", 1, 0, 2, params));
  EXPECT_FALSE(msg.empty());
  msg = load_error(handmade("BLOCHHD1", 1, 6, 7, params));
  EXPECT_FALSE(msg.empty());
  // Sanity: the same handmade file with correct fields loads.
  EXPECT_EQ(load_error(handmade("BLOCHHD1", 1, 6, 2, params)), "");
}

TEST_F(HeadFile, MissingFileOrDirectoryIsRefused) {
  EXPECT_THROW(CircuitHead::load(path("does-not-exist.head")), faiss::FaissException);
  const CircuitHead head(6, 2, 66);
  EXPECT_THROW(head.save(path("no-such-dir/h.head")), faiss::FaissException);
}

}  // namespace
}  // namespace bloch
