// bloch_demo: the core library end to end. Generates a clustered embedding set (or reads a
// .npy), trains a circuit head unsupervised on a sample, builds the exact fidelity index, runs
// queries, and prints timings and recall@k against brute force:
//   - codes vs exact fidelity: top-k of the quantised codes vs top-k by float angles (same head);
//   - fidelity vs raw cosine: top-k by fidelity vs top-k by cosine on the raw vectors
//     (neighbour preservation), for the untrained and the trained head.

#include <faiss/IndexFlat.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "CosineRows.h"
#include "NpyArray.h"
#include "RetrievalMetrics.h"
#include "SyntheticData.h"
#include "WallClock.h"
#include "index/IndexFidelityFlat.h"

namespace {

using bloch::bench::Clock;
using bloch::bench::seconds_since;
using idx_t = faiss::Index::idx_t;

struct Options {
  size_t vectors = 100000;
  int dim = 384;
  int qubits = 96;
  int butterflies = 3;
  std::string code = "8bit";
  size_t queries = 500;
  int clusters = 200;
  int k = 10;
  size_t train_sample = 8000;
  int epochs = 4;
  uint64_t seed = 42;
  std::string npy;
  int threads = 0;
};

std::vector<idx_t> search_labels(const faiss::Index& index, size_t nq, const float* x, int k,
                                 double* seconds) {
  std::vector<float> d(nq * k);
  std::vector<idx_t> l(nq * k);
  const auto t0 = Clock::now();
  index.search(idx_t(nq), x, k, d.data(), l.data());
  if (seconds) *seconds = seconds_since(t0);
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "bloch_demo: train a circuit head, build the exact fidelity index, search, and report "
      "timings and recall@k against brute force."};
  app.add_option("--vectors", o.vectors, "Database vectors to generate")->capture_default_str();
  app.add_option("--dim", o.dim, "Raw embedding dimension d (generated data)")
      ->capture_default_str();
  app.add_option("--qubits", o.qubits, "Head output qubits q")->capture_default_str();
  app.add_option("--butterflies", o.butterflies,
                 "Mixer butterflies in front of the circuit (0: the circuit alone)")
      ->capture_default_str();
  app.add_option("--code", o.code, "Code type: float, 8bit or 4bit")->capture_default_str();
  app.add_option("--queries", o.queries, "Query vectors")->capture_default_str();
  app.add_option("--clusters", o.clusters, "Clusters of the generated set")->capture_default_str();
  app.add_option("-k", o.k, "Neighbours per query")->capture_default_str();
  app.add_option("--train-sample", o.train_sample, "Vectors the head is trained on")
      ->capture_default_str();
  app.add_option("--epochs", o.epochs, "Maximum training epochs")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the data, head and training")->capture_default_str();
  app.add_option("--npy", o.npy,
                 "Read vectors from a 2-D float32/float16 .npy instead of generating them: the "
                 "last --queries rows become the queries")
      ->check(CLI::ExistingFile);
  app.add_option("--threads", o.threads, "OpenMP threads (0: all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    if (o.threads > 0) omp_set_num_threads(o.threads);
    const bloch::CodeType code_type = bloch::parse_code_type(o.code);

    std::vector<float> all;
    if (!o.npy.empty()) {
      auto m = bloch::bench::read_npy(o.npy);
      if (m.rows <= o.queries) throw std::runtime_error("--npy file has too few rows");
      o.dim = int(m.cols);
      o.vectors = m.rows - o.queries;
      all = std::move(m.data);
    } else {
      // Centres N(0,1), points = centre + N(0, 0.6²); the rows beyond `vectors` are queries
      // drawn from the same clusters.
      all = bloch::testing::make_clustered(o.vectors + o.queries, o.dim, o.clusters, 1.0f, 0.6f,
                                           o.seed)
                .x;
    }
    const float* base = all.data();
    const float* queries = all.data() + o.vectors * o.dim;
    std::printf("data: %zu vectors + %zu queries, d=%d (%s)\n", o.vectors, o.queries, o.dim,
                o.npy.empty() ? "generated, clustered" : o.npy.c_str());
    std::printf("threads: %d\n", omp_get_max_threads());

    // Raw-cosine ground truth: normalised copies in an IndexFlatIP.
    auto normalised = [&](const float* x, size_t n) {
      return bloch::bench::normalised_rows(x, n, size_t(o.dim));
    };
    faiss::IndexFlatIP raw(o.dim);
    raw.add(idx_t(o.vectors), normalised(base, o.vectors).data());
    double raw_s = 0;
    const auto cos_truth =
        search_labels(raw, o.queries, normalised(queries, o.queries).data(), o.k, &raw_s);

    bloch::IndexFidelityFlat index(bloch::HeadSpec{o.dim, o.qubits, o.butterflies, o.seed},
                                   code_type);
    std::printf("head: %s\n", index.head().describe().c_str());
    {
      // Untrained reference: the same head before training, float angles.
      bloch::IndexFidelityFlat untrained(index.head(), bloch::CodeType::kFloat);
      untrained.add(idx_t(o.vectors), base);
      const auto l = search_labels(untrained, o.queries, queries, o.k, nullptr);
      std::printf(
          "untrained head: recall@%d vs raw cosine %.4f\n", o.k,
          bloch::bench::neighbour_recall(cos_truth.data(), o.k, l.data(), o.k, o.queries, o.k));
    }

    index.training.max_epochs = o.epochs;
    index.training.seed = o.seed;
    index.training.progress = [](const bloch::TrainingProgress& p) {
      if (p.epoch_end)
        std::printf("  epoch %d: train loss %.4f, held-out loss %.4f, %.0f samples/s\n", p.epoch,
                    p.train_loss, p.holdout_loss, p.samples_per_second);
      std::fflush(stdout);
      return true;
    };
    const size_t sample = std::min(o.train_sample, o.vectors);
    std::printf("training on %zu vectors (unsupervised)...\n", sample);
    auto t0 = Clock::now();
    index.train(idx_t(sample), base);
    std::printf("train: %.2f s, %d epochs, best held-out loss %.4f (initial %.4f)\n",
                seconds_since(t0), index.last_training.epochs,
                index.last_training.best_holdout_loss, index.last_training.initial_holdout_loss);

    t0 = Clock::now();
    index.add(idx_t(o.vectors), base);
    const double add_s = seconds_since(t0);
    std::printf("add: %zu vectors in %.2f s (%.0f vectors/s), %zu bytes/vector (raw %d)\n",
                o.vectors, add_s, double(o.vectors) / add_s, index.code_size, 4 * o.dim);

    double search_s = 0;
    const auto got = search_labels(index, o.queries, queries, o.k, &search_s);
    bloch::IndexFidelityFlat exact(index.head(), bloch::CodeType::kFloat);
    exact.add(idx_t(o.vectors), base);
    const auto exact_l = search_labels(exact, o.queries, queries, o.k, nullptr);

    std::printf("search (%s codes): %zu queries in %.3f s (%.0f QPS); raw IndexFlatIP %.3f s\n",
                o.code.c_str(), o.queries, search_s, double(o.queries) / search_s, raw_s);
    std::printf(
        "recall@%d %s codes vs exact fidelity (float angles): %.4f\n", o.k, o.code.c_str(),
        bloch::bench::neighbour_recall(exact_l.data(), o.k, got.data(), o.k, o.queries, o.k));
    std::printf(
        "recall@%d trained head vs raw cosine:                %.4f\n", o.k,
        bloch::bench::neighbour_recall(cos_truth.data(), o.k, got.data(), o.k, o.queries, o.k));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bloch_demo: error: %s\n", e.what());
    return 1;
  }
}
