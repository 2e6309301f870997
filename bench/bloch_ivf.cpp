// bloch_ivf: the IVF kind against the Flat kind on one generated clustered set. One head encodes
// both: the IVF index's train() trains it unsupervised on a sample and then runs k-means on the
// sample's Bloch vectors; the Flat index is built with that head, so its exact top-10 is the
// truth the IVF results are measured against (same codes, same scores). For each nprobe it
// prints recall@10, the share of the codes scored, and queries per second with one thread and
// with all threads; the Flat kind's rate is the first row.
//
//   build-bench/bench/bloch_ivf --noise 1.0            (100k × d=128, q=32 8-bit, IVF256)
//   build-bench/bench/bloch_ivf --dim 384 --qubits 96 --vectors 50000 --noise 1.0
//
// At small nprobe the rate is bounded by per-query fixed costs (head forward, the q × 256 look-up
// table, the quantizer scan), not by the codes scored.

#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "RetrievalMetrics.h"
#include "SyntheticData.h"
#include "WallClock.h"
#include "index/BlochVectors.h"
#include "index/IndexFidelityFlat.h"
#include "index/IndexFidelityIVF.h"

namespace {

using bloch::bench::Clock;
using bloch::bench::seconds_since;
using idx_t = faiss::Index::idx_t;

struct Options {
  size_t vectors = 100000;
  int dim = 128;
  int qubits = 32;
  int butterflies = bloch::kDefaultButterflies;
  std::string code = "8bit";
  size_t nlist = 256;
  std::vector<size_t> nprobes = {1, 2, 4, 8, 16, 32, 64};
  size_t queries = 1000;
  int clusters = 200;
  float noise = 0.6f;
  size_t train_sample = 10000;
  int epochs = 2;
  uint64_t seed = 42;
  std::string md;
};

// Queries per second of index.search over all queries with `threads` OpenMP threads.
double qps(const faiss::Index& index, size_t nq, const float* xq, int threads,
           std::vector<idx_t>& labels, const faiss::SearchParameters* params = nullptr) {
  std::vector<float> d(nq * 10);
  labels.resize(nq * 10);
  omp_set_num_threads(threads);
  const auto t0 = Clock::now();
  index.search(idx_t(nq), xq, 10, d.data(), labels.data(), params);
  return double(nq) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"bloch_ivf: IVF over fidelity codes vs the exact Flat kind, one generated set"};
  app.add_option("--vectors", o.vectors, "Database vectors to generate")->capture_default_str();
  app.add_option("--dim", o.dim, "Raw dimension d")->capture_default_str();
  app.add_option("--qubits", o.qubits, "Head qubits q")->capture_default_str();
  app.add_option("--butterflies", o.butterflies, "Mixer butterflies (0: the circuit alone)")
      ->capture_default_str();
  app.add_option("--code", o.code, "Codes: 8bit, 4bit or float")->capture_default_str();
  app.add_option("--nlist", o.nlist, "Inverted lists")->capture_default_str();
  app.add_option("--nprobe", o.nprobes, "nprobe values to sweep")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--queries", o.queries, "Queries to generate")->capture_default_str();
  app.add_option("--clusters", o.clusters, "Clusters of the generated set")->capture_default_str();
  app.add_option("--noise", o.noise, "Per-coordinate noise around the centres")
      ->capture_default_str();
  app.add_option("--train-sample", o.train_sample, "Rows the head and k-means are trained on")
      ->capture_default_str();
  app.add_option("--epochs", o.epochs, "Head training epochs (at most)")->capture_default_str();
  app.add_option("--seed", o.seed, "Data seed")->capture_default_str();
  app.add_option("--md", o.md, "Write the markdown table here");
  CLI11_PARSE(app, argc, argv);
  try {
    const int threads_all = omp_get_max_threads();
    const size_t n = o.vectors, nq = o.queries;
    // Centres N(0,1), points = centre + N(0, noise²) (larger noise makes the clusters
    // overlap); the rows beyond `vectors` are queries drawn from the same clusters.
    const std::vector<float> all =
        bloch::testing::make_clustered(n + nq, o.dim, o.clusters, 1.0f, o.noise, o.seed).x;
    const float* xb = all.data();
    const float* xq = all.data() + n * size_t(o.dim);
    std::printf(
        "%zu vectors, d=%d, %d clusters, noise %.2f, %zu queries, q=%d %s, nlist=%zu, "
        "threads %d\n",
        n, o.dim, o.clusters, double(o.noise), nq, o.qubits, o.code.c_str(), o.nlist, threads_all);

    bloch::IndexFidelityIVF ivf(bloch::HeadSpec{o.dim, o.qubits, o.butterflies},
                                bloch::parse_code_type(o.code), o.nlist);
    ivf.training.max_epochs = o.epochs;
    auto t0 = Clock::now();
    ivf.train(idx_t(std::min(o.train_sample, n)), xb);
    const double train_s = seconds_since(t0);
    t0 = Clock::now();
    ivf.add(idx_t(n), xb);
    const double ivf_add_s = seconds_since(t0);
    bloch::IndexFidelityFlat flat(ivf.head(), ivf.codec().type());
    t0 = Clock::now();
    flat.add(idx_t(n), xb);
    const double flat_add_s = seconds_since(t0);

    std::vector<idx_t> truth, got;
    const double flat_qps1 = qps(flat, nq, xq, 1, truth);
    const double flat_qps_all = qps(flat, nq, xq, threads_all, truth);
    std::string md = "| kind | nprobe | codes scored | recall@10 vs Flat | QPS 1 thread | QPS " +
                     std::to_string(threads_all) +
                     " threads |\n| --- | ---: | ---: | ---: | ---: | ---: |\n";
    char row[256];
    std::snprintf(row, sizeof row, "| Flat (exact) | – | 100%% | 1.0000 | %.0f | %.0f |\n",
                  flat_qps1, flat_qps_all);
    md += row;

    // Share of the codes each nprobe scores: the probed lists' sizes, from the same quantizer.
    std::vector<float> angles(nq * size_t(o.qubits)), bloch_q(nq * size_t(ivf.bloch_dim()));
    ivf.compute_angles(idx_t(nq), xq, angles.data());
    bloch::bloch_vectors(nq, o.qubits, angles.data(), bloch_q.data());
    for (size_t nprobe : o.nprobes) {
      faiss::SearchParametersIVF params;
      params.nprobe = nprobe;
      const size_t np = std::min(nprobe, o.nlist);
      std::vector<float> coarse(nq * np);
      std::vector<idx_t> lists(nq * np);
      ivf.quantizer->search(idx_t(nq), bloch_q.data(), idx_t(np), coarse.data(), lists.data());
      double scored = 0;
      for (idx_t l : lists)
        if (l >= 0) scored += double(ivf.get_list_size(size_t(l)));
      const double q1 = qps(ivf, nq, xq, 1, got, &params);
      const double qa = qps(ivf, nq, xq, threads_all, got, &params);
      const double recall =
          bloch::bench::neighbour_recall(truth.data(), 10, got.data(), 10, nq, 10);
      std::snprintf(row, sizeof row, "| IVF%zu | %zu | %.2f%% | %.4f | %.0f | %.0f |\n", o.nlist,
                    nprobe, 100.0 * scored / (double(nq) * double(n)), recall, q1, qa);
      md += row;
    }
    char foot[512];
    std::snprintf(foot, sizeof foot,
                  "\nHead training + k-means %.1f s on %zu rows (%d epochs at most); add: IVF "
                  "%.2f s, Flat %.2f s (all threads).\n",
                  train_s, std::min(o.train_sample, n), o.epochs, ivf_add_s, flat_add_s);
    md += foot;
    std::printf("%s", md.c_str());
    if (!o.md.empty()) std::ofstream(o.md) << md;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bloch_ivf: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
