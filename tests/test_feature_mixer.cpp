// FeatureMixer and FidelityHead (the mixer extension in front of the circuit): shapes and
// parameter counts, the mixer's rotations preserving norms, gradients against finite
// differences through mixer + circuit, serialisation, and training through the index.

#include <faiss/impl/FaissAssert.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "SyntheticData.h"
#include "index/BinaryIO.h"
#include "index/FeatureMixer.h"
#include "index/FidelityHead.h"
#include "index/FidelityHeadModel.h"
#include "index/IndexFidelityFlat.h"

namespace bloch {
namespace {

std::vector<float> random_rows(size_t n, int d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n * d);
  for (auto& v : x) v = normal(rng);
  return x;
}

TEST(FeatureMixer, ShapeAndParameterCount) {
  FeatureMixer m(384, 256, 3, 1);
  EXPECT_EQ(m.width(), 512);
  EXPECT_EQ(m.stages(), 27);
  EXPECT_EQ(m.num_parameters(), 27u * 256 + 512);
  // The counts of DESIGN §1.7: circuit 512→128 (4,608) + one butterfly (2,304) + scales (512).
  const FidelityHead one = FidelityHead::make({384, 128, 1, 7});
  EXPECT_EQ(one.num_parameters(), 7424u);
  EXPECT_EQ(FidelityHead::make({384, 128, 2, 7}).num_parameters(), 9728u);
  EXPECT_EQ(FidelityHead::make({384, 128, 3, 7}).num_parameters(), 12032u);
  EXPECT_EQ(FidelityHead::make({384, 128, 0, 7}).num_parameters(), 4608u);
  EXPECT_NE(one.describe().find("butterflies=1"), std::string::npos) << one.describe();
  EXPECT_THROW(FeatureMixer(0, 2, 1, 1), faiss::FaissException);
  EXPECT_THROW(FeatureMixer(8, 2, 0, 1), faiss::FaissException);
}

TEST(FidelityHead, DefaultsAreTheMeasuredWinnersAndPaperExactStaysSelectable) {
  // docs/QUALITY.md: a 6-butterfly mixer, the normalised readout and log-fidelity logits are
  // the defaults.
  const FidelityHead defaults = FidelityHead::make(HeadSpec{384, 128});
  EXPECT_TRUE(defaults.has_mixer());
  EXPECT_EQ(defaults.mixer()->butterflies(), 6);
  EXPECT_EQ(defaults.readout(), Readout::kNormalized);
  EXPECT_FALSE(defaults.paper_exact());
  EXPECT_NE(defaults.describe().find("normalised readout"), std::string::npos);
  EXPECT_FALSE(FidelityHead::make(HeadSpec{384, 128, 0}).has_mixer());
  EXPECT_FALSE(FidelityHead::make(HeadSpec{384, 128, 0}).paper_exact());
  EXPECT_TRUE(FidelityHead::make(HeadSpec{384, 128, 0, 1, Readout::kRaw}).paper_exact());
  EXPECT_EQ(HeadTrainerOptions{}.logits, LogitForm::kLogFidelity);
  IndexFidelityFlat paper(384, 128, CodeType::k8bit);
  EXPECT_TRUE(paper.head().paper_exact());
  EXPECT_NE(paper.head().describe().find("paper-exact"), std::string::npos);
}

TEST(FeatureMixer, RotationsPreserveTheStandardisedNorm) {
  // With unit scales the butterflies are orthogonal: |y| = |standardised x|.
  FeatureMixer m(20, 2, 2, 3);
  const auto x = random_rows(1, 20, 4);
  std::vector<double> y(m.width());
  m.forward(x.data(), y.data());
  double nx = 0, ny = 0;
  for (float v : x) nx += double(v) * v;
  for (double v : y) ny += v * v;
  EXPECT_NEAR(nx, ny, 1e-9 * nx);
}

TEST(FeatureMixer, StandardisationCentresAndScales) {
  FeatureMixer m(3, 2, 1, 3);
  std::vector<double> params(m.num_parameters(), 0.0);  // angles 0: identity rotations
  std::fill(params.end() - m.width(), params.end(), 1.0);
  m.set_parameters(params);
  const std::vector<float> x = {1, 10, -5, 3, 30, -5, 5, 50, -5};  // third feature constant
  m.fit_standardization(3, x.data());
  std::vector<double> y(m.width());
  m.forward(x.data() + 3, y.data());  // the middle row is the mean
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(y[j], 0.0, 1e-9) << j;
  m.forward(x.data() + 6, y.data());
  EXPECT_NEAR(y[0], std::sqrt(1.5), 1e-9);  // (5 − 3)/σ, σ = √(8/3)
  EXPECT_EQ(y[3], 0.0);                     // padding
}

// L = Σ w_k·ϑ_k with fixed random weights: ∂L/∂ϑ = w.
double linear_loss(FidelityHead& head, const std::vector<float>& x, const std::vector<double>& w) {
  FidelityHeadModel model(head);
  const size_t n = x.size() / head.dim();
  std::vector<double> angles(n * head.qubits());
  model.forward(n, x.data(), angles.data(), nullptr);
  return std::inner_product(angles.begin(), angles.end(), w.begin(), 0.0);
}

TEST(FidelityHeadModel, GradientMatchesFiniteDifferences) {
  for (const HeadSpec spec :
       {HeadSpec{12, 2, 1, 5}, HeadSpec{10, 4, 2, 6}, HeadSpec{6, 3, 0, 7},
        HeadSpec{12, 2, 1, 5, Readout::kRaw}, HeadSpec{6, 3, 0, 7, Readout::kRaw}}) {
    SCOPED_TRACE("d=" + std::to_string(spec.d) + " q=" + std::to_string(spec.q) +
                 " butterflies=" + std::to_string(spec.butterflies) +
                 " readout=" + std::to_string(int(spec.readout)));
    FidelityHead head = FidelityHead::make(spec);
    const size_t n = 3;
    auto x = random_rows(n, spec.d, 11);
    if (head.mixer()) head.mixer()->fit_standardization(n, x.data());
    std::mt19937_64 rng(12);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> w(n * spec.q);
    for (auto& v : w) v = normal(rng);

    FidelityHeadModel model(head);
    std::vector<double> angles(n * spec.q), acts;
    model.forward(n, x.data(), angles.data(), &acts);
    std::vector<double> grad(model.num_parameters(), 0.0);
    model.backward(n, x.data(), acts, w.data(), grad.data());

    // Circuit parameters are stored as float: perturb by a float-representable step.
    const auto p0 = model.parameters();
    const size_t mixer_n = head.mixer() ? head.mixer()->num_parameters() : 0;
    for (size_t k = 0; k < p0.size(); k += std::max<size_t>(1, p0.size() / 60)) {
      const double h = 1.0 / 512;
      auto p = p0;
      p[k] = p0[k] + h;
      model.set_parameters(p);
      const double up = linear_loss(head, x, w);
      p[k] = p0[k] - h;
      model.set_parameters(p);
      const double down = linear_loss(head, x, w);
      model.set_parameters(p0);
      const double fd = (up - down) / (2 * h);
      EXPECT_NEAR(grad[k], fd, 2e-3 * std::max(1.0, std::abs(fd)))
          << (k < mixer_n ? "mixer" : "circuit") << " parameter " << k;
    }
  }
}

TEST(FidelityHead, SaveLoadRoundTripAndCorruption) {
  FidelityHead head = FidelityHead::make({24, 4, 2, 9});
  auto x = random_rows(50, 24, 3);
  head.mixer()->fit_standardization(50, x.data());
  const auto dir = std::filesystem::temp_directory_path() /
                   ("bloch_fidelity_head_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = dir / "head.bin";
  head.save(path);
  const FidelityHead loaded = FidelityHead::load(path);
  EXPECT_TRUE(loaded == head);
  std::vector<float> a(50 * 4), b(50 * 4);
  head.forward(50, x.data(), a.data());
  loaded.forward(50, x.data(), b.data());
  EXPECT_EQ(a, b);

  std::string bytes = read_file(path);
  bytes[bytes.size() / 2] ^= 1;
  write_file_atomically(path, bytes);
  EXPECT_THROW(FidelityHead::load(path), faiss::FaissException);
  std::filesystem::remove_all(dir);
}

TEST(FidelityHead, FittedAngleRangesAreTheSampleExtremesAndShapeOnlyFourBitCodes) {
  const int d = 24, q = 6;
  FidelityHead head = FidelityHead::make({d, q, 2, 5});
  const auto x = random_rows(300, d, 8);
  head.mixer()->fit_standardization(300, x.data());
  EXPECT_FALSE(head.has_angle_ranges());
  EXPECT_FALSE(head.codec(CodeType::k4bit).ranged());
  head.fit_angle_ranges(300, x.data());
  ASSERT_TRUE(head.has_angle_ranges());
  std::vector<float> angles(300 * q);
  head.forward(300, x.data(), angles.data());
  for (int i = 0; i < q; ++i) {
    float lo = angles[i], hi = angles[i];
    for (size_t v = 0; v < 300; ++v) {
      lo = std::min(lo, angles[v * q + i]);
      hi = std::max(hi, angles[v * q + i]);
    }
    EXPECT_EQ(head.angle_low()[i], lo) << "qubit " << i;
    EXPECT_EQ(head.angle_high()[i], hi) << "qubit " << i;
  }
  EXPECT_NE(head.describe().find("angle ranges fitted"), std::string::npos) << head.describe();
  const Codec four = head.codec(CodeType::k4bit);
  ASSERT_TRUE(four.ranged());
  EXPECT_NEAR(four.qubit_low(2), head.angle_low()[2], 1e-7);
  EXPECT_FALSE(head.codec(CodeType::k8bit).ranged());
  EXPECT_FALSE(head.codec(CodeType::kFloat).ranged());

  // The ranges travel with the head's bytes.
  const FidelityHead loaded = FidelityHead::from_bytes(head.to_bytes(), "test head");
  EXPECT_TRUE(loaded == head);
  EXPECT_EQ(loaded.angle_high(), head.angle_high());

  // New parameters move the angles, so the ranges go with them.
  FidelityHeadModel model(head);
  model.set_parameters(model.parameters());
  EXPECT_FALSE(head.has_angle_ranges());
  EXPECT_FALSE(head == loaded);
}

TEST(FidelityHead, BadAngleRangesAreRefused) {
  FidelityHead head = FidelityHead::make({16, 4, 0, 1});
  EXPECT_THROW(head.set_angle_ranges({0.1f, 0.2f}, {0.3f, 0.4f}), faiss::FaissException);
  EXPECT_THROW(head.set_angle_ranges({0.1f, 0.2f, 0.3f, 0.9f}, {0.3f, 0.4f, 0.5f, 0.8f}),
               faiss::FaissException);
  EXPECT_THROW(head.set_angle_ranges({-0.1f, 0.2f, 0.3f, 0.4f}, {0.3f, 0.4f, 0.5f, 0.8f}),
               faiss::FaissException);
  EXPECT_THROW(head.fit_angle_ranges(0, nullptr), faiss::FaissException);
  EXPECT_FALSE(head.has_angle_ranges());
}

TEST(FidelityHead, RecordsOfFormatVersionTwoReadWithoutRanges) {
  FidelityHead head = FidelityHead::make({24, 4, 2, 9, Readout::kNormalized});
  // Version 2's layout: version, mixer flag, mixer, circuit, readout; no ranges.
  BinaryWriter out;
  out.put<uint32_t>(2);
  out.put<uint8_t>(1);
  head.mixer()->serialize(out);
  head.circuit().serialize(out);
  out.put<uint8_t>(uint8_t(Readout::kNormalized));
  const std::string record = out.finish_with_checksum();
  BinaryReader in(record, "version 2 head");
  const FidelityHead read = FidelityHead::deserialize(in);
  EXPECT_TRUE(read == head);
  EXPECT_FALSE(read.has_angle_ranges());
}

TEST(FidelityHead, MixedForwardIsMixerThenCircuit) {
  FidelityHead head = FidelityHead::make({20, 4, 1, 2, Readout::kRaw});
  auto x = random_rows(5, 20, 8);
  std::vector<float> angles(5 * 4);
  head.forward(5, x.data(), angles.data());
  std::vector<double> y(head.mixer()->width());
  for (int i = 0; i < 5; ++i) {
    head.mixer()->forward(x.data() + i * 20, y.data());
    std::vector<float> yf(y.begin(), y.end());
    float expect[4];
    head.circuit().forward(1, yf.data(), expect);
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(angles[i * 4 + j], expect[j], 1e-5);
  }
}

TEST(FidelityHead, IndexTrainsAMixedHeadAndImprovesNeighbourRecall) {
  const int d = 32, q = 8;
  auto set = testing::make_clustered(1200, d, 12, 1.0f, 0.6f, 21);
  IndexFidelityFlat index(HeadSpec{d, q, 1, 3}, CodeType::k8bit);
  index.training.max_epochs = 6;
  index.training.batch_size = 128;
  index.train(1000, set.x.data());
  EXPECT_TRUE(index.is_trained);
  EXPECT_LT(index.last_training.best_holdout_loss, index.last_training.initial_holdout_loss);
  index.add(1000, set.x.data());
  // Cluster-mates among the 10 nearest codes of the 200 unseen points.
  const size_t nq = 200, k = 10;
  std::vector<float> dist(nq * k);
  std::vector<faiss::Index::idx_t> labels(nq * k);
  index.search(nq, set.x.data() + 1000 * d, k, dist.data(), labels.data());
  size_t same = 0;
  for (size_t i = 0; i < nq; ++i)
    for (size_t r = 0; r < k; ++r) same += set.cluster[labels[i * k + r]] == set.cluster[1000 + i];
  EXPECT_GT(double(same) / double(nq * k), 0.8);
}

TEST(FidelityHead, IndexTrainingFitsTheFourBitRanges) {
  const int d = 32, q = 8;
  auto set = testing::make_clustered(600, d, 6, 1.0f, 0.6f, 4);
  IndexFidelityFlat index(HeadSpec{d, q, 1, 3}, CodeType::k4bit);
  EXPECT_FALSE(index.codec().ranged());
  index.training.max_epochs = 1;
  index.train(600, set.x.data());
  ASSERT_TRUE(index.head().has_angle_ranges());
  EXPECT_EQ(index.codec(), index.head().codec(CodeType::k4bit));
  // The ranges are those of the trained head on the training rows.
  FidelityHead refit = index.head();
  refit.fit_angle_ranges(600, set.x.data());
  EXPECT_EQ(refit.angle_low(), index.head().angle_low());
  EXPECT_EQ(refit.angle_high(), index.head().angle_high());
}

}  // namespace
}  // namespace bloch
