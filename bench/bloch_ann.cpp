// bloch_ann: approximate search over fidelity codes against hnswlib on the raw vectors, in one
// run on the same data and threads (in the spirit of ann-benchmarks).
//
// For each efSearch it reports recall@10 (fidelity HNSW: against the exact fidelity top-10 of
// the same codes; hnswlib: against the exact raw-cosine top-10), queries per second with one
// thread and with all threads, build time and bytes per vector (codes or vectors + graph links).

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <hnswlib/hnswlib.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "CosineRows.h"
#include "NpyArray.h"
#include "RetrievalMetrics.h"
#include "WallClock.h"
#include "index/IndexFactory.h"
#include "index/IndexFidelityFlat.h"

namespace {

using bloch::bench::Clock;
using bloch::bench::seconds_since;
using idx_t = faiss::Index::idx_t;

struct Point {
  std::string system;
  int ef;
  double recall, qps1, qps_all;
};

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_path, queries_path, spec = "QC128,HNSW32", out_md;
  int M = 32, ef_construction = 100, threads_all = 0;
  size_t train_sample = 20000, max_queries = 1000;
  std::vector<int> efs = {16, 32, 64, 128, 256};
  CLI::App app{"bloch_ann: HNSW over fidelity codes vs hnswlib on raw vectors, same data/threads"};
  app.add_option("--corpus", corpus_path, "Corpus embeddings (.npy float32/float16)")->required();
  app.add_option("--queries", queries_path, "Query embeddings (.npy)")->required();
  app.add_option("--spec", spec, "bloch index spec with an HNSW kind")->capture_default_str();
  app.add_option("--M", M, "hnswlib M (match the spec's HNSW M)")->capture_default_str();
  app.add_option("--ef-construction", ef_construction, "efConstruction of both graphs")
      ->capture_default_str();
  app.add_option("--ef", efs, "efSearch values to sweep")->delimiter(',')->capture_default_str();
  app.add_option("--train-sample", train_sample, "Corpus rows the head is trained on")
      ->capture_default_str();
  app.add_option("--max-queries", max_queries, "Queries used (the first ones)")
      ->capture_default_str();
  app.add_option("--md", out_md, "Write the markdown table here");
  CLI11_PARSE(app, argc, argv);
  for (const auto& p : {corpus_path, queries_path})
    if (!std::filesystem::exists(p)) {
      std::fprintf(stderr, "bloch_ann: skipping: '%s' is absent\n", p.c_str());
      return 0;
    }
  try {
    threads_all = omp_get_max_threads();
    const auto corpus = bloch::bench::read_npy(corpus_path);
    auto queries = bloch::bench::read_npy(queries_path);
    const size_t n = corpus.rows, d = corpus.cols, nq = std::min(max_queries, queries.rows);
    const auto xb = bloch::bench::normalised_rows(corpus.data.data(), n, d);
    const auto xq = bloch::bench::normalised_rows(queries.data.data(), nq, d);
    std::printf("%zu vectors, d=%zu, %zu queries, threads %d\n", n, d, nq, threads_all);
    std::vector<Point> points;

    // bloch: head trained unsupervised on a sample, HNSW over its codes.
    auto index = bloch::index_factory(int(d), spec);
    auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get());
    if (!hnsw) throw std::runtime_error("--spec must name an HNSW kind");
    hnsw->hnsw.efConstruction = ef_construction;
    auto t0 = Clock::now();
    index->train(idx_t(std::min(train_sample, n)), xb.data());
    const double train_s = seconds_since(t0);
    t0 = Clock::now();
    index->add(idx_t(n), xb.data());
    const double bloch_build = seconds_since(t0);
    const auto& flat = dynamic_cast<const bloch::IndexFidelityFlat&>(*hnsw->storage);
    bloch::IndexFidelityFlat exact(flat.head(), flat.codec().type());
    exact.codes = flat.codes;
    exact.ntotal = flat.ntotal;
    std::vector<float> dist(nq * 10);
    std::vector<idx_t> truth_f(nq * 10), got(nq * 10);
    exact.search(idx_t(nq), xq.data(), 10, dist.data(), truth_f.data());
    for (int ef : efs) {
      hnsw->hnsw.efSearch = ef;
      omp_set_num_threads(1);
      t0 = Clock::now();
      index->search(idx_t(nq), xq.data(), 10, dist.data(), got.data());
      const double s1 = seconds_since(t0);
      omp_set_num_threads(threads_all);
      t0 = Clock::now();
      index->search(idx_t(nq), xq.data(), 10, dist.data(), got.data());
      const double sa = seconds_since(t0);
      points.push_back({"bloch " + spec, ef,
                        bloch::bench::neighbour_recall(truth_f.data(), 10, got.data(), 10, nq, 10),
                        nq / s1, nq / sa});
    }
    const double bloch_bytes =
        double(flat.code_size) + double(hnsw->hnsw.neighbors.size() * 4) / double(n);

    // hnswlib on the raw (normalised) vectors, inner product.
    hnswlib::InnerProductSpace space(d);
    hnswlib::HierarchicalNSW<float> hl(&space, n, size_t(M), size_t(ef_construction));
    t0 = Clock::now();
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t i = 0; i < int64_t(n); ++i) hl.addPoint(xb.data() + size_t(i) * d, size_t(i));
    const double hl_build = seconds_since(t0);
    faiss::IndexFlatIP raw{idx_t(d)};
    raw.add(idx_t(n), xb.data());
    std::vector<idx_t> truth_r(nq * 10);
    raw.search(idx_t(nq), xq.data(), 10, dist.data(), truth_r.data());
    auto hl_search = [&](int threads) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
      for (int64_t i = 0; i < int64_t(nq); ++i) {
        auto res = hl.searchKnn(xq.data() + size_t(i) * d, 10);
        for (int r = 9; r >= 0 && !res.empty(); --r, res.pop())
          got[size_t(i) * 10 + r] = idx_t(res.top().second);
      }
    };
    for (int ef : efs) {
      hl.setEf(size_t(ef));
      t0 = Clock::now();
      hl_search(1);
      const double s1 = seconds_since(t0);
      t0 = Clock::now();
      hl_search(threads_all);
      const double sa = seconds_since(t0);
      points.push_back({"hnswlib raw float32", ef,
                        bloch::bench::neighbour_recall(truth_r.data(), 10, got.data(), 10, nq, 10),
                        nq / s1, nq / sa});
    }
    const double hl_bytes = double(d * 4) + double(M * 2 * 4 + 4);

    std::string md = "| system | efSearch | recall@10 | QPS 1 thread | QPS " +
                     std::to_string(threads_all) +
                     " threads |\n| --- | ---: | ---: | ---: | ---: |\n";
    for (const auto& p : points) {
      char row[256];
      std::snprintf(row, sizeof row, "| %s | %d | %.4f | %.0f | %.0f |\n", p.system.c_str(), p.ef,
                    p.recall, p.qps1, p.qps_all);
      md += row;
    }
    char foot[512];
    std::snprintf(foot, sizeof foot,
                  "\nBuild (all threads): bloch %.1f s (+ head training %.1f s), hnswlib %.1f s. "
                  "Bytes per vector: bloch %.0f (codes + level-0 links), hnswlib ≈ %.0f "
                  "(vector + level-0 links).\n",
                  bloch_build, train_s, hl_build, bloch_bytes, hl_bytes);
    md += foot;
    std::printf("%s", md.c_str());
    if (!out_md.empty()) std::ofstream(out_md) << md;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bloch_ann: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
