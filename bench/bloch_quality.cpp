// bloch_quality: retrieval quality of the circuit heads against raw cosine, a dense head, PCA and
// PQ/OPQ at equal bytes, on a BEIR-layout set with precomputed embeddings.
//
// For every method it reports, on the evaluation split: nDCG@10 and Recall@100 against the
// qrels, and neighbour recall@10 (overlap of the method's top-10 with the raw-cosine top-10 of
// the same queries). Trained methods run for several seeds; the table gives mean ± standard
// deviation, parameter counts and training time. Results go to stdout, a CSV and a markdown
// file.

#include <faiss/IndexFlat.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/index_factory.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "BeirSet.h"
#include "CosineRows.h"
#include "DenseFidelityModel.h"
#include "DenseHead.h"
#include "RetrievalMetrics.h"
#include "WallClock.h"
#include "index/FidelityHeadModel.h"
#include "index/IndexFidelityFlat.h"

namespace {

using bloch::bench::Clock;
using bloch::bench::seconds_since;
using idx_t = faiss::Index::idx_t;
using bloch::bench::NpyMatrix;

struct Options {
  std::string data_dir;
  std::string corpus_ids, corpus_npy, eval_ids, eval_npy, eval_qrels, train_ids, train_npy,
      train_qrels;
  std::string dataset = "dataset";
  std::vector<int> qubits = {64, 128, 256};
  std::vector<std::string> methods = {"raw", "pca", "pq", "circuit", "dense"};
  std::vector<std::string> modes = {"untrained", "unsupervised", "supervised"};
  std::vector<int> butterflies = {0};
  int min_mixer_width = 0;  // HeadSpec::min_mixer_width (0: 2q)
  std::vector<std::string> logits = {"paper"};
  std::vector<std::string> readouts = {"normalized"};
  std::vector<std::string> codes = {"8bit", "float"};  // circuit heads' code types (Codec.h)
  int seeds = 3;
  int epochs = 6;
  size_t batch = 0;          // 0: the head's preferred batch (TrainableModel::preferred_batch_size)
  size_t dense_batch = 512;  // with dense_lr: the best of a sweep (docs/QUALITY.md)
  double lr = 0.0;  // 0: the head's preferred step (TrainableModel::preferred_learning_rate)
  double dense_lr = 4e-3;
  // Step-size schedule of every trained head; "preferred": each head's own (the dense head's
  // is constant: cosine decay loses it 0.011 nDCG@10 at q = 128, docs/QUALITY.md).
  std::string schedule = "preferred";
  double tau = 0.0;         // 0: the head's preferred τ (TrainableModel::preferred_temperature)
  double dense_tau = 0.07;  // best of 0.035 / 0.05 / 0.07 / 0.1 at q = 128 (docs/QUALITY.md)
  double teacher_tau = bloch::HeadTrainerOptions{}.teacher_temperature;  // the product default
  size_t unsup_sample = 65536;  // as many rows as PQ trains on (pq_train)
  int hard_negatives = 0;
  size_t pq_train = 65536;
  std::string out_csv, out_md;
  int threads = 0;
};

struct Row {
  std::string method, variant;
  int q = 0;
  size_t bytes = 0, params = 0;
  int seed = 0;
  double ndcg10 = 0, recall100 = 0, neighbour10 = 0, train_s = 0;
};

struct Eval {
  const bloch::bench::QuerySplit* split;
  std::vector<idx_t> raw_top10;  // raw-cosine top-10 of every evaluation query
  int k = 100;

  // Scores labels (nq × k) into the three metrics.
  void score(const std::vector<idx_t>& labels, Row& row) const {
    const size_t nq = split->ids.size();
    double ndcg = 0, rec = 0;
    for (size_t i = 0; i < nq; ++i) {
      ndcg += bloch::bench::ndcg_at_k(labels.data() + i * k, 10, split->relevant[i]);
      rec += bloch::bench::recall_at_k(labels.data() + i * k, k, split->relevant[i]);
    }
    row.ndcg10 = ndcg / double(nq);
    row.recall100 = rec / double(nq);
    row.neighbour10 =
        bloch::bench::neighbour_recall(raw_top10.data(), 10, labels.data(), size_t(k), nq, 10);
  }
};

// "8-bit", "4-bit", "float": the suffix of a circuit row's variant; ", fitted ranges" when the
// codec spreads its levels over the head's angle ranges.
std::string code_label(const bloch::Codec& codec) {
  const std::string bits =
      codec.type() == bloch::CodeType::kFloat ? "float" : std::to_string(codec.bits()) + "-bit";
  return bits + (codec.ranged() ? ", fitted ranges" : "");
}

std::vector<idx_t> search(const faiss::Index& index, size_t nq, const float* x, int k) {
  std::vector<float> d(nq * k);
  std::vector<idx_t> l(nq * k);
  index.search(idx_t(nq), x, k, d.data(), l.data());
  return l;
}

class Runner {
 public:
  Runner(Options o, bloch::bench::BeirSet corpus, bloch::bench::QuerySplit eval,
         bloch::bench::QuerySplit train)
      : o_(std::move(o)),
        corpus_(std::move(corpus)),
        eval_split_(std::move(eval)),
        train_(std::move(train)) {
    d_ = corpus_.corpus.cols;
    n_ = corpus_.corpus.rows;
    corpus_norm_ = bloch::bench::normalised_rows(corpus_.corpus.data.data(), n_, d_);
    eval_norm_ = bloch::bench::normalised_rows(eval_split_.embeddings.data.data(),
                                               eval_split_.ids.size(), d_);
    faiss::IndexFlatIP raw{idx_t(d_)};
    raw.add(idx_t(n_), corpus_norm_.data());
    eval_.split = &eval_split_;
    // (hard negatives, when asked for, are mined from this raw-cosine index below)
    eval_.raw_top10 = search(raw, eval_split_.ids.size(), eval_norm_.data(), 10);
    // Supervised pairs: one (query, positive) per qrels row of the training split.
    for (size_t i = 0; i < train_.ids.size(); ++i)
      for (int doc : train_.relevant[i]) {
        pair_queries_.insert(pair_queries_.end(), train_.embeddings.row(i),
                             train_.embeddings.row(i) + d_);
        pair_positives_.insert(pair_positives_.end(), corpus_.corpus.row(doc),
                               corpus_.corpus.row(doc) + d_);
        pair_query_row_.push_back(i);
      }
    if (o_.hard_negatives > 0) mine_hard_negatives(raw);
  }

  void run() {
    std::printf(
        "%s: %zu documents, d=%zu; %zu evaluation queries (%zu without qrels dropped); "
        "%zu training pairs; threads %d\n",
        o_.dataset.c_str(), n_, d_, eval_split_.ids.size(), eval_split_.dropped,
        pair_queries_.size() / d_, omp_get_max_threads());
    if (wants("raw")) run_raw();
    for (int q : o_.qubits) {
      if (wants("pca")) run_pca(q);
      if (wants("pq")) run_pq(q, false);
      if (wants("opq")) run_pq(q, true);
      if (wants("dense"))
        for (int s = 0; s < o_.seeds; ++s) run_dense(q, s);
      if (wants("dense-fidelity"))
        for (const auto& readout : o_.readouts)
          for (int s = 0; s < o_.seeds; ++s) run_dense_fidelity(q, readout_of(readout), s);
      if (wants("circuit"))
        for (const auto& readout : o_.readouts)
          for (int b : o_.butterflies)
            for (const auto& mode : o_.modes) {
              if (mode == "untrained" && b != 0) continue;  // a random mixer says nothing new
              const auto forms =
                  mode == "supervised" ? o_.logits : std::vector{unsupervised_logits(b)};
              for (const auto& logit : forms)
                for (int s = 0; s < (mode == "untrained" ? 1 : o_.seeds); ++s)
                  run_circuit(q, b, readout_of(readout), mode, logit, s);
            }
    }
    write_outputs();
  }

 private:
  // Hard negatives (an extension, DESIGN §1.7): for every training pair, the H corpus documents
  // that raw cosine ranks highest for its query among those not relevant to it.
  void mine_hard_negatives(const faiss::Index& raw) {
    const size_t nq = train_.ids.size(), H = size_t(o_.hard_negatives);
    const int depth = o_.hard_negatives + 8;
    const auto qn = bloch::bench::normalised_rows(train_.embeddings.data.data(), nq, d_);
    const auto top = search(raw, nq, qn.data(), depth);
    for (size_t i : pair_query_row_) {
      size_t taken = 0;
      for (int r = 0; r < depth && taken < H; ++r) {
        const idx_t doc = top[i * depth + r];
        const auto& rel = train_.relevant[i];
        if (doc < 0 || std::find(rel.begin(), rel.end(), int(doc)) != rel.end()) continue;
        pair_negatives_.insert(pair_negatives_.end(), corpus_.corpus.row(doc),
                               corpus_.corpus.row(doc) + d_);
        ++taken;
      }
      for (; taken < H; ++taken)  // (never hit in practice: depth leaves room)
        pair_negatives_.insert(pair_negatives_.end(), corpus_.corpus.row(0),
                               corpus_.corpus.row(0) + d_);
    }
  }

  static bloch::Readout readout_of(const std::string& name) {
    return name == "raw" ? bloch::Readout::kRaw : bloch::Readout::kNormalized;
  }

  // Unsupervised heads train with one logit form whatever --logits lists (it names supervised
  // forms): the paper's 20·F for the paper-exact circuit, the library default for mixer heads.
  // At q = 64 a mixer head distilled with 20·F keeps 0.4505 of the raw top-10 against 0.569
  // with ℓ/(τq) (docs/QUALITY.md).
  static std::string unsupervised_logits(int butterflies) {
    const bool library_log = bloch::kDefaultLogitForm == bloch::LogitForm::kLogFidelity;
    return butterflies == 0 || !library_log ? "paper" : "log";
  }

  bool wants(const std::string& m) const {
    return std::find(o_.methods.begin(), o_.methods.end(), m) != o_.methods.end();
  }

  void report(Row row) {
    std::printf(
        "  %-10s %-34s q=%-4d bytes=%-5zu params=%-7zu seed=%d  nDCG@10 %.4f  R@100 %.4f  "
        "nbr@10 %.4f  train %.1fs\n",
        row.method.c_str(), row.variant.c_str(), row.q, row.bytes, row.params, row.seed, row.ndcg10,
        row.recall100, row.neighbour10, row.train_s);
    std::fflush(stdout);
    rows_.push_back(std::move(row));
    write_outputs();  // keep the files current: long runs can be inspected while they go
  }

  void run_raw() {
    faiss::IndexFlatIP raw{idx_t(d_)};
    raw.add(idx_t(n_), corpus_norm_.data());
    Row row{"raw", "cosine float32", int(d_), 4 * d_, 0, 0};
    eval_.score(search(raw, eval_split_.ids.size(), eval_norm_.data(), eval_.k), row);
    report(row);
  }

  void run_pca(int q) {
    faiss::PCAMatrix pca(int(d_), q);
    pca.train(idx_t(n_), corpus_norm_.data());
    std::unique_ptr<float[]> docs(pca.apply(idx_t(n_), corpus_norm_.data()));
    std::unique_ptr<float[]> qs(pca.apply(idx_t(eval_split_.ids.size()), eval_norm_.data()));
    faiss::IndexFlatIP index(q);
    index.add(idx_t(n_), bloch::bench::normalised_rows(docs.get(), n_, q).data());
    Row row{"pca", "PCA→q, cosine float32", q, 4 * size_t(q), 0, 0};
    eval_.score(
        search(index, eval_split_.ids.size(),
               bloch::bench::normalised_rows(qs.get(), eval_split_.ids.size(), q).data(), eval_.k),
        row);
    report(row);
  }

  // PQ (or OPQ) with q bytes per vector: M sub-quantisers of 8 bits. M must divide d for plain
  // PQ; OPQ rotates into a padded space of a multiple of M first.
  void run_pq(int q, bool opq) {
    int M = q;
    std::string spec;
    if (opq) {
      const int dout = int(((d_ + M - 1) / M) * M);
      spec = "OPQ" + std::to_string(M) + "_" + std::to_string(dout) + ",PQ" + std::to_string(M);
    } else {
      while (d_ % size_t(M) != 0) --M;  // largest M ≤ q dividing d
      spec = "PQ" + std::to_string(M);
    }
    const auto t0 = Clock::now();
    std::unique_ptr<faiss::Index> index(
        faiss::index_factory(int(d_), spec.c_str(), faiss::METRIC_INNER_PRODUCT));
    // The factory's IndexPQ also trains a polysemous code ordering (Hamming-distance
    // filtering), which plain PQ scanning does not use and which dominates training time.
    faiss::Index* inner = index.get();
    if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(inner)) inner = pre->index;
    if (auto* pq = dynamic_cast<faiss::IndexPQ*>(inner)) pq->do_polysemous_training = false;
    const size_t train_n = std::min(n_, o_.pq_train);
    index->train(idx_t(train_n), corpus_norm_.data());
    index->add(idx_t(n_), corpus_norm_.data());
    Row row{opq ? "opq" : "pq", spec + " (8-bit codes)", q, size_t(M), 0, 0};
    row.train_s = seconds_since(t0);
    eval_.score(search(*index, eval_split_.ids.size(), eval_norm_.data(), eval_.k), row);
    report(row);
  }

  void run_dense(int q, int seed) {
    bloch::bench::DenseHead head(int(d_), q, 1000 + seed);
    bloch::bench::DenseHeadOptions opt;
    opt.epochs = o_.epochs;
    opt.batch_size = o_.dense_batch;
    opt.learning_rate = o_.dense_lr;
    opt.temperature = o_.dense_tau;
    opt.schedule = schedule();
    opt.seed = 2000 + seed;
    const auto t0 = Clock::now();
    head.train(pair_queries_.size() / d_, pair_queries_.data(), pair_positives_.data(), opt);
    const std::string variant =
        std::string("tanh(Wx+b), cosine, InfoNCE τ") +
        (opt.schedule == bloch::StepSchedule::kCosine ? ", cosine steps" : "");
    Row row{"dense", variant, q, 4 * size_t(q), head.num_parameters(), seed};
    row.train_s = seconds_since(t0);
    std::vector<float> docs(n_ * q), qs(eval_split_.ids.size() * q);
    head.encode(n_, corpus_.corpus.data.data(), docs.data());
    head.encode(eval_split_.ids.size(), eval_split_.embeddings.data.data(), qs.data());
    faiss::IndexFlatIP index(q);
    index.add(idx_t(n_), docs.data());
    eval_.score(search(index, eval_split_.ids.size(), qs.data(), eval_.k), row);
    report(row);
  }

  // The dense map scored by log-fidelity (bench/DenseFidelityModel.h), trained by HeadTrainer
  // exactly as the circuit heads, with the dense head's learning rate and initial weights.
  void run_dense_fidelity(int q, bloch::Readout readout, int seed) {
    bloch::bench::DenseFidelityModel model(int(d_), q, readout, 1000 + seed);
    bloch::HeadTrainerOptions opt = circuit_training_options(seed);
    opt.learning_rate = o_.dense_lr;
    opt.mode = bloch::TrainingMode::kSupervised;
    const auto t0 = Clock::now();
    bloch::HeadTrainer(opt).train(model, supervised_data());
    const double train_s = seconds_since(t0);
    auto angles_of = [&](size_t n, const float* x) {
      std::vector<double> a(n * q);
      model.forward(n, x, a.data(), nullptr);
      return std::vector<float>(a.begin(), a.end());
    };
    const auto docs = angles_of(n_, corpus_.corpus.data.data());
    const auto queries = angles_of(eval_split_.ids.size(), eval_split_.embeddings.data.data());
    // Any head of q qubits will do: the index only scans the codes set here.
    bloch::IndexFidelityFlat index(bloch::HeadSpec{2 * q, q, 0, 1, bloch::Readout::kRaw},
                                   bloch::CodeType::k8bit);
    index.codes.resize(n_ * index.code_size);
    index.codec().encode(n_, docs.data(), index.codes.data());
    index.ntotal = idx_t(n_);
    index.is_trained = true;
    Row row{"dense-fid",
            std::string("tanh(Wx+b) angles, ") +
                (readout == bloch::Readout::kNormalized ? "normalised, " : "raw, ") +
                "log-fidelity, 8-bit",
            q,
            index.code_size,
            model.num_parameters(),
            seed};
    row.train_s = train_s;
    score_by_fidelity(index, queries, row);
  }

  // Exact top-k of the evaluation queries (their angles) over the index's codes, scored.
  void score_by_fidelity(const bloch::IndexFidelityFlat& index,
                         const std::vector<float>& query_angles, Row row) {
    std::vector<float> dist(eval_split_.ids.size() * eval_.k);
    std::vector<idx_t> labels(eval_split_.ids.size() * eval_.k);
    index.search_angles(idx_t(eval_split_.ids.size()), query_angles.data(), eval_.k, dist.data(),
                        labels.data());
    eval_.score(labels, row);
    report(row);
  }

  bloch::StepSchedule schedule() const {
    return o_.schedule == "cosine"     ? bloch::StepSchedule::kCosine
           : o_.schedule == "constant" ? bloch::StepSchedule::kConstant
                                       : bloch::StepSchedule::kPreferred;
  }

  bloch::HeadTrainerOptions circuit_training_options(int seed) const {
    bloch::HeadTrainerOptions opt;
    opt.max_epochs = o_.epochs;
    opt.batch_size = o_.batch;
    opt.learning_rate = o_.lr;
    opt.seed = uint64_t(300 + seed);
    opt.schedule = schedule();
    opt.patience = 0;          // a fixed budget, like the dense head
    opt.holdout_fraction = 0;  // every training pair, like the dense head
    opt.temperature = o_.tau;
    opt.teacher_temperature = o_.teacher_tau;
    opt.progress = [](const bloch::TrainingProgress& p) {
      if (p.epoch_end)
        std::fprintf(stderr, "    epoch %d: train %.4f held-out %.4f (%.0f samples/s)\n", p.epoch,
                     p.train_loss, p.holdout_loss, p.samples_per_second);
      return true;
    };
    return opt;
  }

  bloch::TrainingData supervised_data() const {
    bloch::TrainingData data;
    data.dim = int(d_);
    data.queries = pair_queries_;
    data.positives = pair_positives_;
    data.negatives = pair_negatives_;
    data.negatives_per_query = size_t(o_.hard_negatives);
    return data;
  }

  void run_circuit(int q, int butterflies, bloch::Readout readout, const std::string& mode,
                   const std::string& logit, int seed) {
    bloch::FidelityHead head =
        bloch::FidelityHead::make({int(d_), q, butterflies, uint64_t(100 + 17 * seed + butterflies),
                                   readout, o_.min_mixer_width});
    bloch::HeadTrainerOptions opt = circuit_training_options(seed);
    opt.logits =
        logit == "paper" ? bloch::LogitForm::kScaledFidelity : bloch::LogitForm::kLogFidelity;
    const auto t0 = Clock::now();
    if (head.mixer()) head.mixer()->fit_standardization(n_, corpus_.corpus.data.data());
    if (mode != "untrained") {
      bloch::FidelityHeadModel model(head);
      bloch::TrainingData data;
      data.dim = int(d_);
      if (mode == "supervised") {
        opt.mode = bloch::TrainingMode::kSupervised;
        data = supervised_data();
      } else {
        opt.mode = bloch::TrainingMode::kUnsupervised;
        data.rows =
            std::span<const float>(corpus_.corpus.data.data(), std::min(n_, o_.unsup_sample) * d_);
      }
      bloch::HeadTrainer(opt).train(model, data);
    }
    // The 4-bit codes' ranges, from the documents trained with (FidelityHead::codec).
    if (mode == "supervised")
      head.fit_angle_ranges(pair_positives_.size() / d_, pair_positives_.data());
    else
      head.fit_angle_ranges(std::min(n_, o_.unsup_sample), corpus_.corpus.data.data());
    const double train_s = seconds_since(t0);
    std::string variant =
        (butterflies ? "mixer B=" + std::to_string(butterflies) +
                           " P=" + std::to_string(head.mixer()->width()) + " + circuit"
         : head.paper_exact() ? std::string("paper-exact circuit")
                              : std::string("circuit")) +
        (readout == bloch::Readout::kNormalized ? " + normalised readout" : "") + ", " + mode;
    if (mode == "supervised") variant += logit == "paper" ? ", 20·F" : ", ℓ/(τq)";
    if (mode != "untrained" && bloch::resolved_schedule(opt, bloch::FidelityHeadModel(head)) ==
                                   bloch::StepSchedule::kCosine)
      variant += ", cosine steps";
    if (mode == "supervised" && o_.hard_negatives > 0)
      variant += ", " + std::to_string(o_.hard_negatives) + " hard neg.";
    std::vector<float> qa(eval_split_.ids.size() * q);
    head.forward(eval_split_.ids.size(), eval_split_.embeddings.data.data(), qa.data());
    for (const std::string& name : o_.codes) {
      // "4bit-full": 4-bit levels over all of [0, π/2], the head's ranges set aside.
      const bool full_range = name == "4bit-full";
      bloch::FidelityHead coded = head;
      if (full_range) coded.clear_angle_ranges();
      bloch::IndexFidelityFlat index(coded, bloch::parse_code_type(full_range ? "4bit" : name));
      index.add(idx_t(n_), corpus_.corpus.data.data());
      Row row{"circuit",
              variant + ", " + code_label(index.codec()),
              q,
              index.code_size,
              head.num_parameters(),
              seed};
      row.train_s = train_s;
      score_by_fidelity(index, qa, row);
    }
  }

  void write_outputs() const {
    if (!o_.out_csv.empty()) {
      std::ofstream csv(o_.out_csv);
      csv << "dataset,method,variant,q,bytes,params,seed,ndcg10,recall100,neighbour_recall10,"
             "train_seconds\n";
      for (const auto& r : rows_)
        csv << o_.dataset << ',' << r.method << ",\"" << r.variant << "\"," << r.q << ',' << r.bytes
            << ',' << r.params << ',' << r.seed << ',' << r.ndcg10 << ',' << r.recall100 << ','
            << r.neighbour10 << ',' << r.train_s << '\n';
    }
    if (!o_.out_md.empty()) {
      std::ofstream md(o_.out_md);
      md << "| method | q | bytes/vector | parameters | seeds | nDCG@10 | Recall@100 | "
            "neighbour R@10 | train s |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: |\n";
      // Group seeds of the same configuration, in first-seen order.
      std::vector<std::string> order;
      std::map<std::string, std::vector<const Row*>> groups;
      for (const auto& r : rows_) {
        const std::string key = r.variant + "|" + std::to_string(r.q) + "|" + r.method;
        if (!groups.count(key)) order.push_back(key);
        groups[key].push_back(&r);
      }
      auto stat = [](const std::vector<const Row*>& g, double Row::*f) {
        double m = 0, s = 0;
        for (auto* r : g) m += r->*f;
        m /= double(g.size());
        for (auto* r : g) s += (r->*f - m) * (r->*f - m);
        s = g.size() > 1 ? std::sqrt(s / double(g.size() - 1)) : 0.0;
        char buf[64];
        if (g.size() > 1)
          std::snprintf(buf, sizeof buf, "%.4f ± %.4f", m, s);
        else
          std::snprintf(buf, sizeof buf, "%.4f", m);
        return std::string(buf);
      };
      for (const auto& key : order) {
        const auto& g = groups.at(key);
        char train[32];
        double t = 0;
        for (auto* r : g) t += r->train_s;
        std::snprintf(train, sizeof train, "%.0f", t / double(g.size()));
        md << "| " << g[0]->method << ": " << g[0]->variant << " | " << g[0]->q << " | "
           << g[0]->bytes << " | " << g[0]->params << " | " << g.size() << " | "
           << stat(g, &Row::ndcg10) << " | " << stat(g, &Row::recall100) << " | "
           << stat(g, &Row::neighbour10) << " | " << train << " |\n";
      }
    }
  }

  Options o_;
  bloch::bench::BeirSet corpus_;
  bloch::bench::QuerySplit eval_split_, train_;
  size_t d_ = 0, n_ = 0;
  std::vector<float> corpus_norm_, eval_norm_, pair_queries_, pair_positives_, pair_negatives_;
  std::vector<size_t> pair_query_row_;  // training-split row of every pair's query
  Eval eval_;
  std::vector<Row> rows_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "bloch_quality: nDCG@10, Recall@100 and neighbour recall@10 of circuit heads vs raw "
      "cosine, a dense head, PCA and PQ/OPQ on a BEIR-layout set with .npy embeddings."};
  app.add_option("--data", o.data_dir,
                 "A folder in the Debian-set layout (corpus.jsonl.gz, corpus.npy, "
                 "queries-{dev,train}.{jsonl.gz,npy}, qrels/{dev,train}.tsv); sets every path "
                 "below that is not given");
  app.add_option("--corpus-ids", o.corpus_ids, "JSONL(.gz) with one \"_id\" per corpus row");
  app.add_option("--corpus", o.corpus_npy, "Corpus embeddings (.npy, float32/float16)");
  app.add_option("--eval-ids", o.eval_ids, "JSONL(.gz) ids of the evaluation queries");
  app.add_option("--eval", o.eval_npy, "Evaluation query embeddings (.npy)");
  app.add_option("--eval-qrels", o.eval_qrels, "Evaluation qrels TSV (query-id, corpus-id, score)");
  app.add_option("--train-ids", o.train_ids, "JSONL(.gz) ids of the training queries");
  app.add_option("--train", o.train_npy, "Training query embeddings (.npy)");
  app.add_option("--train-qrels", o.train_qrels, "Training qrels TSV");
  app.add_option("--name", o.dataset, "Dataset label in the outputs")->capture_default_str();
  app.add_option("--qubits", o.qubits, "Output sizes q")->delimiter(',')->capture_default_str();
  app.add_option("--methods", o.methods,
                 "Any of raw, pca, pq, opq, dense, dense-fidelity (the dense map scored by "
                 "log-fidelity, a diagnostic), circuit")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--modes", o.modes, "Circuit training: untrained, unsupervised, supervised")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--butterflies", o.butterflies,
                 "Mixer depths to evaluate (0 = paper-exact circuit alone)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--mixer-width", o.min_mixer_width,
                 "Lower bound on the mixer width P of circuit heads with a mixer (0: 2q; P is a "
                 "power of two >= max(d, 2q, this))")
      ->capture_default_str();
  app.add_option("--readouts", o.readouts,
                 "Circuit head readouts: raw (the paper's angles) and/or normalized "
                 "(NormalizedReadout.h)")
      ->delimiter(',')
      ->check(CLI::IsMember({"raw", "normalized"}))
      ->capture_default_str();
  app.add_option("--codes", o.codes,
                 "Code types the circuit heads are searched over: any of 8bit (q bytes), 4bit "
                 "(q/2 bytes, levels over the head's fitted angle ranges), 4bit-full (q/2 bytes, "
                 "levels over [0, pi/2]), float (4q bytes)")
      ->delimiter(',')
      ->check(CLI::IsMember({"8bit", "4bit", "4bit-full", "float"}))
      ->capture_default_str();
  app.add_option(
         "--logits", o.logits,
         "Supervised logit forms: paper (20·F) and/or log (ℓ/(τ·q)); unsupervised heads take log "
         "with a mixer, paper without")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--seeds", o.seeds, "Seeds per trained configuration")->capture_default_str();
  app.add_option("--epochs", o.epochs, "Training epochs (same budget for every trained head)")
      ->capture_default_str();
  app.add_option("--batch", o.batch,
                 "Training batch size of the circuit heads (0: each head's preferred: 1,024 for "
                 "normalised heads, else 256)")
      ->capture_default_str();
  app.add_option("--dense-batch", o.dense_batch, "Training batch size of the dense head")
      ->capture_default_str();
  app.add_option("--lr", o.lr,
                 "Adam learning rate of the circuit heads, the first one under a cosine decay (0: "
                 "each head's preferred: 8e-2 for normalised heads, else 1e-2)")
      ->capture_default_str();
  app.add_option("--dense-lr", o.dense_lr, "Adam learning rate of the dense head")
      ->capture_default_str();
  app.add_option("--schedule", o.schedule,
                 "Step-size schedule of every trained head: preferred (each head's own: cosine "
                 "for normalised heads, else constant), constant, or cosine decay to "
                 "0 over the epochs")
      ->check(CLI::IsMember({"preferred", "constant", "cosine"}))
      ->capture_default_str();
  app.add_option("--tau", o.tau,
                 "Temperature τ of the circuit heads' ℓ/(τ·S) logits (0: each head's preferred "
                 "τ: raw 0.005; normalised 0.06 supervised, 0.0175 unsupervised)")
      ->capture_default_str();
  app.add_option(
         "--teacher-tau", o.teacher_tau,
         "Unsupervised teacher temperature τ_t of softmax(cos/τ_t) (default: the trainer's)")
      ->capture_default_str();
  app.add_option("--dense-tau", o.dense_tau, "Temperature of the dense head's cos/τ logits")
      ->capture_default_str();
  app.add_option(
         "--unsup-sample", o.unsup_sample,
         "Corpus rows for unsupervised training (the first ones; the default matches --pq-train)")
      ->capture_default_str();
  app.add_option("--hard-negatives", o.hard_negatives,
                 "Circuit heads only: per training pair, this many raw-cosine hard negatives")
      ->capture_default_str();
  app.add_option("--pq-train", o.pq_train, "Corpus rows PQ/OPQ are trained on (the first ones)")
      ->capture_default_str();
  app.add_option("--csv", o.out_csv, "Write every run as a CSV row here");
  app.add_option("--md", o.out_md, "Write the markdown summary table here");
  app.add_option("--threads", o.threads, "OpenMP threads (0: all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto fill = [&](std::string& path, const char* rel) {
    if (path.empty() && !o.data_dir.empty()) path = o.data_dir + "/" + rel;
  };
  fill(o.corpus_ids, "corpus.jsonl.gz");
  fill(o.corpus_npy, "corpus.npy");
  fill(o.eval_ids, "queries-dev.jsonl.gz");
  fill(o.eval_npy, "queries-dev.npy");
  fill(o.eval_qrels, "qrels/dev.tsv");
  fill(o.train_ids, "queries-train.jsonl.gz");
  fill(o.train_npy, "queries-train.npy");
  fill(o.train_qrels, "qrels/train.tsv");
  for (const auto* p : {&o.corpus_ids, &o.corpus_npy, &o.eval_ids, &o.eval_npy, &o.eval_qrels}) {
    if (p->empty() || !std::filesystem::exists(*p)) {
      std::fprintf(
          stderr, "bloch_quality: skipping: data file '%s' is absent (give --data or every path)\n",
          p->c_str());
      return 0;
    }
  }
  try {
    if (o.threads > 0) omp_set_num_threads(o.threads);
    auto corpus = bloch::bench::load_corpus(o.corpus_ids, o.corpus_npy);
    auto eval = bloch::bench::load_queries(corpus, o.eval_ids, o.eval_npy, o.eval_qrels);
    bloch::bench::QuerySplit train;
    if (!o.train_npy.empty() && std::filesystem::exists(o.train_npy))
      train = bloch::bench::load_queries(corpus, o.train_ids, o.train_npy, o.train_qrels);
    Runner(std::move(o), std::move(corpus), std::move(eval), std::move(train)).run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bloch_quality: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
