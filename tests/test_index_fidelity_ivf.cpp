// IndexFidelityIVF: recall against the exact IndexFidelityFlat with the same head, rising with
// nprobe and exact at nprobe = nlist; the factory kind end to end (head training, then k-means);
// removal, external ids, selectors, range search; concurrent searches; serialisation, with
// damaged files refused.

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <thread>

#include "SyntheticData.h"
#include "index/BinaryIO.h"
#include "index/FidelityKernels.h"
#include "index/IndexFactory.h"
#include "index/IndexFidelityFlat.h"
#include "index/IndexFidelityIVF.h"
#include "index/IndexIO.h"

namespace bloch {
namespace {

using idx_t = faiss::Index::idx_t;

constexpr int kDim = 48;
constexpr int kQubits = 16;
constexpr size_t kLists = 32;
constexpr idx_t kK = 10;

// 40 clusters so that the 32 lists cannot simply be one cluster each; 1500 training rows stay
// above FAISS's 39 points per centroid.
struct Fixture {
  testing::ClusteredSet base = testing::make_clustered(4000, kDim, 40, 1.0f, 0.5f, 11);
  testing::ClusteredSet queries = testing::make_clustered(60, kDim, 40, 1.0f, 0.5f, 12);
  size_t nb() const { return base.cluster.size(); }
  size_t nq() const { return queries.cluster.size(); }
};

// A fixed paper-exact head (not trained): the IVF then only runs k-means in train().
FidelityHead fixed_head() {
  return FidelityHead(CircuitHead(kDim, kQubits, 3));
}

std::unique_ptr<IndexFidelityIVF> built_ivf(const Fixture& f, CodeType type) {
  auto ivf = std::make_unique<IndexFidelityIVF>(fixed_head(), type, kLists);
  ivf->train(1500, f.base.x.data());
  ivf->add(idx_t(f.nb()), f.base.x.data());
  return ivf;
}

struct Results {
  std::vector<float> d;
  std::vector<idx_t> l;
};

Results search(const faiss::Index& index, const Fixture& f, const faiss::SearchParameters* p) {
  Results r{std::vector<float>(f.nq() * kK), std::vector<idx_t>(f.nq() * kK)};
  index.search(idx_t(f.nq()), f.queries.x.data(), kK, r.d.data(), r.l.data(), p);
  return r;
}

Results search_nprobe(const IndexFidelityIVF& index, const Fixture& f, size_t nprobe) {
  faiss::SearchParametersIVF p;
  p.nprobe = nprobe;
  return search(index, f, &p);
}

double recall(const Results& got, const Results& truth, size_t nq) {
  size_t hits = 0;
  for (size_t i = 0; i < nq; ++i) {
    std::set<idx_t> t(truth.l.begin() + i * kK, truth.l.begin() + (i + 1) * kK);
    for (idx_t r = 0; r < kK; ++r) hits += t.count(got.l[i * kK + r]);
  }
  return double(hits) / double(nq * kK);
}

TEST(IndexFidelityIVF, RecallAgainstExactSearchRisesWithNprobe) {
  Fixture f;
  const auto ivf = built_ivf(f, CodeType::k8bit);
  ASSERT_TRUE(ivf->is_trained);
  ASSERT_EQ(ivf->bloch_quantizer().ntotal, idx_t(kLists));
  ASSERT_EQ(ivf->ntotal, idx_t(f.nb()));
  EXPECT_EQ(ivf->metric_type, faiss::METRIC_INNER_PRODUCT);
  IndexFidelityFlat exact(ivf->head(), CodeType::k8bit);
  exact.add(idx_t(f.nb()), f.base.x.data());
  const Results truth = search(exact, f, nullptr);

  // Probe sets are nested (top-p centroids ⊂ top-(p+1)), and an exact top-10 hit inside the
  // probed set stays in the probed top-10, so recall can only rise with nprobe.
  std::vector<double> r;
  for (size_t nprobe : {1, 2, 4, 8, 16})
    r.push_back(recall(search_nprobe(*ivf, f, nprobe), truth, f.nq()));
  for (size_t i = 1; i < r.size(); ++i) EXPECT_GE(r[i], r[i - 1]) << "nprobe step " << i;
  EXPECT_LT(r.front(), r.back()) << "probing more lists must find more of the exact top-10";
  // Floor at nprobe = 8 of 32 lists (a quarter of the codes scored) on this clustered set.
  EXPECT_GE(r[3], 0.9) << "recall@10 at nprobe=8";
  for (float v : search_nprobe(*ivf, f, 8).d) EXPECT_LE(v, 0.0f);
}

class IndexFidelityIVFCodecs : public ::testing::TestWithParam<CodeType> {};

TEST_P(IndexFidelityIVFCodecs, NprobeNlistEqualsExactSearch) {
  Fixture f;
  const auto ivf = built_ivf(f, GetParam());
  IndexFidelityFlat exact(ivf->head(), GetParam());
  exact.add(idx_t(f.nb()), f.base.x.data());
  const Results truth = search(exact, f, nullptr);
  ivf->nprobe = kLists;  // through the member this time, not SearchParametersIVF
  const Results all = search(*ivf, f, nullptr);
  // Same kernels over the same codes; blocks start at other offsets, so a score may differ by
  // the SIMD/scalar tolerance, and only labels clear of the k-th score are compared.
  const double tol = kKernelTolerance * kQubits;
  for (size_t i = 0; i < f.nq(); ++i) {
    std::set<idx_t> got(all.l.begin() + i * kK, all.l.begin() + (i + 1) * kK);
    const float kth = truth.d[i * kK + kK - 1];
    for (idx_t r = 0; r < kK; ++r) {
      EXPECT_NEAR(all.d[i * kK + r], truth.d[i * kK + r], tol) << "query " << i << " rank " << r;
      if (truth.d[i * kK + r] > kth + 2 * tol) {
        EXPECT_TRUE(got.count(truth.l[i * kK + r])) << "query " << i << " rank " << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, IndexFidelityIVFCodecs,
                         ::testing::Values(CodeType::kFloat, CodeType::k8bit, CodeType::k4bit),
                         [](const auto& info) { return std::string(code_type_name(info.param)); });

TEST(IndexFidelityIVF, FactoryKindTrainsHeadThenKmeans) {
  Fixture f;
  auto index = index_factory(kDim, "QC16,IVF32");
  auto* ivf = dynamic_cast<IndexFidelityIVF*>(index.get());
  ASSERT_NE(ivf, nullptr);
  EXPECT_FALSE(ivf->is_trained);
  EXPECT_TRUE(ivf->train_head);
  const FidelityHead initial = ivf->head();
  ivf->training.max_epochs = 2;
  index->train(1500, f.base.x.data());
  EXPECT_TRUE(index->is_trained);
  EXPECT_EQ(ivf->last_training.epochs, 2);
  EXPECT_FALSE(ivf->head() == initial) << "train() must train the head of a factory index";
  EXPECT_EQ(ivf->bloch_quantizer().ntotal, idx_t(kLists));
  index->add(idx_t(f.nb()), f.base.x.data());

  IndexFidelityFlat exact(ivf->head(), CodeType::k8bit);
  exact.add(idx_t(f.nb()), f.base.x.data());
  // Floor for the trained head at nprobe = 8 of 32.
  EXPECT_GE(recall(search_nprobe(*ivf, f, 8), search(exact, f, nullptr), f.nq()), 0.9);
}

TEST(IndexFidelityIVF, RemovedIdsAreNeverReturned) {
  Fixture f;
  const auto ivf = built_ivf(f, CodeType::k8bit);
  const Results before = search_nprobe(*ivf, f, kLists);
  // Remove every id that was a top-10 hit of some query.
  std::set<idx_t> hits(before.l.begin(), before.l.end());
  const std::vector<idx_t> gone(hits.begin(), hits.end());
  faiss::IDSelectorBatch sel(gone.size(), gone.data());
  EXPECT_EQ(ivf->remove_ids(sel), gone.size());
  EXPECT_EQ(ivf->ntotal, idx_t(f.nb() - gone.size()));
  const Results after = search_nprobe(*ivf, f, kLists);
  for (idx_t l : after.l) {
    EXPECT_GE(l, 0);
    EXPECT_EQ(hits.count(l), 0u) << "removed id " << l << " returned";
  }
}

TEST(IndexFidelityIVF, ExternalIdsSelectorsAndRangeSearch) {
  Fixture f;
  IndexFidelityIVF ivf(fixed_head(), CodeType::k8bit, kLists);
  ivf.train(1500, f.base.x.data());
  std::vector<idx_t> ids(f.nb());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = 5000000 + 7 * idx_t(i);
  ivf.add_with_ids(idx_t(f.nb()), f.base.x.data(), ids.data());
  const auto plain = built_ivf(f, CodeType::k8bit);
  const Results a = search_nprobe(ivf, f, 4), b = search_nprobe(*plain, f, 4);
  for (size_t j = 0; j < a.l.size(); ++j) {
    EXPECT_EQ(a.l[j], ids[b.l[j]]);
    EXPECT_EQ(a.d[j], b.d[j]);
  }

  // Only the selected ids come back, with the same scores as unfiltered (nprobe = nlist).
  faiss::IDSelectorRange upper(2000, idx_t(f.nb()));
  faiss::SearchParametersIVF p;
  p.nprobe = kLists;
  p.sel = &upper;
  const Results filtered = search(*plain, f, &p);
  for (idx_t l : filtered.l) EXPECT_GE(l, 2000);

  // Range search at nprobe = nlist: the exact index's hits above the radius (clear of it).
  IndexFidelityFlat exact(plain->head(), CodeType::k8bit);
  exact.add(idx_t(f.nb()), f.base.x.data());
  const float radius = std::log(0.3f);
  faiss::RangeSearchResult got(idx_t(f.nq())), want(idx_t(f.nq()));
  plain->nprobe = kLists;
  plain->range_search(idx_t(f.nq()), f.queries.x.data(), radius, &got);
  exact.range_search(idx_t(f.nq()), f.queries.x.data(), radius, &want);
  const double tol = kKernelTolerance * kQubits;
  size_t total = 0;
  for (size_t i = 0; i < f.nq(); ++i) {
    std::set<idx_t> g(got.labels + got.lims[i], got.labels + got.lims[i + 1]);
    for (size_t j = want.lims[i]; j < want.lims[i + 1]; ++j)
      if (want.distances[j] > radius + tol) {
        EXPECT_TRUE(g.count(want.labels[j])) << "query " << i;
      }
    for (size_t j = got.lims[i]; j < got.lims[i + 1]; ++j) EXPECT_GT(got.distances[j], radius);
    total += g.size();
  }
  EXPECT_GT(total, 0u) << "the radius should select something in this fixture";
}

TEST(IndexFidelityIVF, ConcurrentSearchesMatchSequentialOnes) {
  // search() is const and keeps all per-query state local: threads may share one index.
  Fixture f;
  const auto ivf = built_ivf(f, CodeType::k8bit);
  faiss::SearchParametersIVF p;
  p.nprobe = 16;  // about 2000 codes per query: enough for the split-probes path to split
  auto one_by_one = [&](std::vector<idx_t>& labels) {
    std::vector<float> d(kK);
    for (size_t i = 0; i < f.nq(); ++i)  // one query per call: the split-probes path
      ivf->search(1, f.queries.x.data() + i * kDim, kK, d.data(), labels.data() + i * kK, &p);
  };
  std::vector<idx_t> expect(f.nq() * kK);
  one_by_one(expect);
  const Results batch = search(*ivf, f, &p);  // the one-query-per-thread path
  EXPECT_EQ(recall(batch, Results{{}, expect}, f.nq()), 1.0);

  constexpr int kThreads = 4;
  std::vector<std::vector<idx_t>> got(kThreads, std::vector<idx_t>(f.nq() * kK));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { one_by_one(got[t]); });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(got[t], expect) << "thread " << t;
}

TEST(IndexFidelityIVF, BadInputIsRefused) {
  Fixture f;
  auto expect_refused = [](auto&& call, const char* needle) {
    try {
      call();
      ADD_FAILURE() << "accepted (expected '" << needle << "')";
    } catch (const faiss::FaissException& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  EXPECT_THROW(IndexFidelityIVF(fixed_head(), CodeType::k8bit, 0), faiss::FaissException);
  IndexFidelityIVF ivf(fixed_head(), CodeType::k8bit, kLists);
  expect_refused([&] { ivf.add(1, f.base.x.data()); }, "not trained");
  expect_refused([&] { ivf.train(kLists - 1, f.base.x.data()); }, "n >= nlist");
  ivf.train(1500, f.base.x.data());
  ivf.add(100, f.base.x.data());
  std::vector<float> d(kK);
  std::vector<idx_t> l(kK);
  expect_refused([&] { ivf.search(1, f.queries.x.data(), 0, d.data(), l.data()); }, "k=0");
  faiss::SearchParametersIVF zero;
  zero.nprobe = 0;
  expect_refused([&] { ivf.search(1, f.queries.x.data(), kK, d.data(), l.data(), &zero); },
                 "nprobe=0");
  expect_refused([&] { ivf.train(1500, f.base.x.data()); }, "holding 100 codes");
  std::vector<float> recons(kDim);
  expect_refused([&] { ivf.reconstruct(0, recons.data()); }, "");
  expect_refused(
      [&] {
        ivf.search_and_reconstruct(1, f.queries.x.data(), kK, d.data(), l.data(), recons.data());
      },
      "many-to-one");
  const idx_t bad_list = idx_t(kLists);
  expect_refused(
      [&] {
        ivf.search_preassigned(1, f.queries.x.data(), kK, &bad_list, nullptr, d.data(), l.data(),
                               false);
      },
      "not < nlist");
}

// Serialisation: identical results after a round trip, and damage refused.
TEST(IndexFidelityIVF, SaveLoadGivesIdenticalResults) {
  Fixture f;
  for (CodeType type : {CodeType::kFloat, CodeType::k8bit, CodeType::k4bit}) {
    const auto ivf = built_ivf(f, type);
    ivf->nprobe = 5;
    auto loaded = deserialize_index(serialize_index(*ivf), "ivf bytes");
    auto* back = dynamic_cast<IndexFidelityIVF*>(loaded.get());
    ASSERT_NE(back, nullptr);
    EXPECT_EQ(back->ntotal, ivf->ntotal);
    EXPECT_EQ(back->nlist, kLists);
    EXPECT_EQ(back->nprobe, 5u);
    EXPECT_EQ(back->codec().type(), type);
    EXPECT_TRUE(back->head() == ivf->head());
    EXPECT_EQ(back->bloch_quantizer().codes, ivf->bloch_quantizer().codes);
    const Results a = search(*ivf, f, nullptr), b = search(*back, f, nullptr);
    EXPECT_EQ(a.l, b.l);
    EXPECT_EQ(a.d, b.d);
  }
  // An untrained factory index keeps its state: loaded, it trains its head and lists.
  auto fresh = index_factory(kDim, "QC16x4,IVF8");
  auto loaded = deserialize_index(serialize_index(*fresh), "fresh bytes");
  auto* back = dynamic_cast<IndexFidelityIVF*>(loaded.get());
  ASSERT_NE(back, nullptr);
  EXPECT_FALSE(back->is_trained);
  EXPECT_TRUE(back->train_head);
  EXPECT_EQ(back->bloch_quantizer().ntotal, 0);
}

TEST(IndexFidelityIVF, DamagedFilesAreRefused) {
  Fixture f;
  const auto ivf = built_ivf(f, CodeType::k8bit);
  const std::string bytes = serialize_index(*ivf);
  auto expect_refused = [](const std::string& data, const char* needle) {
    try {
      deserialize_index(data, "test bytes");
      ADD_FAILURE() << "accepted damaged data (expected '" << needle << "')";
    } catch (const faiss::FaissException& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  for (size_t cut : {size_t(20), bytes.size() / 2, bytes.size() - 3})
    expect_refused(bytes.substr(0, cut), "checksum");
  std::string flipped = bytes;
  flipped[bytes.size() / 3] ^= 0x08;
  expect_refused(flipped, "checksum");

  // Damage behind a valid checksum: the fields themselves are checked.
  auto rechecksummed = [](std::string payload) {
    const uint64_t sum = checksum64(payload);
    payload.append(reinterpret_cast<const char*>(&sum), sizeof(sum));
    return payload;
  };
  BinaryWriter head_writer;
  ivf->head().serialize(head_writer);
  const size_t head_size = head_writer.finish_with_checksum().size() - sizeof(uint64_t);
  // magic, version, kind, head, codec type, is_trained, train_head, ntotal, then nlist.
  const size_t nlist_at = 8 + 4 + 4 + head_size + 1 + 1 + 1 + 8;
  const std::string payload = bytes.substr(0, bytes.size() - sizeof(uint64_t));
  uint64_t stored_nlist;
  std::memcpy(&stored_nlist, payload.data() + nlist_at, sizeof(stored_nlist));
  ASSERT_EQ(stored_nlist, kLists) << "layout assumption of this test";
  for (const auto& [nlist, needle] :
       {std::pair<uint64_t, const char*>{0, "nlist=0"}, {kLists + 1, "centroids"}}) {
    std::string bad = payload;
    std::memcpy(bad.data() + nlist_at, &nlist, sizeof(nlist));
    expect_refused(rechecksummed(bad), needle);
  }

  // Lists that disagree with the index: a negative id, more entries than ntotal.
  const std::vector<uint8_t> code(ivf->code_size, 0);
  {
    const auto copy = built_ivf(f, CodeType::k8bit);
    copy->invlists->add_entry(3, -4, code.data());
    expect_refused(serialize_index(*copy), "negative id -4");
  }
  {
    const auto copy = built_ivf(f, CodeType::k8bit);
    copy->invlists->add_entry(3, 17, code.data());
    expect_refused(serialize_index(*copy), "more than ntotal");
  }
}

}  // namespace
}  // namespace bloch
