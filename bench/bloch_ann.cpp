// bloch_ann: approximate search over fidelity codes against peers on the raw vectors, in one
// run on the same data, queries and threads (in the spirit of ann-benchmarks).
//
// Systems (k = 10 throughout):
//   bloch QC<q>,HNSW<M>   graph over the codes (efSearch sweep)
//   bloch QC<q>,IVF<nl>   inverted lists over the same codes: same trained head, so the codes
//                         are byte for byte those of the graph (nprobe sweep)
//   bloch QC<q>x4fs,Refine(QC<q>x8)
//                         4-bit fast scan re-ranked by the same 8-bit codes, same head
//                         (k_factor sweep)
//   hnswlib               graph on the L2-normalised raw vectors, inner product (efSearch sweep)
//   FAISS IndexFlatIP     exact raw cosine (one point)
//   FAISS IndexHNSWFlat   graph on the normalised raw vectors, inner product (efSearch sweep)
//   FAISS IndexIVFPQ      m sub-quantizers × 8 bits, as many code bytes as bloch's 8-bit codes
//                         (nprobe sweep); L2 on unit vectors, which ranks as cosine does
// Every trained part (the head, both k-means, the PQ codebooks) is trained on the first
// --train-sample corpus rows.
//
// For each point: recall@10 against the system's own exact top-10 (bloch: exact fidelity over
// the same codes; IVFPQ: every list probed over the same PQ codes; raw-vector systems: exact
// raw cosine) and against the raw-cosine top-10; batch QPS with 1 thread and with all threads;
// p50/p99 of single-query calls with 1 thread. For each system: build time and bytes per vector.
// Output: a markdown table (--md), a CSV with one row per point (--csv; bench/plot_ann.py
// draws it). The data: a corpus and queries as .npy, an ann-benchmarks HDF5 file (--hdf5: its
// "train" and "test" datasets; its "neighbors" are not read, the raw-cosine ground truth is
// computed by IndexFlatIP on the normalised rows, as for the other inputs), or a generated
// clustered set (--generate, for scaling runs at 1M vectors).

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <hnswlib/hnswlib.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "CosineRows.h"
#include "NpyArray.h"
#include "RetrievalMetrics.h"
#include "SearchTiming.h"
#include "SyntheticData.h"
#include "WallClock.h"
#include "index/IndexFactory.h"
#include "index/IndexFidelityFastScan.h"
#include "index/IndexFidelityFlat.h"
#include "index/IndexFidelityIVF.h"

namespace {

using bloch::bench::Clock;
using bloch::bench::seconds_since;
using idx_t = faiss::Index::idx_t;

// One system's build and size; its sweep points follow.
struct System {
  std::string name, param;  // param: "efSearch", "nprobe" or "-"
  double build_s = 0;       // all threads; bloch: excluding the shared head training
  double bytes = 0;         // per vector, everything the index holds for it
};

struct Point {
  size_t system;  // index into the systems
  int param;
  double recall_own, recall_raw;
  bloch::bench::Timing t;
};

// The m closest to `want` that divides d (FAISS's PQ needs d % m == 0); ties go to the smaller.
size_t pq_subquantizers(size_t d, size_t want) {
  size_t best = 1;
  for (size_t m = 1; m <= d; ++m)
    if (d % m == 0 && (m > want ? m - want : want - m) < (best > want ? best - want : want - best))
      best = m;
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_path, queries_path, hdf5_path, spec = "QC128,HNSW32", out_md, out_csv, dataset;
  int M = 32, ef_construction = 100;
  size_t train_sample = 20000, max_queries = 1000, nlist = 1024;
  std::vector<int> efs = {16, 32, 64, 128, 256};
  std::vector<int> nprobes = {1, 2, 4, 8, 16, 32, 64, 128};
  std::vector<int> k_factors = {1, 2, 4, 8, 16, 32};
  size_t generate = 0;
  bool skip_faiss_hnsw = false;
  int gen_dim = 768, gen_clusters = 1000;
  float gen_noise = 0.6f;
  uint64_t gen_seed = 42;
  CLI::App app{"bloch_ann: bloch's ANN kinds vs hnswlib and FAISS on raw vectors, same run"};
  app.footer(
      "Give a dataset (--corpus and --queries, or an ann-benchmarks --hdf5 file) or generate one "
      "(--generate N): N vectors drawn around --clusters centres N(0,1) in --dim dimensions with "
      "N(0, --noise²) per coordinate, "
      "and --max-queries more rows from the same clusters as the queries.");
  auto* gen = app.add_option("--generate", generate, "Generate a clustered set of N vectors");
  auto* corpus_opt =
      app.add_option("--corpus", corpus_path, "Corpus embeddings (.npy float32/float16)")
          ->excludes(gen);
  auto* queries_opt =
      app.add_option("--queries", queries_path, "Query embeddings (.npy)")->excludes(gen);
  app.add_option("--hdf5", hdf5_path,
                 "An ann-benchmarks HDF5 file (e.g. glove-100-angular.hdf5): corpus from its "
                 "'train' dataset, queries from 'test'")
      ->excludes(gen)
      ->excludes(queries_opt)
      ->excludes(corpus_opt);
  app.add_option("--dim", gen_dim, "Dimension of a generated set")->capture_default_str();
  app.add_option("--clusters", gen_clusters, "Clusters of a generated set")->capture_default_str();
  app.add_option("--noise", gen_noise, "Per-coordinate noise of a generated set")
      ->capture_default_str();
  app.add_option("--seed", gen_seed, "Seed of a generated set")->capture_default_str();
  app.add_option("--name", dataset,
                 "Dataset name in the CSV (default: the corpus's folder, or gen-<N>x<dim>)");
  app.add_option("--spec", spec, "bloch index spec with an HNSW kind")->capture_default_str();
  app.add_option("--M", M, "M of the raw-vector graphs (match the spec's HNSW M)")
      ->capture_default_str();
  app.add_option("--ef-construction", ef_construction, "efConstruction of every graph")
      ->capture_default_str();
  app.add_option("--ef", efs, "efSearch values to sweep")->delimiter(',')->capture_default_str();
  app.add_option("--nlist", nlist, "Inverted lists of both IVF indexes")->capture_default_str();
  app.add_option("--nprobe", nprobes, "nprobe values to sweep")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--k-factor", k_factors, "Fast-scan k_factor values to sweep")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--train-sample", train_sample, "Corpus rows every trained part is trained on")
      ->capture_default_str();
  app.add_option("--max-queries", max_queries, "Queries used (the first ones)")
      ->capture_default_str();
  app.add_flag("--skip-faiss-hnsw", skip_faiss_hnsw,
               "Leave out FAISS IndexHNSWFlat, the slowest peer to build (Debian's FAISS has no "
               "AVX2 kernels), for large scaling runs");
  app.add_option("--md", out_md, "Write the markdown tables here");
  app.add_option("--csv", out_csv, "Write one CSV row per point here");
  CLI11_PARSE(app, argc, argv);
  if (generate == 0) {
    if (hdf5_path.empty() && (corpus_path.empty() || queries_path.empty())) {
      std::fprintf(stderr, "bloch_ann: give --corpus and --queries, --hdf5, or --generate N\n%s",
                   app.help().c_str());
      return 2;
    }
    const auto inputs =
        hdf5_path.empty() ? std::vector{corpus_path, queries_path} : std::vector{hdf5_path};
    for (const auto& p : inputs)
      if (!std::filesystem::exists(p)) {
        std::printf("bloch_ann: skipping: %s not found\n", p.c_str());
        return 0;
      }
  }
  if (dataset.empty())
    dataset = generate > 0 ? "gen-" + std::to_string(generate) + "x" + std::to_string(gen_dim)
              : !hdf5_path.empty()
                  ? std::filesystem::path(hdf5_path).stem().string()
                  : std::filesystem::path(corpus_path).parent_path().filename().string();
  try {
    const int threads_all = omp_get_max_threads();
    bloch::bench::NpyMatrix corpus, queries;
    if (generate > 0) {
      if (gen_dim < 2 || gen_clusters < 1) throw std::runtime_error("--dim >= 2, --clusters >= 1");
      auto set = bloch::testing::make_clustered(generate + max_queries, gen_dim, gen_clusters, 1.0f,
                                                gen_noise, gen_seed);
      corpus.rows = generate;
      queries.rows = max_queries;
      corpus.cols = queries.cols = size_t(gen_dim);
      queries.data.assign(set.x.begin() + ptrdiff_t(generate * corpus.cols), set.x.end());
      set.x.resize(generate * corpus.cols);
      corpus.data = std::move(set.x);
    } else if (!hdf5_path.empty()) {
      corpus = bloch::bench::read_matrix(hdf5_path, "hdf5", "train");
      queries = bloch::bench::read_matrix(hdf5_path, "hdf5", "test");
    } else {
      corpus = bloch::bench::read_npy(corpus_path);
      queries = bloch::bench::read_npy(queries_path);
    }
    if (queries.cols != corpus.cols)
      throw std::runtime_error("the queries have " + std::to_string(queries.cols) +
                               " columns, the corpus " + std::to_string(corpus.cols));
    const size_t n = corpus.rows, d = corpus.cols, nq = std::min(max_queries, queries.rows);
    const size_t n_train = std::min(train_sample, n);
    const auto xb = bloch::bench::normalised_rows(corpus.data.data(), n, d);
    const auto xq = bloch::bench::normalised_rows(queries.data.data(), nq, d);
    corpus = {};  // only the normalised rows are used from here on (3 GB at 1M × 768)
    std::printf("%s: %zu vectors, d=%zu, %zu queries, threads %d, OpenBLAS setter %s\n",
                dataset.c_str(), n, d, nq, threads_all,
                bloch::bench::openblas_setter() ? "found" : "absent (BLAS threads fixed)");
    std::vector<System> systems;
    std::vector<Point> points;
    std::vector<idx_t> got;
    std::vector<float> dist(nq * 10);

    // Ground truth by exact raw cosine; it is also FAISS IndexFlatIP's point.
    faiss::IndexFlatIP raw{idx_t(d)};
    auto t0 = Clock::now();
    raw.add(idx_t(n), xb.data());
    systems.push_back({"FAISS IndexFlatIP", "-", seconds_since(t0), double(d * 4)});
    std::vector<idx_t> truth_r(nq * 10);
    bloch::bench::set_threads(threads_all);
    raw.search(idx_t(nq), xq.data(), 10, dist.data(), truth_r.data());

    // Adds one point of the current system: `search` at parameter `param`, recall against its
    // own exact top-10 `truth_own` and against the raw-cosine top-10.
    auto measure = [&](int param, const idx_t* truth_own, const bloch::bench::SearchFn& search) {
      const auto t = bloch::bench::time_search(search, nq, d, xq.data(), threads_all, got);
      points.push_back({systems.size() - 1, param,
                        bloch::bench::neighbour_recall(truth_own, 10, got.data(), 10, nq, 10),
                        bloch::bench::neighbour_recall(truth_r.data(), 10, got.data(), 10, nq, 10),
                        t});
      const auto& p = points.back();
      std::printf("  %-28s %s=%-4d recall own %.4f raw %.4f  QPS %.0f / %.0f  p50 %.3f ms\n",
                  systems.back().name.c_str(), systems.back().param.c_str(), param, p.recall_own,
                  p.recall_raw, p.t.qps1, p.t.qps_all, p.t.p50_ms);
      std::fflush(stdout);
    };
    // A FAISS index's search as a SearchFn (k = 10; the distances are not kept).
    auto faiss_search = [&](const faiss::Index& index) -> bloch::bench::SearchFn {
      return [&index, &dist](size_t m, const float* x, int64_t* labels) {
        index.search(idx_t(m), x, 10, dist.data(), labels);
      };
    };
    measure(0, truth_r.data(), faiss_search(raw));

    // bloch: the head is trained once, unsupervised; both kinds encode with it.
    auto index = bloch::index_factory(int(d), spec);
    auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get());
    if (!hnsw) throw std::runtime_error("--spec must name an HNSW kind");
    hnsw->hnsw.efConstruction = ef_construction;
    t0 = Clock::now();
    index->train(idx_t(n_train), xb.data());
    const double head_train_s = seconds_since(t0);
    t0 = Clock::now();
    index->add(idx_t(n), xb.data());
    const auto& flat = dynamic_cast<const bloch::IndexFidelityFlat&>(*hnsw->storage);
    // Graph links of every level as allocated, plus the per-node level and offset.
    auto graph_bytes = [&](const faiss::HNSW& g) {
      return double(g.neighbors.size() * sizeof(g.neighbors[0])) / double(n) +
             double(sizeof(g.levels[0]) + sizeof(g.offsets[0]));
    };
    systems.push_back({"bloch " + spec, "efSearch", seconds_since(t0),
                       double(flat.code_size) + graph_bytes(hnsw->hnsw)});
    bloch::IndexFidelityFlat exact(flat.head(), flat.codec().type());
    exact.codes = flat.codes;
    exact.ntotal = flat.ntotal;
    std::vector<idx_t> truth_f(nq * 10);
    exact.search(idx_t(nq), xq.data(), 10, dist.data(), truth_f.data());
    for (int ef : efs) {
      hnsw->hnsw.efSearch = ef;
      measure(ef, truth_f.data(), faiss_search(*index));
    }

    const std::string head = spec.substr(0, spec.find(','));
    bloch::IndexFidelityIVF ivf(flat.head(), flat.codec().type(), nlist);
    t0 = Clock::now();
    ivf.train(idx_t(n_train), xb.data());  // k-means only: the head is already trained
    ivf.add(idx_t(n), xb.data());
    // Codes plus the 8-byte id each inverted-list entry carries.
    systems.push_back({"bloch " + head + ",IVF" + std::to_string(nlist), "nprobe",
                       seconds_since(t0), double(ivf.code_size + sizeof(idx_t))});
    for (int np : nprobes) {
      ivf.nprobe = size_t(np);
      measure(np, truth_f.data(), faiss_search(ivf));
    }

    // The 4-bit fast scan, re-ranked by 8-bit codes of the same head: its exact top-10 is the
    // exact fidelity top-10 over those codes, truth_f.
    bloch::IndexFidelityFastScan fast_scan(flat.head(), bloch::CodeType::k8bit);
    t0 = Clock::now();
    fast_scan.add(idx_t(n), xb.data());
    const std::string qc = "QC" + std::to_string(flat.codec().qubits());
    systems.push_back(
        {"bloch " + qc + "x4fs,Refine(" + qc + "x8)", "k_factor", seconds_since(t0),
         double(fast_scan.blocks().size()) / double(n) + double(fast_scan.sa_code_size())});
    for (int kf : k_factors) {
      fast_scan.k_factor = kf;
      measure(kf, truth_f.data(), faiss_search(fast_scan));
    }

    // hnswlib on the normalised raw vectors, inner product.
    hnswlib::InnerProductSpace space(d);
    hnswlib::HierarchicalNSW<float> hl(&space, n, size_t(M), size_t(ef_construction));
    t0 = Clock::now();
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t i = 0; i < int64_t(n); ++i) hl.addPoint(xb.data() + size_t(i) * d, size_t(i));
    double hl_upper = 0;  // upper-level link blocks, plus each node's level and block pointer
    for (int level : hl.element_levels_)
      hl_upper += double(level) * double(hl.size_links_per_element_) + sizeof(int) + sizeof(char*);
    systems.push_back({"hnswlib", "efSearch", seconds_since(t0),
                       double(hl.size_data_per_element_) + hl_upper / double(n)});
    for (int ef : efs) {
      hl.setEf(size_t(ef));
      measure(ef, truth_r.data(), [&hl, d](size_t m, const float* x, int64_t* labels) {
#pragma omp parallel for schedule(dynamic, 16)
        for (int64_t i = 0; i < int64_t(m); ++i) {
          // The queue pops the worst first; fewer than 10 results leave -1 at the end.
          auto res = hl.searchKnn(x + size_t(i) * d, 10);
          int64_t* row = labels + size_t(i) * 10;
          std::fill(row + res.size(), row + 10, -1);
          for (; !res.empty(); res.pop()) row[res.size() - 1] = idx_t(res.top().second);
        }
      });
    }

    // FAISS's graph on the same vectors, same M and efConstruction.
    if (!skip_faiss_hnsw) {
      faiss::IndexHNSWFlat fh(int(d), M, faiss::METRIC_INNER_PRODUCT);
      fh.hnsw.efConstruction = ef_construction;
      t0 = Clock::now();
      fh.add(idx_t(n), xb.data());
      systems.push_back({"FAISS IndexHNSWFlat", "efSearch", seconds_since(t0),
                         double(d * 4) + graph_bytes(fh.hnsw)});
      for (int ef : efs) {
        fh.hnsw.efSearch = ef;
        measure(ef, truth_r.data(), faiss_search(fh));
      }
    }

    // IVFPQ with as many code bytes as bloch's codes (flat.code_size, one byte per qubit).
    const size_t m = pq_subquantizers(d, flat.code_size);
    faiss::IndexFlatL2 coarse{idx_t(d)};
    faiss::IndexIVFPQ pq(&coarse, idx_t(d), nlist, m, 8);
    t0 = Clock::now();
    pq.train(idx_t(n_train), xb.data());
    pq.add(idx_t(n), xb.data());
    systems.push_back({"FAISS IVF" + std::to_string(nlist) + ",PQ" + std::to_string(m), "nprobe",
                       seconds_since(t0), double(pq.code_size + sizeof(idx_t))});
    pq.nprobe = nlist;
    std::vector<idx_t> truth_pq(nq * 10);
    pq.search(idx_t(nq), xq.data(), 10, dist.data(), truth_pq.data());
    for (int np : nprobes) {
      pq.nprobe = size_t(np);
      measure(np, truth_pq.data(), faiss_search(pq));
    }

    // Reports.
    const std::string all = std::to_string(threads_all);
    std::string md =
        "| system | parameter | recall@10 vs own exact | recall@10 vs raw cosine | QPS 1 thread "
        "| QPS " +
        all +
        " threads | p50 ms | p99 ms |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    // System names hold commas ("QC128,HNSW32"): that field is quoted.
    std::string csv =
        "dataset,system,parameter,value,recall_own,recall_raw,qps_1,qps_all,threads_all,p50_ms,"
        "p99_ms,build_s,head_train_s,build_us_per_vector,bytes_per_vector\n";
    char row[512];
    for (const auto& p : points) {
      const System& s = systems[p.system];
      const std::string param = s.param == "-" ? "–" : s.param + " " + std::to_string(p.param);
      std::snprintf(row, sizeof row, "| %s | %s | %.4f | %.4f | %.0f | %.0f | %.3f | %.3f |\n",
                    s.name.c_str(), param.c_str(), p.recall_own, p.recall_raw, p.t.qps1,
                    p.t.qps_all, p.t.p50_ms, p.t.p99_ms);
      md += row;
      const double head_s = s.name.rfind("bloch", 0) == 0 ? head_train_s : 0.0;
      std::snprintf(row, sizeof row,
                    "%s,\"%s\",%s,%d,%.4f,%.4f,%.1f,%.1f,%d,%.4f,%.4f,%.2f,%.2f,%.2f,%.1f\n",
                    dataset.c_str(), s.name.c_str(), s.param.c_str(), p.param, p.recall_own,
                    p.recall_raw, p.t.qps1, p.t.qps_all, threads_all, p.t.p50_ms, p.t.p99_ms,
                    s.build_s, head_s, 1e6 * s.build_s / double(n), s.bytes);
      csv += row;
    }
    md += "\n| system | build s (" + all +
          " threads) | build µs / vector | bytes / vector |\n| --- | ---: | ---: | ---: |\n";
    for (const auto& s : systems) {
      std::snprintf(row, sizeof row, "| %s | %.1f | %.0f | %.0f |\n", s.name.c_str(), s.build_s,
                    1e6 * s.build_s / double(n), s.bytes);
      md += row;
    }
    std::snprintf(row, sizeof row,
                  "\nbloch's head training (unsupervised, %zu rows, shared by both bloch kinds): "
                  "%.1f s, not in the build times above. %zu × %zu-d corpus, %zu queries.\n",
                  n_train, head_train_s, n, d, nq);
    md += row;
    std::printf("\n%s", md.c_str());
    if (!out_md.empty()) std::ofstream(out_md) << md;
    if (!out_csv.empty()) std::ofstream(out_csv) << csv;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bloch_ann: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
