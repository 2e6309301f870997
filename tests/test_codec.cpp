// Codes of head output angles (DESIGN §1.5): sizes, uniform levels k·(π/2)/(2^B − 1), the
// half-step error bound, clamping of out-of-range angles and the byte layout of each code type;
// ranged codecs (levels lo_i + k·step_i over a range per qubit).

#include <faiss/impl/FaissException.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "index/Codec.h"

namespace bloch {
namespace {

constexpr double kHalfPi = std::numbers::pi / 2;
const CodeType kAllTypes[] = {CodeType::kFloat, CodeType::k8bit, CodeType::k4bit};
const CodeType kQuantised[] = {CodeType::k8bit, CodeType::k4bit};

TEST(Codec, CodeSizeBitsLevels) {
  for (int q : {1, 2, 3, 7, 8, 127, 128, 129, 512}) {
    SCOPED_TRACE("q=" + std::to_string(q));
    EXPECT_EQ(Codec(CodeType::kFloat, q).code_size(), size_t(4 * q));
    EXPECT_EQ(Codec(CodeType::k8bit, q).code_size(), size_t(q));
    EXPECT_EQ(Codec(CodeType::k4bit, q).code_size(), size_t((q + 1) / 2));
    EXPECT_EQ(Codec(CodeType::k4bit, q).qubits(), q);
  }
  EXPECT_EQ(Codec(CodeType::kFloat, 4).bits(), 32);
  EXPECT_EQ(Codec(CodeType::k8bit, 4).bits(), 8);
  EXPECT_EQ(Codec(CodeType::k4bit, 4).bits(), 4);
  EXPECT_EQ(Codec(CodeType::k8bit, 4).levels(), 256);
  EXPECT_EQ(Codec(CodeType::k4bit, 4).levels(), 16);
  EXPECT_EQ(Codec(CodeType::kFloat, 4).max_angle_error(), 0.0);
}

TEST(Codec, StepAndWorstErrorMatchDesignNumbers) {
  // §1.5: step = (π/2)/(2^B − 1); worst error = step/2 = 3.08e−3 rad (8-bit), 5.24e−2 (4-bit).
  const Codec c8(CodeType::k8bit, 4), c4(CodeType::k4bit, 4);
  EXPECT_DOUBLE_EQ(c8.step(), kHalfPi / 255);
  EXPECT_DOUBLE_EQ(c4.step(), kHalfPi / 15);
  EXPECT_DOUBLE_EQ(c8.max_angle_error(), kHalfPi / 510);
  EXPECT_DOUBLE_EQ(c4.max_angle_error(), kHalfPi / 30);
  EXPECT_NEAR(c8.max_angle_error(), 3.08e-3, 0.005e-3);  // rounded to 3 significant digits
  EXPECT_NEAR(c4.max_angle_error(), 5.24e-2, 0.005e-2);
}

TEST(Codec, RoundTripErrorWithinHalfStepOnDenseGrid) {
  const int q = 7;  // odd, so 4-bit codes end in a half-used byte
  const size_t grid = 20001;
  std::vector<float> angles(((grid + q - 1) / q) * q, 0.0f);
  for (size_t i = 0; i < angles.size(); ++i)
    angles[i] = float(kHalfPi * double(std::min(i, grid - 1)) / double(grid - 1));
  ASSERT_EQ(angles[0], 0.0f);
  ASSERT_EQ(angles[grid - 1], float(kHalfPi));
  const size_t n = angles.size() / q;
  for (CodeType type : kAllTypes) {
    SCOPED_TRACE(code_type_name(type));
    const Codec codec(type, q);
    std::vector<uint8_t> codes(n * codec.code_size());
    std::vector<float> decoded(angles.size());
    codec.encode(n, angles.data(), codes.data());
    codec.decode(n, codes.data(), decoded.data());
    double worst = 0;
    for (size_t i = 0; i < angles.size(); ++i) {
      // float(π/2) is 4.4e−8 above π/2: allow float rounding on top of the half step.
      const double err = std::abs(double(decoded[i]) - double(angles[i]));
      worst = std::max(worst, err);
      ASSERT_LE(err, codec.max_angle_error() + 1e-7) << "angle " << angles[i];
      ASSERT_GE(decoded[i], 0.0f);
      ASSERT_LE(decoded[i], float(kHalfPi));
    }
    if (type == CodeType::kFloat) {
      EXPECT_EQ(worst, 0.0);
    } else {
      // The bound is tight: the grid is dense enough to land near a midpoint between levels.
      EXPECT_GT(worst, 0.98 * codec.max_angle_error());
      // Endpoints map to the first and last level exactly.
      EXPECT_EQ(decoded[0], 0.0f);
      EXPECT_NEAR(decoded[grid - 1], kHalfPi, 1e-6);
    }
  }
}

TEST(Codec, NearestLevelIsChosen) {
  // Angles a fraction f of a step above level k must map to k (f < 1/2) or k+1 (f > 1/2).
  for (CodeType type : kQuantised) {
    SCOPED_TRACE(code_type_name(type));
    const Codec codec(type, 1);
    const double step = codec.step();
    for (int k = 0; k + 1 < codec.levels(); ++k) {
      for (double f : {0.1, 0.45, 0.55, 0.9}) {
        const float a = float((k + f) * step);
        uint8_t code[1] = {0xFF};
        codec.encode(1, &a, code);
        EXPECT_EQ(codec.level(code, 0), f < 0.5 ? k : k + 1) << "k=" << k << " f=" << f;
      }
    }
  }
}

TEST(Codec, LevelsAreExactAtMultiplesOfStep) {
  for (CodeType type : kQuantised) {
    SCOPED_TRACE(code_type_name(type));
    const int q = 3;
    const Codec codec(type, q);
    for (int k = 0; k < codec.levels(); ++k) {
      const float level_angle = float(k * codec.step());
      const std::vector<float> in(q, level_angle);
      std::vector<uint8_t> code(codec.code_size());
      std::vector<float> out(q);
      codec.encode(1, in.data(), code.data());
      codec.decode(1, code.data(), out.data());
      for (int i = 0; i < q; ++i) {
        EXPECT_EQ(codec.level(code.data(), i), k);
        EXPECT_EQ(out[i], level_angle) << "k=" << k;
      }
    }
  }
}

TEST(Codec, OutOfRangeAnglesAreClamped) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> below = {-1e-4f, -0.5f, -1.0f, -100.0f, -2e7f, -1e9f, -3e38f, -inf};
  const std::vector<float> above = {
      float(kHalfPi) + 1e-4f, 2.0f, 3.14f, 100.0f, 2e7f, 1e9f, 3e38f, inf};
  for (CodeType type : kAllTypes) {
    const Codec codec(type, 1);
    for (bool low : {true, false}) {
      for (float a : low ? below : above) {
        SCOPED_TRACE(std::string(code_type_name(type)) + " angle " + std::to_string(a));
        std::vector<uint8_t> code(codec.code_size(), 0xAB);
        float out = -7.0f;
        codec.encode(1, &a, code.data());
        codec.decode(1, code.data(), &out);
        if (low) {
          EXPECT_EQ(out, 0.0f);
        } else {
          EXPECT_NEAR(out, kHalfPi, 1e-6);
        }
        if (type != CodeType::kFloat) {
          EXPECT_EQ(codec.level(code.data(), 0), low ? 0 : codec.levels() - 1);
        }
      }
    }
  }
}

TEST(Codec, FourBitNibbleLayout) {
  // Qubit 2j in the low nibble of byte j, qubit 2j+1 in the high nibble; for odd q the unused
  // high nibble of the last byte is zero whatever the buffer held before.
  const Codec codec(CodeType::k4bit, 5);
  const std::vector<int> levels = {1, 2, 3, 4, 15};
  std::vector<float> angles;
  for (int k : levels) angles.push_back(float(k * codec.step()));
  std::vector<uint8_t> code(3, 0xFF);
  codec.encode(1, angles.data(), code.data());
  EXPECT_EQ(code[0], 0x21);
  EXPECT_EQ(code[1], 0x43);
  EXPECT_EQ(code[2], 0x0F);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(codec.level(code.data(), i), levels[i]);

  // Decoding a hand-built code reads the same layout.
  const uint8_t handmade[3] = {0xA5, 0x0C, 0x07};
  std::vector<float> out(5);
  codec.decode(1, handmade, out.data());
  const int expected[5] = {5, 10, 12, 0, 7};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(out[i], float(expected[i] * codec.step())) << i;
}

TEST(Codec, EightBitAndFloatLayout) {
  const Codec c8(CodeType::k8bit, 3);
  const float a8[3] = {float(200 * c8.step()), 0.0f, float(kHalfPi)};
  uint8_t code8[3];
  c8.encode(1, a8, code8);
  EXPECT_EQ(code8[0], 200);
  EXPECT_EQ(code8[1], 0);
  EXPECT_EQ(code8[2], 255);

  const Codec cf(CodeType::kFloat, 2);
  const float af[2] = {0.25f, 1.5f};
  uint8_t codef[8];
  cf.encode(1, af, codef);
  float back[2];
  std::memcpy(back, codef, sizeof(back));  // the code is the float angles themselves
  EXPECT_EQ(back[0], 0.25f);
  EXPECT_EQ(back[1], 1.5f);
}

TEST(Codec, BatchCodesDoNotOverlap) {
  // n codes are laid out every code_size() bytes; encoding a batch equals encoding one by one.
  for (CodeType type : kAllTypes) {
    SCOPED_TRACE(code_type_name(type));
    const int q = 5;
    const Codec codec(type, q);
    const size_t n = 9;
    std::vector<float> angles(n * q);
    for (size_t i = 0; i < angles.size(); ++i) angles[i] = float(kHalfPi * ((i * 37) % 101) / 100);
    std::vector<uint8_t> batch(n * codec.code_size());
    codec.encode(n, angles.data(), batch.data());
    std::vector<float> decoded(n * q);
    codec.decode(n, batch.data(), decoded.data());
    for (size_t v = 0; v < n; ++v) {
      std::vector<uint8_t> one(codec.code_size());
      codec.encode(1, angles.data() + v * q, one.data());
      EXPECT_EQ(0, std::memcmp(one.data(), batch.data() + v * codec.code_size(), one.size()));
      std::vector<float> one_decoded(q);
      codec.decode(1, one.data(), one_decoded.data());
      for (int i = 0; i < q; ++i) EXPECT_EQ(one_decoded[i], decoded[v * q + i]);
    }
  }
}

TEST(Codec, ParseCodeType) {
  EXPECT_EQ(parse_code_type("float"), CodeType::kFloat);
  EXPECT_EQ(parse_code_type("8bit"), CodeType::k8bit);
  EXPECT_EQ(parse_code_type("8"), CodeType::k8bit);
  EXPECT_EQ(parse_code_type("4bit"), CodeType::k4bit);
  EXPECT_EQ(parse_code_type("4"), CodeType::k4bit);
  for (CodeType type : kAllTypes) EXPECT_EQ(parse_code_type(code_type_name(type)), type);
  for (const char* bad : {"", "16", "2bit", "8BIT", "Float", "float32", " 8", "4 bit", "int8"}) {
    SCOPED_TRACE(std::string("'") + bad + "'");
    try {
      parse_code_type(bad);
      ADD_FAILURE() << "accepted";
    } catch (const faiss::FaissException& e) {
      EXPECT_NE(std::string(e.what()).find("unknown code type"), std::string::npos) << e.what();
    }
  }
}

// A range per qubit, narrow and offset as a normalised readout's angles are, each different.
void narrow_ranges(int q, std::vector<float>* lo, std::vector<float>* hi) {
  lo->resize(q);
  hi->resize(q);
  for (int i = 0; i < q; ++i) {
    (*lo)[i] = float(std::numbers::pi / 4 - 0.03 - 0.01 * i);
    (*hi)[i] = float(std::numbers::pi / 4 + 0.02 + 0.005 * i);
  }
}

TEST(Codec, RangedLevelsSpanEachQubitsRange) {
  const int q = 5;
  std::vector<float> lo, hi;
  narrow_ranges(q, &lo, &hi);
  for (const CodeType type : kQuantised) {
    SCOPED_TRACE(code_type_name(type));
    const Codec codec(type, q, lo, hi);
    ASSERT_TRUE(codec.ranged());
    const int top = codec.levels() - 1;
    double widest = 0;
    for (int i = 0; i < q; ++i) {
      EXPECT_FLOAT_EQ(float(codec.qubit_low(i)), lo[i]);
      EXPECT_NEAR(codec.qubit_low(i) + top * codec.qubit_step(i), hi[i], 1e-6);
      widest = std::max(widest, double(hi[i]) - lo[i]);
    }
    EXPECT_NEAR(codec.max_angle_error(), widest / top / 2, 1e-9);
    // Level 0 and the top level decode to the ends of every range.
    std::vector<float> ends(2 * q);
    for (int i = 0; i < q; ++i) {
      ends[i] = lo[i];
      ends[q + i] = hi[i];
    }
    std::vector<uint8_t> codes(2 * codec.code_size());
    codec.encode(2, ends.data(), codes.data());
    for (int i = 0; i < q; ++i) {
      EXPECT_EQ(codec.level(codes.data(), i), 0) << "qubit " << i;
      EXPECT_EQ(codec.level(codes.data() + codec.code_size(), i), top) << "qubit " << i;
    }
  }
}

TEST(Codec, RangedRoundTripWithinHalfItsStepAndClampsOutside) {
  const int q = 7;
  std::vector<float> lo, hi;
  narrow_ranges(q, &lo, &hi);
  for (const CodeType type : kQuantised) {
    SCOPED_TRACE(code_type_name(type));
    const Codec codec(type, q, lo, hi);
    // 1,000 vectors sweeping each qubit's range, then one below and one above every range.
    const size_t n = 1002;
    std::vector<float> angles(n * q);
    for (size_t v = 0; v < n; ++v)
      for (int i = 0; i < q; ++i) {
        const double t = v < 1000 ? double(v) / 999 : v == 1000 ? -0.5 : 1.5;
        angles[v * q + i] = float(lo[i] + t * (hi[i] - lo[i]));
      }
    std::vector<uint8_t> codes(n * codec.code_size());
    std::vector<float> back(n * q);
    codec.encode(n, angles.data(), codes.data());
    codec.decode(n, codes.data(), back.data());
    for (size_t v = 0; v < 1000; ++v)
      for (int i = 0; i < q; ++i)
        ASSERT_LE(std::abs(double(back[v * q + i]) - angles[v * q + i]),
                  codec.qubit_step(i) / 2 + 1e-6)
            << "vector " << v << " qubit " << i;
    for (int i = 0; i < q; ++i) {
      EXPECT_NEAR(back[1000 * q + i], lo[i], 1e-6) << "below the range: its low end";
      EXPECT_NEAR(back[1001 * q + i], hi[i], 1e-6) << "above the range: its high end";
    }
  }
}

TEST(Codec, RangesAreClippedAndWidenedToAPositiveStep) {
  const std::vector<float> lo = {-0.5f, 0.7f, 1.5f}, hi = {0.2f, 0.7f, 2.0f};
  const Codec codec(CodeType::k4bit, 3, lo, hi);
  EXPECT_DOUBLE_EQ(codec.qubit_low(0), 0.0);
  EXPECT_NEAR(codec.qubit_low(0) + 15 * codec.qubit_step(0), 0.2, 1e-6);
  EXPECT_NEAR(15 * codec.qubit_step(1), Codec::kMinRange, 1e-12) << "an empty range";
  EXPECT_NEAR(codec.qubit_low(1) + 7.5 * codec.qubit_step(1), 0.7, 1e-6) << "centred";
  EXPECT_NEAR(codec.qubit_low(2) + 15 * codec.qubit_step(2), kHalfPi, 1e-6);
}

TEST(Codec, EqualityComparesTypeQubitsAndRanges) {
  std::vector<float> lo, hi;
  narrow_ranges(4, &lo, &hi);
  const Codec ranged(CodeType::k4bit, 4, lo, hi);
  EXPECT_EQ(ranged, Codec(CodeType::k4bit, 4, lo, hi));
  EXPECT_EQ(ranged, ranged);
  EXPECT_FALSE(ranged == Codec(CodeType::k4bit, 4));
  EXPECT_FALSE(ranged == Codec(CodeType::k8bit, 4, lo, hi));
  hi[2] += 0.01f;
  EXPECT_FALSE(ranged == Codec(CodeType::k4bit, 4, lo, hi));
  EXPECT_EQ(Codec(CodeType::k8bit, 4), Codec(CodeType::k8bit, 4));
  EXPECT_TRUE(Codec(CodeType::k8bit, 4).difference_table().empty());
  EXPECT_EQ(ranged.difference_table().size(), size_t(4 * 16));
}

TEST(Codec, BadRangesAreRefused) {
  const std::vector<float> lo = {0.1f, 0.2f}, hi = {0.3f, 0.4f};
  EXPECT_THROW(Codec(CodeType::kFloat, 2, lo, hi), faiss::FaissException);
  EXPECT_THROW(Codec(CodeType::k4bit, 3, lo, hi), faiss::FaissException);
  EXPECT_THROW(Codec(CodeType::k4bit, 2, lo, std::vector<float>{0.3f}), faiss::FaissException);
  EXPECT_THROW(Codec(CodeType::k4bit, 2, hi, lo), faiss::FaissException) << "low above high";
  const std::vector<float> nan = {std::numeric_limits<float>::quiet_NaN(), 0.4f};
  EXPECT_THROW(Codec(CodeType::k8bit, 2, nan, hi), faiss::FaissException);
}

TEST(Codec, InvalidConstructionThrows) {
  EXPECT_THROW(Codec(CodeType::k8bit, 0), faiss::FaissException);
  EXPECT_THROW(Codec(CodeType::k4bit, -3), faiss::FaissException);
  EXPECT_THROW(Codec(static_cast<CodeType>(7), 4), faiss::FaissException);
}

}  // namespace
}  // namespace bloch
