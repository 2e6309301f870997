// IndexFidelityFlat: exact search against an independent brute force, FAISS wrappers on top of
// it (IndexIDMap2, IndexShards, IndexHNSW as storage), range search, removal, selectors and
// serialisation.

#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexShards.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <thread>

#include "SyntheticData.h"
#include "index/IndexFidelityFlat.h"
#include "index/IndexIO.h"

namespace bloch {
namespace {

using idx_t = faiss::Index::idx_t;

constexpr int kDim = 48;
constexpr int kQubits = 12;

// Σ log max(cos²(a_i − b_i), 1e−12) in double, written from DESIGN §1.5 independently of the
// library's kernels.
double oracle_log_fidelity(const float* a, const float* b, int q) {
  double s = 0;
  for (int i = 0; i < q; ++i) {
    const double c = std::cos(double(a[i]) - double(b[i]));
    s += std::log(std::max(c * c, 1e-12));
  }
  return s;
}

struct Fixture {
  testing::ClusteredSet base = testing::make_clustered(3000, kDim, 20, 1.0f, 0.5f, 7);
  testing::ClusteredSet queries = testing::make_clustered(40, kDim, 20, 1.0f, 0.5f, 8);
  size_t nb() const { return base.cluster.size(); }
  size_t nq() const { return queries.cluster.size(); }
};

// Every score of the oracle for query angles `qa` against the stored codes' decoded angles.
std::vector<double> oracle_scores(const IndexFidelityFlat& index, const float* qa) {
  const int q = index.codec().qubits();
  std::vector<float> stored(q);
  std::vector<double> scores(index.ntotal);
  for (idx_t i = 0; i < index.ntotal; ++i) {
    index.reconstruct_angles(i, stored.data());
    scores[i] = oracle_log_fidelity(qa, stored.data(), q);
  }
  return scores;
}

// The k results must be the k best oracle scores, in order, each reported with its own score.
void expect_exact_top_k(const std::vector<double>& scores, idx_t k, const float* dist,
                        const idx_t* labels, double tol) {
  std::vector<double> sorted = scores;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  for (idx_t r = 0; r < k; ++r) {
    ASSERT_GE(labels[r], 0) << "rank " << r;
    EXPECT_NEAR(dist[r], sorted[r], tol) << "rank " << r;
    EXPECT_NEAR(dist[r], scores[labels[r]], tol) << "rank " << r << " label " << labels[r];
  }
}

class IndexFidelityFlatTest : public ::testing::TestWithParam<CodeType> {};

TEST_P(IndexFidelityFlatTest, ExactSearchEqualsBruteForce) {
  Fixture f;
  IndexFidelityFlat index(CircuitHead(kDim, kQubits, 3), GetParam());
  index.add(f.nb(), f.base.x.data());
  ASSERT_EQ(index.ntotal, idx_t(f.nb()));
  EXPECT_EQ(index.metric_type, faiss::METRIC_INNER_PRODUCT);

  const idx_t k = 10;
  std::vector<float> dist(f.nq() * k);
  std::vector<idx_t> labels(f.nq() * k);
  index.search(f.nq(), f.queries.x.data(), k, dist.data(), labels.data());

  std::vector<float> qa(f.nq() * kQubits);
  index.compute_angles(f.nq(), f.queries.x.data(), qa.data());
  for (size_t i = 0; i < f.nq(); ++i) {
    SCOPED_TRACE("query " + std::to_string(i));
    expect_exact_top_k(oracle_scores(index, qa.data() + i * kQubits), k, dist.data() + i * k,
                       labels.data() + i * k, 2e-4 * kQubits);
    for (idx_t r = 0; r < k; ++r) EXPECT_LE(dist[i * k + r], 0.0f);
  }
}

TEST_P(IndexFidelityFlatTest, SingleQueryParallelScanEqualsBatch) {
  // One query splits its scan over threads; a batch runs one query per thread. Same answers.
  Fixture f;
  IndexFidelityFlat index(CircuitHead(kDim, kQubits, 3), GetParam());
  index.add(f.nb(), f.base.x.data());
  const idx_t k = 7;
  std::vector<float> batch_d(f.nq() * k), one_d(k);
  std::vector<idx_t> batch_l(f.nq() * k), one_l(k);
  index.search(f.nq(), f.queries.x.data(), k, batch_d.data(), batch_l.data());
  for (size_t i = 0; i < f.nq(); ++i) {
    index.search(1, f.queries.x.data() + i * kDim, k, one_d.data(), one_l.data());
    for (idx_t r = 0; r < k; ++r) EXPECT_FLOAT_EQ(one_d[r], batch_d[i * k + r]);
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, IndexFidelityFlatTest,
                         ::testing::Values(CodeType::kFloat, CodeType::k8bit, CodeType::k4bit),
                         [](const auto& info) { return std::string(code_type_name(info.param)); });

TEST(IndexFidelityFlat, KLargerThanNtotalPadsWithMinusOne) {
  Fixture f;
  IndexFidelityFlat index(CircuitHead(kDim, kQubits, 3), CodeType::k8bit);
  index.add(5, f.base.x.data());
  std::vector<float> dist(8);
  std::vector<idx_t> labels(8);
  index.search(1, f.queries.x.data(), 8, dist.data(), labels.data());
  std::set<idx_t> found(labels.begin(), labels.begin() + 5);
  EXPECT_EQ(found, (std::set<idx_t>{0, 1, 2, 3, 4}));
  for (int r = 5; r < 8; ++r) EXPECT_EQ(labels[r], -1);
}

TEST(IndexFidelityFlat, BadInputIsRefused) {
  IndexFidelityFlat untrained(kDim, kQubits, CodeType::k8bit);
  EXPECT_FALSE(untrained.is_trained);
  std::vector<float> x(kDim, 0.1f);
  try {
    untrained.add(1, x.data());
    FAIL() << "add on an untrained head must throw";
  } catch (const faiss::FaissException& e) {
    EXPECT_NE(std::string(e.what()).find("not trained"), std::string::npos) << e.what();
  }
  IndexFidelityFlat index(CircuitHead(kDim, kQubits, 3), CodeType::k8bit);
  float d;
  idx_t l;
  EXPECT_THROW(index.search(1, x.data(), 0, &d, &l), faiss::FaissException);
  EXPECT_THROW(index.reconstruct(0, x.data()), faiss::FaissException);
  index.add(1, x.data());
  EXPECT_THROW(index.set_head(FidelityHead(CircuitHead(kDim, kQubits, 4))), faiss::FaissException);
  // Retraining would silently leave the stored codes encoded by the old head.
  std::vector<float> sample(16 * kDim, 0.2f);
  EXPECT_THROW(index.train(16, sample.data()), faiss::FaissException);
}

TEST(IndexFidelityFlat, IdMap2ReturnsExternalIdsAndRemoves) {
  Fixture f;
  IndexFidelityFlat flat(CircuitHead(kDim, kQubits, 3), CodeType::k8bit);
  faiss::IndexIDMap2 index(&flat);
  std::vector<idx_t> ids(f.nb());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = 1000000 + 3 * idx_t(i);
  index.add_with_ids(f.nb(), f.base.x.data(), ids.data());

  const idx_t k = 5;
  std::vector<float> d_map(k), d_flat(k);
  std::vector<idx_t> l_map(k), l_flat(k);
  index.search(1, f.queries.x.data(), k, d_map.data(), l_map.data());
  flat.search(1, f.queries.x.data(), k, d_flat.data(), l_flat.data());
  for (idx_t r = 0; r < k; ++r) {
    EXPECT_EQ(l_map[r], ids[l_flat[r]]);
    EXPECT_FLOAT_EQ(d_map[r], d_flat[r]);
  }

  // Removing the best hit: it never comes back, and the next best moves up.
  faiss::IDSelectorArray sel(1, &l_map[0]);
  EXPECT_EQ(index.remove_ids(sel), 1u);
  std::vector<float> d2(k);
  std::vector<idx_t> l2(k);
  index.search(1, f.queries.x.data(), k, d2.data(), l2.data());
  EXPECT_EQ(std::count(l2.begin(), l2.end(), l_map[0]), 0);
  EXPECT_EQ(l2[0], l_map[1]);
}

TEST(IndexFidelityFlat, ShardsMergeInScoreOrder) {
  Fixture f;
  const CircuitHead head(kDim, kQubits, 3);
  IndexFidelityFlat whole(head, CodeType::k8bit);
  whole.add(f.nb(), f.base.x.data());

  // Interleaved shards: shard s holds rows s, s+3, …, so the merge must reorder across shards.
  faiss::IndexShards shards(kDim, /*threaded=*/false, /*successive_ids=*/false);
  std::vector<std::unique_ptr<IndexFidelityFlat>> parts;
  std::vector<std::unique_ptr<faiss::IndexIDMap2>> maps;
  for (int s = 0; s < 3; ++s) {
    parts.push_back(std::make_unique<IndexFidelityFlat>(head, CodeType::k8bit));
    maps.push_back(std::make_unique<faiss::IndexIDMap2>(parts.back().get()));
    std::vector<float> rows;
    std::vector<idx_t> ids;
    for (size_t i = s; i < f.nb(); i += 3) {
      rows.insert(rows.end(), f.base.x.begin() + i * kDim, f.base.x.begin() + (i + 1) * kDim);
      ids.push_back(idx_t(i));
    }
    maps.back()->add_with_ids(ids.size(), rows.data(), ids.data());
    shards.add_shard(maps.back().get());
  }
  ASSERT_EQ(shards.ntotal, whole.ntotal);
  ASSERT_EQ(shards.metric_type, faiss::METRIC_INNER_PRODUCT);

  const idx_t k = 10;
  std::vector<float> ds(f.nq() * k), dw(f.nq() * k);
  std::vector<idx_t> ls(f.nq() * k), lw(f.nq() * k);
  shards.search(f.nq(), f.queries.x.data(), k, ds.data(), ls.data());
  whole.search(f.nq(), f.queries.x.data(), k, dw.data(), lw.data());
  for (size_t i = 0; i < ds.size(); ++i) {
    EXPECT_FLOAT_EQ(ds[i], dw[i]) << "position " << i;
    if (ds[i] != ds[std::min(i + 1, ds.size() - 1)]) {
      EXPECT_EQ(ls[i], lw[i]) << "position " << i;
    }
  }
  for (size_t i = 0; i + 1 < ds.size(); ++i)
    if ((i + 1) % k != 0) {
      EXPECT_GE(ds[i], ds[i + 1]);
    }
}

TEST(IndexFidelityFlat, WorksAsHnswStorage) {
  Fixture f;
  // 8-bit codes of the paper-exact head, and 4-bit codes over fitted ranges of a normalised one
  // (the graph is built from code-pair scores of each qubit's own level differences).
  FidelityHead ranged(CircuitHead(kDim, kQubits, 3), Readout::kNormalized);
  ranged.fit_angle_ranges(f.nb(), f.base.x.data());
  const std::pair<FidelityHead, CodeType> cases[] = {
      {FidelityHead(CircuitHead(kDim, kQubits, 3)), CodeType::k8bit}, {ranged, CodeType::k4bit}};
  for (const auto& [head, type] : cases) {
    SCOPED_TRACE(code_type_name(type));
    IndexFidelityFlat exact(head, type);
    exact.add(f.nb(), f.base.x.data());

    auto* storage = new IndexFidelityFlat(head, type);
    faiss::IndexHNSW hnsw(storage, 16);
    hnsw.own_fields = true;
    hnsw.hnsw.efConstruction = 64;
    hnsw.hnsw.efSearch = 64;
    hnsw.add(f.nb(), f.base.x.data());
    ASSERT_EQ(hnsw.metric_type, faiss::METRIC_INNER_PRODUCT);
    ASSERT_EQ(storage->codec().ranged(), type == CodeType::k4bit);

    const idx_t k = 10;
    std::vector<float> dh(f.nq() * k), de(f.nq() * k);
    std::vector<idx_t> lh(f.nq() * k), le(f.nq() * k);
    hnsw.search(f.nq(), f.queries.x.data(), k, dh.data(), lh.data());
    exact.search(f.nq(), f.queries.x.data(), k, de.data(), le.data());

    size_t hits = 0;
    for (size_t i = 0; i < f.nq(); ++i) {
      std::set<idx_t> truth(le.begin() + i * k, le.begin() + (i + 1) * k);
      for (idx_t r = 0; r < k; ++r) hits += truth.count(lh[i * k + r]);
      // HNSW reports log-fidelities too (FAISS negates back for inner-product storage).
      EXPECT_LE(dh[i * k], 0.0f);
      EXPECT_NEAR(dh[i * k], de[i * k], 1e-3 * kQubits + 1.0);
    }
    const double recall = double(hits) / double(f.nq() * k);
    EXPECT_GE(recall, 0.9) << "HNSW over fidelity codes, M=16, efSearch=64";
  }
}

TEST(IndexFidelityFlat, RangeSearchEqualsBruteForce) {
  Fixture f;
  IndexFidelityFlat index(CircuitHead(kDim, kQubits, 3), CodeType::k8bit);
  index.add(f.nb(), f.base.x.data());
  std::vector<float> qa(f.nq() * kQubits);
  index.compute_angles(f.nq(), f.queries.x.data(), qa.data());

  const float radius = std::log(0.5f);  // fidelity > 0.5
  faiss::RangeSearchResult res(f.nq());
  index.range_search(f.nq(), f.queries.x.data(), radius, &res);
  size_t total = 0;
  for (size_t i = 0; i < f.nq(); ++i) {
    const auto scores = oracle_scores(index, qa.data() + i * kQubits);
    std::set<idx_t> expected, got;
    for (idx_t j = 0; j < index.ntotal; ++j)
      if (scores[j] > radius + 1e-3) expected.insert(j);
    for (size_t r = res.lims[i]; r < res.lims[i + 1]; ++r) {
      got.insert(res.labels[r]);
      EXPECT_GT(res.distances[r], radius);
      EXPECT_NEAR(res.distances[r], scores[res.labels[r]], 2e-4 * kQubits);
    }
    for (idx_t j : expected) EXPECT_TRUE(got.count(j)) << "query " << i << " misses " << j;
    total += got.size();
  }
  EXPECT_GT(total, 0u) << "the radius should select something in this fixture";
}

TEST(IndexFidelityFlat, ConcurrentSearchesMatchSequentialOnes) {
  // search() is const and keeps all per-query state local: threads may share one index.
  Fixture f;
  IndexFidelityFlat index(CircuitHead(kDim, kQubits, 3), CodeType::k8bit);
  index.add(f.nb(), f.base.x.data());
  const idx_t k = 5;
  std::vector<float> expect_d(f.nq() * k);
  std::vector<idx_t> expect_l(f.nq() * k);
  index.search(f.nq(), f.queries.x.data(), k, expect_d.data(), expect_l.data());

  constexpr int kThreads = 4;
  std::vector<std::vector<idx_t>> got(kThreads, std::vector<idx_t>(f.nq() * k));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::vector<float> d(k);
      for (size_t i = 0; i < f.nq(); ++i)  // one query per call: the parallel-scan path
        index.search(1, f.queries.x.data() + i * kDim, k, d.data(), got[t].data() + i * k);
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(got[t], expect_l) << "thread " << t;
}

TEST(IndexFidelityFlat, SelectorFiltersResults) {
  Fixture f;
  IndexFidelityFlat index(CircuitHead(kDim, kQubits, 3), CodeType::k8bit);
  index.add(f.nb(), f.base.x.data());
  faiss::IDSelectorRange odd_half(f.nb() / 2, f.nb());
  faiss::SearchParameters params;
  params.sel = &odd_half;
  const idx_t k = 10;
  std::vector<float> d(k);
  std::vector<idx_t> l(k);
  index.search(1, f.queries.x.data(), k, d.data(), l.data(), &params);
  for (idx_t r = 0; r < k; ++r) EXPECT_GE(l[r], idx_t(f.nb() / 2));
}

class IndexIOTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("bloch_index_io_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(IndexIOTest, RoundTripGivesIdenticalResults) {
  Fixture f;
  for (CodeType type : {CodeType::kFloat, CodeType::k8bit, CodeType::k4bit}) {
    IndexFidelityFlat index(CircuitHead(kDim, kQubits, 3), type);
    index.add(f.nb(), f.base.x.data());
    const std::string path = dir_ / "flat.bloch";
    write_index(index, path);
    auto loaded = read_index(path);
    auto* flat = dynamic_cast<IndexFidelityFlat*>(loaded.get());
    ASSERT_NE(flat, nullptr);
    EXPECT_EQ(flat->ntotal, index.ntotal);
    EXPECT_EQ(flat->codes, index.codes);
    EXPECT_EQ(flat->codec().type(), type);
    EXPECT_TRUE(flat->head() == index.head());

    const idx_t k = 10;
    std::vector<float> d1(f.nq() * k), d2(f.nq() * k);
    std::vector<idx_t> l1(f.nq() * k), l2(f.nq() * k);
    index.search(f.nq(), f.queries.x.data(), k, d1.data(), l1.data());
    loaded->search(f.nq(), f.queries.x.data(), k, d2.data(), l2.data());
    EXPECT_EQ(l1, l2);
    EXPECT_EQ(d1, d2);
  }
}

TEST_F(IndexIOTest, FittedFourBitRangesAreKeptAndScoreCloserToFloat) {
  Fixture f;
  FidelityHead head(CircuitHead(kDim, kQubits, 3), Readout::kNormalized);
  head.fit_angle_ranges(f.nb(), f.base.x.data());
  IndexFidelityFlat reference(head, CodeType::kFloat);
  reference.add(f.nb(), f.base.x.data());
  const idx_t k = 10;
  auto top_k = [&](const faiss::Index& index) {
    std::vector<float> d(f.nq() * k);
    std::vector<idx_t> l(f.nq() * k);
    index.search(f.nq(), f.queries.x.data(), k, d.data(), l.data());
    return l;
  };
  auto overlap = [&](const std::vector<idx_t>& a, const std::vector<idx_t>& b) {
    size_t hits = 0;
    for (size_t i = 0; i < f.nq(); ++i)
      for (idx_t r = 0; r < k; ++r)
        hits += std::count(b.begin() + i * k, b.begin() + (i + 1) * k, a[i * k + r]);
    return double(hits) / double(f.nq() * k);
  };
  const auto want = top_k(reference);

  IndexFidelityFlat ranged(head, CodeType::k4bit);
  ASSERT_TRUE(ranged.codec().ranged());
  ranged.add(f.nb(), f.base.x.data());
  const std::string path = dir_ / "ranged.bloch";
  write_index(ranged, path);
  auto loaded = read_index(path);
  auto* flat = dynamic_cast<IndexFidelityFlat*>(loaded.get());
  ASSERT_NE(flat, nullptr);
  EXPECT_EQ(flat->codec(), ranged.codec());
  EXPECT_EQ(top_k(*flat), top_k(ranged));

  FidelityHead unranged = head;
  unranged.clear_angle_ranges();
  IndexFidelityFlat full(unranged, CodeType::k4bit);
  full.add(f.nb(), f.base.x.data());
  EXPECT_GT(overlap(top_k(ranged), want), overlap(top_k(full), want) + 0.1)
      << "fitted " << overlap(top_k(ranged), want) << ", full range " << overlap(top_k(full), want);
}

TEST_F(IndexIOTest, CorruptedOrTruncatedFileIsRefused) {
  Fixture f;
  IndexFidelityFlat index(CircuitHead(kDim, kQubits, 3), CodeType::k8bit);
  index.add(200, f.base.x.data());
  const std::string bytes = serialize_index(index);

  auto expect_refused = [&](const std::string& data, const char* needle) {
    try {
      deserialize_index(data, "test bytes");
      ADD_FAILURE() << "accepted corrupted data (expected '" << needle << "')";
    } catch (const faiss::FaissException& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  for (size_t pos : {size_t(9), size_t(20), bytes.size() / 2, bytes.size() - 1}) {
    std::string flipped = bytes;
    flipped[pos] ^= 0x40;
    expect_refused(flipped, "checksum");
  }
  for (size_t len : {size_t(12), bytes.size() / 3, bytes.size() - 1})
    expect_refused(bytes.substr(0, len), "checksum");
  expect_refused(std::string(3, 'x'), "magic");
  std::string foreign = bytes;
  foreign[0] = 'X';
  expect_refused(foreign, "magic");

  const std::string path = dir_ / "missing.bloch";
  EXPECT_THROW(read_index(path), faiss::FaissException);
}

}  // namespace
}  // namespace bloch
