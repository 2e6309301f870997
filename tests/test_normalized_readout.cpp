// The normalised readout (index/NormalizedReadout.h): outputs stay in the codecs' range on the
// sphere |ϑ − c| = ρ, the backward pass matches finite differences, a head applies it after the
// circuit, heads remember it through serialisation (older records read as raw), the factory
// selects it, and the trainer scales its logits by the model's log-fidelity scale.

#include <faiss/impl/FaissAssert.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "SyntheticData.h"
#include "index/BinaryIO.h"
#include "index/FidelityHead.h"
#include "index/FidelityHeadModel.h"
#include "index/IndexFactory.h"
#include "index/IndexFidelityFlat.h"
#include "index/NormalizedReadout.h"

namespace bloch {
namespace {

constexpr double kHalfPi = std::numbers::pi / 2;

std::vector<double> random_angles(size_t n, int q, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, kHalfPi);
  std::vector<double> a(n * size_t(q));
  for (auto& v : a) v = u(rng);
  return a;
}

double deviation_norm(const std::vector<double>& a) {
  double s = 0;
  for (double v : a) s += (v - kReadoutCentre) * (v - kReadoutCentre);
  return std::sqrt(s);
}

TEST(NormalizedReadout, OutputsLieOnTheSphereInsideTheCodecRange) {
  const int q = 16;
  std::vector<std::vector<double>> rows;
  for (uint64_t seed = 1; seed <= 20; ++seed) rows.push_back(random_angles(1, q, seed));
  rows.push_back(std::vector<double>(q, 0.0));      // a corner of the cube
  rows.push_back(std::vector<double>(q, kHalfPi));  // the opposite corner
  std::vector<double> one_off(q, kReadoutCentre);
  one_off[3] = kReadoutCentre + 1e-3;  // one qubit off the centre: moves to the boundary
  rows.push_back(one_off);
  for (const auto& raw : rows) {
    std::vector<double> out(q);
    normalize_readout(q, raw.data(), out.data());
    EXPECT_NEAR(deviation_norm(out), kReadoutRadius, 1e-12);
    for (double v : out) {
      EXPECT_GE(v, -1e-15);
      EXPECT_LE(v, kHalfPi + 1e-15);
    }
    // The direction of the deviation is kept: out − c is a positive multiple of raw − c.
    const double gain = kReadoutRadius / deviation_norm(raw);
    for (int i = 0; i < q; ++i)
      EXPECT_NEAR(out[i] - kReadoutCentre, gain * (raw[i] - kReadoutCentre), 1e-12);
  }
  EXPECT_NEAR(
      [&] {
        std::vector<double> out(q);
        normalize_readout(q, one_off.data(), out.data());
        return out[3];
      }(),
      kHalfPi, 1e-12);
}

TEST(NormalizedReadout, ARowAtTheCentreStaysThereWithoutNaN) {
  const int q = 8;
  std::vector<double> raw(q, kReadoutCentre), out(q), grad(q, 1.0), grad_raw(q);
  normalize_readout(q, raw.data(), out.data());
  for (double v : out) EXPECT_EQ(v, kReadoutCentre);
  normalize_readout_backward(q, raw.data(), grad.data(), grad_raw.data());
  for (double g : grad_raw) EXPECT_EQ(g, 0.0);
  std::vector<float> f(q, float(kReadoutCentre));
  normalize_readout(1, q, f.data());
  for (float v : f) EXPECT_FALSE(std::isnan(v));
}

TEST(NormalizedReadout, FloatRowsMatchTheDoubleReference) {
  const int q = 12;
  const size_t n = 5;
  const auto raw = random_angles(n, q, 4);
  std::vector<float> f(raw.begin(), raw.end());
  normalize_readout(n, q, f.data());
  for (size_t v = 0; v < n; ++v) {
    std::vector<double> row(raw.begin() + long(v * q), raw.begin() + long((v + 1) * q));
    // The float path normalises the float-rounded input.
    for (auto& x : row) x = double(float(x));
    normalize_readout(q, row.data(), row.data());
    for (int i = 0; i < q; ++i) EXPECT_NEAR(f[v * q + i], row[i], 2e-7);
  }
}

TEST(NormalizedReadout, BackwardMatchesFiniteDifferences) {
  const int q = 10;
  const auto raw = random_angles(1, q, 7);
  const auto w = random_angles(1, q, 8);  // L = Σ w_i ϑ_i
  std::vector<double> grad_raw(q);
  normalize_readout_backward(q, raw.data(), w.data(), grad_raw.data());
  auto loss = [&](const std::vector<double>& r) {
    std::vector<double> out(q);
    normalize_readout(q, r.data(), out.data());
    double l = 0;
    for (int i = 0; i < q; ++i) l += w[i] * out[i];
    return l;
  };
  for (int k = 0; k < q; ++k) {
    const double h = 1e-6;
    auto up = raw, down = raw;
    up[k] += h;
    down[k] -= h;
    EXPECT_NEAR(grad_raw[k], (loss(up) - loss(down)) / (2 * h), 1e-7) << "angle " << k;
  }
}

TEST(NormalizedReadout, HeadAppliesItAfterTheCircuit) {
  const int d = 20, q = 4;
  const auto x = testing::make_clustered(6, d, 2, 1.0f, 0.3f, 5).x;
  for (int butterflies : {0, 1}) {
    SCOPED_TRACE("butterflies=" + std::to_string(butterflies));
    const FidelityHead normalised = FidelityHead::make({d, q, butterflies, 9});
    const FidelityHead raw = FidelityHead::make({d, q, butterflies, 9, Readout::kRaw});
    EXPECT_FALSE(normalised == raw);  // same parameters, different readout
    std::vector<float> a(6 * q), b(6 * q);
    normalised.forward(6, x.data(), a.data());
    raw.forward(6, x.data(), b.data());
    normalize_readout(6, q, b.data());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
  }
}

TEST(NormalizedReadout, HeadFilesKeepItAndVersionOneRecordsReadAsRaw) {
  const FidelityHead head = FidelityHead::make({16, 4, 1, 3});
  const FidelityHead back = FidelityHead::from_bytes(head.to_bytes(), "test");
  EXPECT_EQ(back.readout(), Readout::kNormalized);
  EXPECT_TRUE(back == head);

  // A version-1 record (before readouts): magic, version, has_mixer = 0, circuit, checksum.
  const CircuitHead circuit(16, 4, 3);
  BinaryWriter out;
  out.put(std::array<char, 8>{'B', 'L', 'O', 'C', 'H', 'F', 'H', '1'});
  out.put<uint32_t>(1);
  out.put<uint8_t>(0);
  circuit.serialize(out);
  const FidelityHead old = FidelityHead::from_bytes(out.finish_with_checksum(), "v1 record");
  EXPECT_TRUE(old.paper_exact());

  // An unknown readout tag is refused with a message that names it.
  BinaryWriter bad;
  bad.put(std::array<char, 8>{'B', 'L', 'O', 'C', 'H', 'F', 'H', '1'});
  bad.put<uint32_t>(2);
  bad.put<uint8_t>(0);
  circuit.serialize(bad);
  bad.put<uint8_t>(7);
  try {
    FidelityHead::from_bytes(bad.finish_with_checksum(), "bad record");
    FAIL() << "an unknown readout was accepted";
  } catch (const faiss::FaissException& e) {
    EXPECT_NE(std::string(e.what()).find("unknown readout 7"), std::string::npos) << e.what();
  }
}

const FidelityHead& head_of(const faiss::Index& index) {
  return dynamic_cast<const IndexFidelityFlat&>(index).head();
}

TEST(NormalizedReadout, FactoryDefaultsToItAndRawSelectsThePaperReadout) {
  EXPECT_EQ(head_of(*index_factory(32, "QC8,Flat")).readout(), Readout::kNormalized);
  EXPECT_EQ(head_of(*index_factory(32, "QC8x4B2,Flat")).readout(), Readout::kNormalized);
  EXPECT_EQ(head_of(*index_factory(32, "QC8B1raw,Flat")).readout(), Readout::kRaw);
  EXPECT_TRUE(head_of(*index_factory(32, "QC8B0raw,Flat")).paper_exact());
  EXPECT_TRUE(head_of(*index_factory(32, "QC8x32raw,Flat")).readout() == Readout::kRaw);
  EXPECT_THROW(index_factory(32, "QC8rawB1,Flat"), faiss::FaissException);
  EXPECT_THROW(index_factory(32, "QC8B1rawx,Flat"), faiss::FaissException);
}

TEST(NormalizedReadout, ModelScalesLogitsByTwoRhoSquaredAndPrefersItsOwnTemperature) {
  FidelityHead normalised = FidelityHead::make({16, 4, 1, 3});
  FidelityHead raw = FidelityHead::make({16, 4, 1, 3, Readout::kRaw});
  const FidelityHeadModel n_model(normalised), r_model(raw);
  EXPECT_DOUBLE_EQ(n_model.log_fidelity_scale(), 2 * kReadoutRadius * kReadoutRadius);
  EXPECT_DOUBLE_EQ(r_model.log_fidelity_scale(), 4.0);
  EXPECT_DOUBLE_EQ(r_model.preferred_temperature(TrainingMode::kSupervised), 0.005);
  EXPECT_DOUBLE_EQ(n_model.preferred_temperature(TrainingMode::kSupervised), 0.06);
  EXPECT_DOUBLE_EQ(n_model.preferred_temperature(TrainingMode::kUnsupervised), 0.0175);
}

TEST(NormalizedReadout, NormalisedHeadsPreferLargeBatchesAndABolderStep) {
  FidelityHead normalised = FidelityHead::make({16, 4, 1, 3});
  FidelityHead raw = FidelityHead::make({16, 4, 1, 3, Readout::kRaw});
  const FidelityHeadModel n_model(normalised), r_model(raw);
  for (TrainingMode mode : {TrainingMode::kSupervised, TrainingMode::kUnsupervised}) {
    EXPECT_EQ(n_model.preferred_batch_size(mode), 1024u);
    EXPECT_DOUBLE_EQ(r_model.preferred_learning_rate(mode), kDefaultLearningRate);
    EXPECT_EQ(r_model.preferred_batch_size(mode), kDefaultBatchSize);
    EXPECT_EQ(r_model.preferred_schedule(mode), StepSchedule::kConstant);
    // Normalised heads: a cosine-decayed step from 8 times the raw heads' one.
    EXPECT_DOUBLE_EQ(n_model.preferred_learning_rate(mode), 8e-2);
    EXPECT_EQ(n_model.preferred_schedule(mode), StepSchedule::kCosine);
  }
}

TEST(NormalizedReadout, ZeroStepBatchAndScheduleTrainExactlyAsThePreferredOnes) {
  const int d = 16, q = 4;
  const size_t n = 1100;
  const auto set = testing::make_clustered(2 * n, d, 6, 1.0f, 0.5f, 17);
  auto train = [&](double learning_rate, size_t batch_size,
                   StepSchedule schedule = StepSchedule::kPreferred) {
    FidelityHead head = FidelityHead::make({d, q, 1, 3});
    head.mixer()->fit_standardization(2 * n, set.x.data());
    HeadTrainerOptions o;
    o.mode = TrainingMode::kSupervised;
    o.max_epochs = 2;
    o.learning_rate = learning_rate;
    o.batch_size = batch_size;
    o.schedule = schedule;
    FidelityHeadModel model(head);
    TrainingData data;
    data.dim = d;
    data.queries = std::span<const float>(set.x.data(), n * d);
    data.positives = std::span<const float>(set.x.data() + n * d, n * d);
    const HeadTrainingResult r = HeadTrainer(o).train(model, data);
    return std::make_pair(model.parameters(), r.steps);
  };
  const auto preferred = train(8e-2, 1024, StepSchedule::kCosine), automatic = train(0.0, 0);
  EXPECT_EQ(automatic, preferred);
  EXPECT_EQ(automatic.second, 2u);  // 990 training pairs fit one batch of 1,024: a step an epoch
  EXPECT_NE(train(kDefaultLearningRate, kDefaultBatchSize), automatic);
  // The second step is at half the first under the cosine: a constant step ends elsewhere.
  EXPECT_NE(train(8e-2, 1024, StepSchedule::kConstant), automatic);
}

TEST(NormalizedReadout, TemperatureZeroTrainsExactlyAsThePreferredOne) {
  const int d = 16, q = 4;
  const auto set = testing::make_clustered(300, d, 6, 1.0f, 0.5f, 13);
  auto train = [&](double temperature) {
    FidelityHead head = FidelityHead::make({d, q, 1, 3});
    head.mixer()->fit_standardization(300, set.x.data());
    HeadTrainerOptions o;
    o.mode = TrainingMode::kUnsupervised;
    o.max_epochs = 2;
    o.batch_size = 64;
    o.temperature = temperature;
    FidelityHeadModel model(head);
    TrainingData data;
    data.dim = d;
    data.rows = std::span<const float>(set.x.data(), set.x.size());
    return HeadTrainer(o).train(model, data).final_train_loss;
  };
  const double preferred = [&] {
    FidelityHead h = FidelityHead::make({d, q, 1, 3});
    return FidelityHeadModel(h).preferred_temperature(TrainingMode::kUnsupervised);
  }();
  EXPECT_EQ(train(0.0), train(preferred));
  EXPECT_NE(train(0.0), train(4 * preferred));
}

}  // namespace
}  // namespace bloch
