// index_factory: the spec grammar (good and bad strings; Flat, HNSW, IVF and fast-scan kinds),
// and the HNSW kind end to end — recall against the exact index, tombstones never returned
// (hnsw_search_live), concurrent searches, save/load equality, damaged files refused. The IVF kind
// end to end is in test_index_fidelity_ivf.cpp.

#include <faiss/IndexHNSW.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "SyntheticData.h"
#include "index/HnswLiveSearch.h"
#include "index/IndexFactory.h"
#include "index/IndexFidelityFlat.h"
#include "index/IndexFidelityIVF.h"
#include "index/IndexIO.h"

namespace bloch {
namespace {

using idx_t = faiss::Index::idx_t;

const IndexFidelityFlat& flat_of(const faiss::Index& index) {
  if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(&index))
    return dynamic_cast<const IndexFidelityFlat&>(*hnsw->storage);
  return dynamic_cast<const IndexFidelityFlat&>(index);
}

TEST(IndexFactory, GoodSpecs) {
  auto a = index_factory(384, "QC128,Flat");
  const auto& fa = flat_of(*a);
  EXPECT_EQ(a->d, 384);
  EXPECT_EQ(fa.codec().qubits(), 128);
  EXPECT_EQ(fa.codec().type(), CodeType::k8bit);
  EXPECT_EQ(fa.head().mixer()->butterflies(), kDefaultButterflies);
  EXPECT_FALSE(a->is_trained);

  auto b = index_factory(384, "QC96x4B0,Flat");
  EXPECT_EQ(flat_of(*b).codec().type(), CodeType::k4bit);
  EXPECT_FALSE(flat_of(*b).head().has_mixer());
  EXPECT_EQ(flat_of(*b).code_size, 48u);

  EXPECT_EQ(flat_of(*index_factory(64, "QC16x32B1,Flat")).codec().type(), CodeType::kFloat);

  // Mixer width: 2q rounded up to a power of two ≥ d unless W asks for more.
  EXPECT_EQ(fa.head().mixer()->width(), 512);
  auto w = index_factory(384, "QC256B3W2048raw,Flat");
  EXPECT_EQ(flat_of(*w).head().mixer()->width(), 2048);
  EXPECT_EQ(flat_of(*w).head().readout(), Readout::kRaw);
  EXPECT_EQ(flat_of(*index_factory(384, "QC128B2W600,Flat")).head().mixer()->width(), 1024);
  EXPECT_EQ(flat_of(*index_factory(384, "QC128B2W64,Flat")).head().mixer()->width(), 512);

  auto h = index_factory(48, "QC12,HNSW16");
  auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(h.get());
  ASSERT_NE(hnsw, nullptr);
  EXPECT_EQ(hnsw->metric_type, faiss::METRIC_INNER_PRODUCT);
  EXPECT_EQ(hnsw->hnsw.nb_neighbors(1), 16);
  EXPECT_EQ(flat_of(*h).codec().qubits(), 12);

  auto v = index_factory(48, "QC12x4,IVF64");
  auto* ivf = dynamic_cast<IndexFidelityIVF*>(v.get());
  ASSERT_NE(ivf, nullptr);
  EXPECT_EQ(ivf->d, 48);
  EXPECT_EQ(ivf->nlist, 64u);
  EXPECT_EQ(ivf->codec().type(), CodeType::k4bit);
  EXPECT_EQ(ivf->bloch_dim(), 24);
  EXPECT_EQ(ivf->metric_type, faiss::METRIC_INNER_PRODUCT);
  EXPECT_FALSE(ivf->is_trained);
  EXPECT_TRUE(ivf->train_head);
}

TEST(IndexFactory, BadSpecsNameTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "no ','"},
      {"QC128", "no ','"},
      {"Flat,QC128", "head 'Flat'"},
      {"QCx,Flat", "head 'QCx'"},
      {"QC0,Flat", "q=0"},
      {"QC999,Flat", "q=999"},
      {"QC128x7,Flat", "bits 7"},
      {"QC128,IVF", "unknown kind 'IVF'"},
      {"QC128,HNSW", "unknown kind 'HNSW'"},
      {"QC128,HNSW1", "M=1"},
      {"QC128,Flat,", "unknown kind 'Flat,'"},
      {"QC128,IVF0", "nlist=0 must be in [1, 1048576]"},
      {"QC128,IVF2000000", "nlist=2000000"},
      {"QC128,IVF99999999999", "nlist=99999999999"},
      {"QC128,IVF99999999999999999999", "IVF nlist '99999999999999999999' is not a number"},
      {"QC128,IVF-4", "unknown kind 'IVF-4'"},
      {"QC128,IVF16x", "unknown kind 'IVF16x'"},
      {"QC128fs,Flat", "head 'QC128fs'"},
      {"QC128x8fs,Refine(QC128x8)", "fast scan (fs) needs 4-bit codes"},
      {"QC128x4fs,Flat", "needs the kind Refine(QC<q>x<bits>), not 'Flat'"},
      {"QC128x4fs,Refine(QC64x8)", "must re-rank the head's q=128"},
      {"QC128x4fs,Refine(QC128x4)", "Refine codes of 4 bits must be 8 or 32"},
      {"QC128x4fs,Refine(QC128)", "Refine(QC128) is not Refine(QC<q>x<bits>)"},
      {"QC128x4fs,Refine(QC128x8", "needs the kind Refine"},
      {"QC128x4,Refine(QC128x8)", "unknown kind 'Refine(QC128x8)'"},
      {"QC128B3W,Flat", "head 'QC128B3W'"},
      {"QC128W1024,Flat", "head 'QC128W1024'"},
      {"QC128B0W1024,Flat", "W1024 needs a mixer (B ≥ 1)"},
      {"QC128B3W0,Flat", "W0 needs a mixer (B ≥ 1) and a width in [1, 65536]"},
      {"QC128B3W100000,Flat", "W100000"},
  };
  for (const auto& [spec, needle] : cases) {
    try {
      index_factory(384, spec);
      ADD_FAILURE() << "accepted '" << spec << "'";
    } catch (const faiss::FaissException& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << "spec '" << spec << "': " << e.what();
    }
  }
}

struct HnswFixture {
  static constexpr int kDim = 48;
  testing::ClusteredSet base = testing::make_clustered(2500, kDim, 25, 1.0f, 0.5f, 31);
  testing::ClusteredSet queries = testing::make_clustered(50, kDim, 25, 1.0f, 0.5f, 32);
  std::unique_ptr<faiss::Index> index;

  HnswFixture() {
    index = index_factory(kDim, "QC16,HNSW16");
    auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get());
    hnsw->hnsw.efConstruction = 80;
    hnsw->hnsw.efSearch = 64;
    auto& flat = dynamic_cast<IndexFidelityFlat&>(*hnsw->storage);
    flat.training.max_epochs = 2;
    index->train(1000, base.x.data());
    index->add(idx_t(base.cluster.size()), base.x.data());
  }
  size_t nq() const { return queries.cluster.size(); }
};

TEST(IndexFactory, HnswRecallAgainstExactSearch) {
  HnswFixture f;
  ASSERT_TRUE(f.index->is_trained);
  IndexFidelityFlat exact(flat_of(*f.index).head(), CodeType::k8bit);
  exact.add(idx_t(f.base.cluster.size()), f.base.x.data());
  const idx_t k = 10;
  std::vector<float> dh(f.nq() * k), de(f.nq() * k);
  std::vector<idx_t> lh(f.nq() * k), le(f.nq() * k);
  f.index->search(idx_t(f.nq()), f.queries.x.data(), k, dh.data(), lh.data());
  exact.search(idx_t(f.nq()), f.queries.x.data(), k, de.data(), le.data());
  size_t hits = 0;
  for (size_t i = 0; i < f.nq(); ++i) {
    std::set<idx_t> truth(le.begin() + i * k, le.begin() + (i + 1) * k);
    for (idx_t r = 0; r < k; ++r) hits += truth.count(lh[i * k + r]);
  }
  // Floor for M=16, efSearch=64 on this clustered set: graph search over fidelity codes must
  // find nearly all of the exact top-10.
  EXPECT_GE(double(hits) / double(f.nq() * k), 0.9);
}

/// Deleted labels stay in the graph as tombstones: hnsw_search_live keeps them out of the
/// results while they still route the walk (the service's deletions until compaction).
struct EveryThirdDead : faiss::IDSelector {
  bool is_member(idx_t id) const override { return id % 3 != 0; }
};

TEST(IndexFactory, HnswTombstonesAreNeverReturnedAndLiveRecallHolds) {
  HnswFixture f;
  EveryThirdDead live;
  const size_t n = f.base.cluster.size(), n_live = n - (n + 2) / 3;
  const auto& hnsw = dynamic_cast<const faiss::IndexHNSW&>(*f.index);
  faiss::SearchParameters exact_params;
  exact_params.sel = &live;
  IndexFidelityFlat exact(flat_of(*f.index).head(), CodeType::k8bit);
  exact.add(idx_t(n), f.base.x.data());
  const idx_t k = 10;
  std::vector<float> dh(f.nq() * k), de(f.nq() * k);
  std::vector<idx_t> lh(f.nq() * k), le(f.nq() * k);
  hnsw_search_live(hnsw, idx_t(f.nq()), f.queries.x.data(), k, 64, &live, n_live, dh.data(),
                   lh.data());
  exact.search(idx_t(f.nq()), f.queries.x.data(), k, de.data(), le.data(), &exact_params);
  size_t hits = 0;
  for (size_t i = 0; i < f.nq(); ++i) {
    std::set<idx_t> truth(le.begin() + i * k, le.begin() + (i + 1) * k);
    for (idx_t r = 0; r < k; ++r) {
      const idx_t label = lh[i * k + r];
      ASSERT_GE(label, 0) << "query " << i << ": fewer than k live hits";
      EXPECT_NE(label % 3, 0) << "query " << i << " returned tombstone " << label;
      hits += truth.count(label);
    }
  }
  // Same floor as without deletions: a third of the nodes dead must not cut the walk short.
  EXPECT_GE(double(hits) / double(f.nq() * k), 0.9);
}

TEST(IndexFactory, HnswLiveSearchFillsEveryRowWhenMostEntriesAreDead) {
  // Nine entries in ten dead and ef = k: the walk, widened ten times, and where that still
  // falls short the k + dead retry, must give every row k distinct live entries.
  HnswFixture f;
  struct OneInTen : faiss::IDSelector {
    bool is_member(idx_t id) const override { return id % 10 == 0; }
  } live;
  const size_t n_live = (f.base.cluster.size() + 9) / 10;
  const idx_t k = 50;
  std::vector<float> d(f.nq() * k);
  std::vector<idx_t> l(f.nq() * k);
  hnsw_search_live(dynamic_cast<const faiss::IndexHNSW&>(*f.index), idx_t(f.nq()),
                   f.queries.x.data(), k, int(k), &live, n_live, d.data(), l.data());
  for (size_t i = 0; i < f.nq(); ++i) {
    std::set<idx_t> row(l.begin() + i * k, l.begin() + (i + 1) * k);
    EXPECT_EQ(row.size(), size_t(k)) << "query " << i;
    for (idx_t label : row) EXPECT_TRUE(label >= 0 && label % 10 == 0) << "query " << i;
  }
}

TEST(IndexFactory, HnswConcurrentSearchesMatchSequentialOnes) {
  // IndexHNSW::search keeps its visited table and heaps per call: threads may share the index.
  HnswFixture f;
  const idx_t k = 10;
  auto one_by_one = [&](std::vector<idx_t>& labels) {
    std::vector<float> d(k);
    for (size_t i = 0; i < f.nq(); ++i)
      f.index->search(1, f.queries.x.data() + i * HnswFixture::kDim, k, d.data(),
                      labels.data() + i * k);
  };
  std::vector<idx_t> expect(f.nq() * k);
  one_by_one(expect);
  constexpr int kThreads = 4;
  std::vector<std::vector<idx_t>> got(kThreads, std::vector<idx_t>(f.nq() * k));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { one_by_one(got[t]); });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(got[t], expect) << "thread " << t;
}

TEST(IndexFactory, HnswSaveLoadGivesIdenticalResultsAndDamageIsRefused) {
  HnswFixture f;
  const std::string bytes = serialize_index(*f.index);
  auto loaded = deserialize_index(bytes, "hnsw bytes");
  auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(loaded.get());
  ASSERT_NE(hnsw, nullptr);
  EXPECT_EQ(loaded->ntotal, f.index->ntotal);
  EXPECT_EQ(hnsw->hnsw.efSearch, 64);

  const idx_t k = 10;
  std::vector<float> d1(f.nq() * k), d2(f.nq() * k);
  std::vector<idx_t> l1(f.nq() * k), l2(f.nq() * k);
  f.index->search(idx_t(f.nq()), f.queries.x.data(), k, d1.data(), l1.data());
  loaded->search(idx_t(f.nq()), f.queries.x.data(), k, d2.data(), l2.data());
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(d1, d2);

  for (size_t cut : {bytes.size() / 2, bytes.size() - 3}) {
    EXPECT_THROW(deserialize_index(bytes.substr(0, cut), "cut"), faiss::FaissException);
  }
  std::string flipped = bytes;
  flipped[bytes.size() - 40] ^= 0x10;
  EXPECT_THROW(deserialize_index(flipped, "flipped"), faiss::FaissException);
}

}  // namespace
}  // namespace bloch
