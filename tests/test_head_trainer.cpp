// HeadTrainer (DESIGN §1.6): training lowers the loss and improves recall on a clustered
// synthetic set, is deterministic under a seed for any thread count, stops early, reports
// progress, can be cancelled, and refuses bad inputs with a clear message.

#include <faiss/impl/FaissException.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "SyntheticData.h"
#include "index/CircuitHead.h"
#include "index/HeadTrainer.h"

namespace bloch {
namespace {

constexpr int kDim = 32;
constexpr int kQubits = 4;
constexpr int kClusters = 8;

struct Split {
  testing::ClusteredSet train, test;
};

// Training and test points drawn around the same centres (one generator call, then cut).
Split make_split(size_t n_train, size_t n_test, uint64_t seed) {
  auto all = testing::make_clustered(n_train + n_test, kDim, kClusters, 1.0f, 0.6f, seed);
  Split s;
  s.train.x.assign(all.x.begin(), all.x.begin() + ptrdiff_t(n_train * kDim));
  s.train.cluster.assign(all.cluster.begin(), all.cluster.begin() + ptrdiff_t(n_train));
  s.test.x.assign(all.x.begin() + ptrdiff_t(n_train * kDim), all.x.end());
  s.test.cluster.assign(all.cluster.begin() + ptrdiff_t(n_train), all.cluster.end());
  return s;
}

double log_fidelity(const float* a, const float* b, int q) {
  double l = 0;
  for (int i = 0; i < q; ++i) {
    const double c = std::cos(double(a[i]) - b[i]);
    l += std::log(std::max(c * c, 1e-12));
  }
  return l;
}

double cosine(const float* a, const float* b, int d) {
  double ab = 0, aa = 0, bb = 0;
  for (int k = 0; k < d; ++k) {
    ab += double(a[k]) * b[k];
    aa += double(a[k]) * a[k];
    bb += double(b[k]) * b[k];
  }
  return ab / std::sqrt(aa * bb);
}

// Indices of the k best j ≠ i by score(i, j).
template <typename Score>
std::vector<size_t> top_k(size_t n, size_t i, size_t k, Score score) {
  std::vector<size_t> idx;
  for (size_t j = 0; j < n; ++j)
    if (j != i) idx.push_back(j);
  std::vector<double> s(n);
  for (size_t j : idx) s[j] = score(i, j);
  std::partial_sort(idx.begin(), idx.begin() + ptrdiff_t(k), idx.end(),
                    [&](size_t a, size_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
  idx.resize(k);
  return idx;
}

// recall@10 of the fidelity ranking against the 10 raw-cosine neighbours, over the test set.
double recall_vs_cosine(const CircuitHead& head, const testing::ClusteredSet& set) {
  const size_t n = set.cluster.size(), k = 10;
  std::vector<float> angles(n * kQubits);
  head.forward(n, set.x.data(), angles.data());
  double hits = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto truth = top_k(n, i, k, [&](size_t a, size_t b) {
      return cosine(&set.x[a * kDim], &set.x[b * kDim], kDim);
    });
    const auto got = top_k(n, i, k, [&](size_t a, size_t b) {
      return log_fidelity(&angles[a * kQubits], &angles[b * kQubits], kQubits);
    });
    for (size_t j : got) hits += std::count(truth.begin(), truth.end(), j);
  }
  return hits / double(n * k);
}

// Fraction of the 10 fidelity neighbours that are cluster-mates, over the test set.
double cluster_precision(const CircuitHead& head, const testing::ClusteredSet& set) {
  const size_t n = set.cluster.size(), k = 10;
  std::vector<float> angles(n * kQubits);
  head.forward(n, set.x.data(), angles.data());
  double hits = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto got = top_k(n, i, k, [&](size_t a, size_t b) {
      return log_fidelity(&angles[a * kQubits], &angles[b * kQubits], kQubits);
    });
    for (size_t j : got) hits += set.cluster[j] == set.cluster[i];
  }
  return hits / double(n * k);
}

// Supervised pairs: each training point with a random cluster-mate as positive, and (optionally)
// one random point of another cluster as hard negative.
struct Pairs {
  std::vector<float> queries, positives, negatives;
  size_t n = 0;
};

Pairs make_pairs(const testing::ClusteredSet& set, bool with_negatives, uint64_t seed) {
  const size_t n = set.cluster.size();
  std::vector<std::vector<size_t>> members(kClusters);
  for (size_t i = 0; i < n; ++i) members[size_t(set.cluster[i])].push_back(i);
  std::mt19937_64 rng(seed);
  Pairs p;
  p.n = n;
  for (size_t i = 0; i < n; ++i) {
    const auto& m = members[size_t(set.cluster[i])];
    size_t j = m[rng() % m.size()];
    if (j == i && m.size() > 1)
      j = m[(std::find(m.begin(), m.end(), i) - m.begin() + 1) % m.size()];
    p.queries.insert(p.queries.end(), &set.x[i * kDim], &set.x[(i + 1) * kDim]);
    p.positives.insert(p.positives.end(), &set.x[j * kDim], &set.x[(j + 1) * kDim]);
    if (with_negatives) {
      size_t k = rng() % n;
      while (set.cluster[k] == set.cluster[i]) k = rng() % n;
      p.negatives.insert(p.negatives.end(), &set.x[k * kDim], &set.x[(k + 1) * kDim]);
    }
  }
  return p;
}

HeadTrainerOptions quick_options(TrainingMode mode) {
  HeadTrainerOptions o;
  o.mode = mode;
  o.batch_size = 64;
  o.max_epochs = 8;
  o.patience = 3;
  o.learning_rate = 2e-2;
  o.seed = 77;
  return o;
}

TEST(HeadTrainer, UnsupervisedLowersLossAndImprovesRecall) {
  const auto data = make_split(1200, 300, 1);
  CircuitHead head(kDim, kQubits, 3);
  const double recall_before = recall_vs_cosine(head, data.test);

  const HeadTrainer trainer(quick_options(TrainingMode::kUnsupervised));
  const auto r = trainer.train_unsupervised(head, data.train.cluster.size(), data.train.x.data());
  const double recall_after = recall_vs_cosine(head, data.test);
  std::printf(
      "unsupervised: held-out KL %.4f -> %.4f (best epoch %d of %d, %.0f samples/s), "
      "recall@10 vs cosine %.3f -> %.3f\n",
      r.initial_holdout_loss, r.best_holdout_loss, r.best_epoch, r.epochs, r.samples_per_second,
      recall_before, recall_after);
  EXPECT_LT(r.best_holdout_loss, 0.8 * r.initial_holdout_loss);
  EXPECT_GT(recall_after, recall_before + 0.05);
  EXPECT_EQ(r.train_size + r.holdout_size, data.train.cluster.size());
  EXPECT_EQ(r.holdout_size, 120u);
  EXPECT_GT(r.steps, 0u);
  EXPECT_GT(r.samples_per_second, 0.0);
}

TEST(HeadTrainer, SupervisedImprovesClusterPrecisionWithBothLogitForms) {
  const auto data = make_split(1200, 300, 2);
  for (const LogitForm logits : {LogitForm::kScaledFidelity, LogitForm::kLogFidelity}) {
    for (const bool negatives : {false, true}) {
      SCOPED_TRACE(std::string(logits == LogitForm::kScaledFidelity ? "20F" : "l/(tq)") +
                   (negatives ? " with hard negatives" : ""));
      const auto pairs = make_pairs(data.train, negatives, 5);
      CircuitHead head(kDim, kQubits, 4);
      const double before = cluster_precision(head, data.test);
      auto o = quick_options(TrainingMode::kSupervised);
      o.logits = logits;
      const auto r = HeadTrainer(o).train_supervised(head, pairs.n, pairs.queries.data(),
                                                     pairs.positives.data(), negatives ? 1 : 0,
                                                     negatives ? pairs.negatives.data() : nullptr);
      const double after = cluster_precision(head, data.test);
      std::printf(
          "supervised %s%s: held-out InfoNCE %.4f -> %.4f (%d epochs, %.0f samples/s), "
          "cluster precision@10 %.3f -> %.3f\n",
          logits == LogitForm::kScaledFidelity ? "20F" : "l/(tq)", negatives ? " +neg" : "",
          r.initial_holdout_loss, r.best_holdout_loss, r.epochs, r.samples_per_second, before,
          after);
      EXPECT_LT(r.best_holdout_loss, r.initial_holdout_loss);
      EXPECT_GT(after, before + 0.05);
    }
  }
}

// Batches of 256 are above the sizes where the forward, backward and pairwise loops go parallel,
// so 2 and 3 threads really split the work.
TEST(HeadTrainer, DeterministicUnderSeedForAnyThreadCount) {
  const auto data = make_split(600, 0, 3);
  auto o = quick_options(TrainingMode::kUnsupervised);
  o.max_epochs = 2;
  o.batch_size = 256;
  auto run = [&](int threads, uint64_t seed) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    o.seed = seed;
    CircuitHead head(kDim, kQubits, 8);
    const auto r = HeadTrainer(o).train_unsupervised(head, 600, data.train.x.data());
    omp_set_num_threads(saved);
    return std::make_pair(head.parameters(), r.best_holdout_loss);
  };
  const auto a = run(1, 10), b = run(1, 10), c = run(2, 10), d = run(3, 10), e = run(1, 11);
  EXPECT_EQ(a.first, b.first);
  EXPECT_EQ(a.first, c.first);
  EXPECT_EQ(a.first, d.first);
  EXPECT_EQ(a.second, c.second);
  EXPECT_NE(a.first, e.first);

  // Supervised with hard negatives too.
  const auto pairs = make_pairs(data.train, true, 6);
  auto sup = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    auto os = quick_options(TrainingMode::kSupervised);
    os.max_epochs = 2;
    os.batch_size = 256;
    CircuitHead head(kDim, kQubits, 8);
    HeadTrainer(os).train_supervised(head, pairs.n, pairs.queries.data(), pairs.positives.data(), 1,
                                     pairs.negatives.data());
    omp_set_num_threads(saved);
    return head.parameters();
  };
  EXPECT_EQ(sup(1), sup(2));
}

// lr_t = lr·½(1 + cos(π·t/T)): step 0 is the full step, so a one-step run matches the constant
// schedule bit for bit; later steps are shorter, so longer runs part ways.
TEST(HeadTrainer, CosineScheduleStartsAtTheFullStepThenDecays) {
  const auto data = make_split(300, 0, 9);
  auto run = [&](StepSchedule schedule, int epochs) {
    auto o = quick_options(TrainingMode::kUnsupervised);
    o.max_epochs = epochs;
    o.patience = 0;
    o.holdout_fraction = 0;
    o.batch_size = 300;  // one step an epoch
    o.schedule = schedule;
    CircuitHead head(kDim, kQubits, 12);
    const auto r = HeadTrainer(o).train_unsupervised(head, 300, data.train.x.data());
    EXPECT_EQ(r.steps, size_t(epochs));
    return head.parameters();
  };
  EXPECT_EQ(run(StepSchedule::kCosine, 1), run(StepSchedule::kConstant, 1));
  EXPECT_NE(run(StepSchedule::kCosine, 3), run(StepSchedule::kConstant, 3));
  // A circuit head's preferred schedule is the constant one.
  EXPECT_EQ(run(StepSchedule::kPreferred, 3), run(StepSchedule::kConstant, 3));
}

TEST(HeadTrainer, EarlyStoppingKeepsBestParameters) {
  const auto data = make_split(300, 0, 4);
  // No epoch can beat the initial held-out loss by 1e9: patience 2 stops after epoch 2 and the
  // initial parameters (best_epoch 0) are restored.
  {
    auto o = quick_options(TrainingMode::kUnsupervised);
    o.max_epochs = 50;
    o.patience = 2;
    o.min_improvement = 1e9;
    CircuitHead head(kDim, kQubits, 9);
    const auto initial = head.parameters();
    const auto r = HeadTrainer(o).train_unsupervised(head, 300, data.train.x.data());
    EXPECT_TRUE(r.stopped_early);
    EXPECT_EQ(r.epochs, 2);
    EXPECT_EQ(r.best_epoch, 0);
    EXPECT_EQ(head.parameters(), initial);
    EXPECT_EQ(r.best_holdout_loss, r.initial_holdout_loss);
  }
  // A real plateau: a tiny set trained long with a high bar for improvement stops well before
  // max_epochs, and the returned loss is the best one seen.
  {
    auto o = quick_options(TrainingMode::kUnsupervised);
    o.max_epochs = 200;
    o.patience = 3;
    o.min_improvement = 1e-3;
    CircuitHead head(kDim, kQubits, 9);
    std::vector<double> holdout;
    o.progress = [&](const TrainingProgress& p) {
      if (p.epoch_end) holdout.push_back(p.holdout_loss);
      return true;
    };
    const auto r = HeadTrainer(o).train_unsupervised(head, 300, data.train.x.data());
    EXPECT_TRUE(r.stopped_early);
    EXPECT_LT(r.epochs, 200);
    EXPECT_EQ(r.epochs - r.best_epoch, 3);
    ASSERT_EQ(holdout.size(), size_t(r.epochs));
    EXPECT_EQ(r.best_holdout_loss, holdout[size_t(r.best_epoch - 1)]);
    EXPECT_EQ(r.final_holdout_loss, holdout.back());
  }
}

TEST(HeadTrainer, ProgressCallbackAndCancellation) {
  const auto data = make_split(300, 0, 5);
  auto o = quick_options(TrainingMode::kUnsupervised);
  o.max_epochs = 3;
  o.patience = 0;
  std::vector<TrainingProgress> calls;
  o.progress = [&](const TrainingProgress& p) {
    calls.push_back(p);
    return true;
  };
  CircuitHead head(kDim, kQubits, 10);
  auto r = HeadTrainer(o).train_unsupervised(head, 300, data.train.x.data());
  // 270 training rows in batches of 64 → 5 batches (the last has 14 rows), 3 epochs.
  ASSERT_EQ(calls.size(), 3u);
  for (int e = 0; e < 3; ++e) {
    EXPECT_EQ(calls[size_t(e)].epoch, e + 1);
    EXPECT_TRUE(calls[size_t(e)].epoch_end);
    EXPECT_EQ(calls[size_t(e)].steps_per_epoch, 5u);
    EXPECT_EQ(calls[size_t(e)].step, 5u * size_t(e + 1));
    EXPECT_TRUE(std::isfinite(calls[size_t(e)].holdout_loss));
    EXPECT_GT(calls[size_t(e)].train_loss, 0.0);
    EXPECT_GT(calls[size_t(e)].samples_per_second, 0.0);
  }
  EXPECT_FALSE(r.cancelled);
  EXPECT_EQ(r.epochs, 3);

  // Cancel at the third step (per-step reports): the run stops at once.
  calls.clear();
  o.progress_every_steps = 1;
  o.progress = [&](const TrainingProgress& p) {
    calls.push_back(p);
    return p.step < 3;
  };
  CircuitHead head2(kDim, kQubits, 10);
  const auto initial = head2.parameters();
  r = HeadTrainer(o).train_unsupervised(head2, 300, data.train.x.data());
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.steps, 3u);
  EXPECT_EQ(calls.size(), 3u);
  EXPECT_EQ(r.epochs, 0);
  // Nothing was evaluated after the initial held-out loss: the initial parameters are kept.
  EXPECT_EQ(head2.parameters(), initial);
}

template <typename Fn>
void expect_throw_with(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception mentioning '" << needle << "'";
  } catch (const faiss::FaissException& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' does not mention '" << needle << "'";
  }
}

TEST(HeadTrainer, BadInputsThrowClearly) {
  const auto data = make_split(40, 0, 6);
  CircuitHead head(kDim, kQubits, 11);
  CircuitHeadModel model(head);
  const HeadTrainer unsup(quick_options(TrainingMode::kUnsupervised));
  const HeadTrainer sup(quick_options(TrainingMode::kSupervised));
  const std::span<const float> x(data.train.x);

  expect_throw_with([&] { unsup.train_unsupervised(head, 0, nullptr); }, "empty");
  expect_throw_with([&] { sup.train_supervised(head, 0, nullptr, nullptr); }, "empty");
  expect_throw_with([&] { unsup.train_unsupervised(head, 3, data.train.x.data()); },
                    "need at least 2");

  TrainingData td;
  td.dim = kDim + 1;
  td.rows = x;
  expect_throw_with([&] { unsup.train(model, td); }, "dimension 33 != model input dimension 32");
  td.dim = kDim;
  td.rows = x.first(x.size() - 1);
  expect_throw_with([&] { unsup.train(model, td); }, "not a multiple of dim");

  td.rows = {};
  td.queries = x;
  td.positives = x.first(x.size() - kDim);
  expect_throw_with([&] { sup.train(model, td); }, "positives");
  td.positives = x;
  td.negatives_per_query = 2;
  td.negatives = x;
  expect_throw_with([&] { sup.train(model, td); }, "negatives_per_query");
  expect_throw_with([&] { unsup.train(model, td); }, "rows");

  expect_throw_with([&] { sup.train_unsupervised(head, 40, data.train.x.data()); },
                    "mode = supervised");
  expect_throw_with(
      [&] { unsup.train_supervised(head, 40, data.train.x.data(), data.train.x.data()); },
      "mode = unsupervised");

  auto bad = data.train.x;
  bad[5] = std::nanf("");
  expect_throw_with([&] { unsup.train_unsupervised(head, 40, bad.data()); }, "not finite");

  auto o = quick_options(TrainingMode::kUnsupervised);
  o.batch_size = 1;
  expect_throw_with([&] { HeadTrainer{o}; }, "batch_size");
  o = quick_options(TrainingMode::kUnsupervised);
  o.learning_rate = -1e-3;
  expect_throw_with([&] { HeadTrainer{o}; }, "learning_rate");
  o = quick_options(TrainingMode::kUnsupervised);
  o.holdout_fraction = 1.0;
  expect_throw_with([&] { HeadTrainer{o}; }, "holdout_fraction");
  o = quick_options(TrainingMode::kUnsupervised);
  o.schedule = StepSchedule(7);
  expect_throw_with([&] { HeadTrainer{o}; }, "schedule=7");
}

}  // namespace
}  // namespace bloch
