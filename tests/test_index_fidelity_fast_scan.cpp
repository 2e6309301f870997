// 4-bit fast scan: the kernels (SIMD = scalar exactly, the quantised table against the exact
// 4-bit look-up score, the block layout), and IndexFidelityFastScan — recall against the exact
// IndexFidelityFlat with the same head, exact results when every code is a candidate, per-query
// k_factor, selectors, add_codes = add, the factory kind, serialisation with damaged files
// refused, and concurrent searches.

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <set>
#include <thread>

#include "SyntheticData.h"
#include "index/FastScanKernels.h"
#include "index/FidelityKernels.h"
#include "index/IndexFactory.h"
#include "index/IndexFidelityFastScan.h"
#include "index/IndexFidelityFlat.h"
#include "index/IndexIO.h"

namespace bloch {
namespace {

using idx_t = faiss::Index::idx_t;

constexpr int kDim = 48;
constexpr int kQubits = 16;
constexpr idx_t kK = 10;

std::vector<float> random_angles(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.5707963f);
  std::vector<float> a(n);
  for (auto& v : a) v = u(rng);
  return a;
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> b(n);
  for (auto& v : b) v = uint8_t(rng());
  return b;
}

// Restores the run-time kernel level when a test changes it.
struct SimdGuard {
  SimdLevel saved = active_simd_level();
  ~SimdGuard() { set_simd_level(saved); }
};

TEST(FastScanKernels, EveryLevelComputesTheScalarSums) {
  SimdGuard guard;
  for (const int q : {1, 2, 3, 16, 31, 128, 129, 300}) {
    FastScanTable table;
    build_fast_scan_table(Codec(CodeType::k4bit, q), random_angles(size_t(q), 7 + q).data(),
                          kFastScanDefaultFloor, &table);
    const size_t nblocks = 5;
    const auto blocks = random_bytes(nblocks * fast_scan_block_bytes(size_t(table.groups)), q);
    std::vector<uint16_t> reference(nblocks * kFastScanBlock);
    set_simd_level(SimdLevel::kScalar);
    fast_scan_accumulate(table, blocks.data(), nblocks, reference.data());
    for (const SimdLevel level : {SimdLevel::kAvx2, SimdLevel::kAvx512}) {
      if (set_simd_level(level) != level) continue;  // not on this CPU
      std::vector<uint16_t> got(nblocks * kFastScanBlock);
      fast_scan_accumulate(table, blocks.data(), nblocks, got.data());
      EXPECT_EQ(got, reference) << "q=" << q << " level=" << simd_level_name(level);
    }
  }
}

// Ranges of a narrow band around π/4 (as a normalised readout gives), one width per qubit.
Codec ranged_four_bit_codec(int q) {
  std::vector<float> lo(q), hi(q);
  for (int i = 0; i < q; ++i) {
    lo[i] = float(std::numbers::pi / 4 - 0.02 - 0.003 * i);
    hi[i] = float(std::numbers::pi / 4 + 0.05 + 0.002 * i);
  }
  return Codec(CodeType::k4bit, q, lo, hi);
}

TEST(FastScanKernels, QuantisedTableTracksTheExactFourBitScore) {
  const int q = 40;
  for (const Codec& codec : {Codec(CodeType::k4bit, q), ranged_four_bit_codec(q)}) {
    const auto query = random_angles(q, 3);
    const size_t n = 3 * kFastScanBlock + 5;
    std::vector<uint8_t> codes(n * codec.code_size());
    codec.encode(n, random_angles(n * q, 4).data(), codes.data());
    std::vector<float> exact_table(size_t(q) * 16), exact(n);
    compute_fidelity_table(codec, query.data(), exact_table.data());
    log_fidelity_scan(codec, nullptr, exact_table.data(), codes.data(), n, exact.data());

    // No clamp (the floor at log ε): every entry is within half a quantisation step.
    FastScanTable table;
    build_fast_scan_table(codec, query.data(), float(std::log(kFidelityFloor)), &table);
    std::vector<uint8_t> blocks;
    fast_scan_pack(codes.data(), codec.code_size(), 0, n, &blocks);
    const size_t nblocks = blocks.size() / fast_scan_block_bytes(codec.code_size());
    ASSERT_EQ(nblocks, 4u);
    std::vector<uint16_t> sums(nblocks * kFastScanBlock);
    fast_scan_accumulate(table, blocks.data(), nblocks, sums.data());
    const double bound = q * (0.5 / table.scale) + 1e-4 * q;
    for (size_t j = 0; j < n; ++j)
      EXPECT_NEAR(table.approx_log_fidelity(sums[j]), exact[j], bound)
          << "code " << j << (codec.ranged() ? " (ranged)" : "");
  }
}

TEST(FastScanKernels, ManyQubitsStayInsideSixteenBits) {
  // q = 600: entries are capped at ⌊65535/600⌋ = 109, so a code at the worst level of every
  // qubit still sums below 65536.
  const int q = 600;
  FastScanTable table;
  build_fast_scan_table(Codec(CodeType::k4bit, q), random_angles(q, 9).data(),
                        float(std::log(kFidelityFloor)), &table);
  uint32_t worst = 0;
  for (int i = 0; i < q; ++i) {
    const uint8_t* row = table.lut.data() + size_t(i) * 32;
    worst += *std::max_element(row, row + 16);
  }
  EXPECT_LE(worst, 65535u);
  EXPECT_LE(*std::max_element(table.lut.begin(), table.lut.end()), 109);
}

TEST(FastScanKernels, PackingRoundTripsAcrossPartialBlocks) {
  const size_t code_size = 5;  // q = 9 or 10
  const auto first = random_bytes(37 * code_size, 1), second = random_bytes(30 * code_size, 2);
  std::vector<uint8_t> blocks;
  fast_scan_pack(first.data(), code_size, 0, 37, &blocks);
  fast_scan_pack(second.data(), code_size, 37, 30, &blocks);
  EXPECT_EQ(blocks.size(), 3 * fast_scan_block_bytes(code_size));
  std::vector<uint8_t> code(code_size);
  for (size_t i = 0; i < 67; ++i) {
    fast_scan_unpack(blocks.data(), code_size, i, code.data());
    const uint8_t* want =
        i < 37 ? first.data() + i * code_size : second.data() + (i - 37) * code_size;
    EXPECT_TRUE(std::equal(code.begin(), code.end(), want)) << "code " << i;
  }
}

TEST(FastScanKernels, BadArgumentsAreRefused) {
  FastScanTable table;
  const float angle = 0.3f;
  EXPECT_THROW(build_fast_scan_table(Codec(), &angle, -5.0f, &table), faiss::FaissException);
  EXPECT_THROW(build_fast_scan_table(Codec(CodeType::k8bit, 1), &angle, -5.0f, &table),
               faiss::FaissException);
  EXPECT_THROW(build_fast_scan_table(Codec(CodeType::k4bit, 1), &angle, 1.0f, &table),
               faiss::FaissException);
  uint16_t sums[32];
  const uint8_t block[32] = {};
  EXPECT_THROW(fast_scan_accumulate(table, block, 1, sums), faiss::FaissException);
}

struct Fixture {
  testing::ClusteredSet base = testing::make_clustered(4000, kDim, 40, 1.0f, 0.5f, 21);
  testing::ClusteredSet queries = testing::make_clustered(50, kDim, 40, 1.0f, 0.5f, 22);
  size_t nb() const { return base.cluster.size(); }
  size_t nq() const { return queries.cluster.size(); }
};

FidelityHead fixed_head() {
  return FidelityHead(CircuitHead(kDim, kQubits, 5));
}

struct Results {
  std::vector<float> d;
  std::vector<idx_t> l;
};

Results search(const faiss::Index& index, const Fixture& f, const faiss::SearchParameters* p,
               idx_t k = kK) {
  Results r{std::vector<float>(f.nq() * k), std::vector<idx_t>(f.nq() * k)};
  index.search(idx_t(f.nq()), f.queries.x.data(), k, r.d.data(), r.l.data(), p);
  return r;
}

double recall(const Results& got, const Results& truth, size_t nq) {
  size_t hits = 0;
  for (size_t i = 0; i < nq; ++i) {
    std::set<idx_t> t(truth.l.begin() + i * kK, truth.l.begin() + (i + 1) * kK);
    for (idx_t r = 0; r < kK; ++r) hits += t.count(got.l[i * kK + r]);
  }
  return double(hits) / double(nq * kK);
}

Results search_k_factor(const IndexFidelityFastScan& index, const Fixture& f, float k_factor) {
  SearchParametersFastScan p;
  p.k_factor = k_factor;
  return search(index, f, &p);
}

TEST(IndexFidelityFastScan, RecallAgainstTheExactIndexRisesWithKFactor) {
  Fixture f;
  IndexFidelityFlat exact(fixed_head(), CodeType::k8bit);
  exact.add(idx_t(f.nb()), f.base.x.data());
  IndexFidelityFastScan fs(fixed_head(), CodeType::k8bit);
  fs.add(idx_t(f.nb()), f.base.x.data());
  EXPECT_EQ(fs.ntotal, idx_t(f.nb()));
  EXPECT_EQ(fs.blocks().size(), (f.nb() + 31) / 32 * 32 * 8);
  const Results truth = search(exact, f, nullptr);
  const double r1 = recall(search_k_factor(fs, f, 1), truth, f.nq());
  const double r_default = recall(search(fs, f, nullptr), truth, f.nq());
  const double r32 = recall(search_k_factor(fs, f, 32), truth, f.nq());
  EXPECT_LE(r1, r_default);
  EXPECT_LE(r_default, r32 + 1e-9);
  EXPECT_GE(r_default, 0.9) << "k_factor " << fs.k_factor;
  EXPECT_GE(r32, 0.99);
}

TEST(IndexFidelityFastScan, EveryCodeACandidateGivesTheExactResults) {
  // k·k_factor ≥ ntotal: the re-ranking sees every code, so the hits are the exact top-k of
  // the float codes, with the exact index's scores.
  Fixture f;
  IndexFidelityFlat exact(fixed_head(), CodeType::kFloat);
  exact.add(idx_t(f.nb()), f.base.x.data());
  IndexFidelityFastScan fs(fixed_head(), CodeType::kFloat);
  fs.add(idx_t(f.nb()), f.base.x.data());
  const Results want = search(exact, f, nullptr);
  const Results got = search_k_factor(fs, f, float(f.nb()) / kK);
  EXPECT_EQ(got.l, want.l);
  for (size_t j = 0; j < got.d.size(); ++j) EXPECT_NEAR(got.d[j], want.d[j], 1e-5 * kQubits);
}

TEST(IndexFidelityFastScan, HitsCarryTheExactScoresOfTheirCodes) {
  Fixture f;
  IndexFidelityFlat exact(fixed_head(), CodeType::k8bit);
  exact.add(idx_t(f.nb()), f.base.x.data());
  IndexFidelityFastScan fs(fixed_head(), CodeType::k8bit);
  fs.add(idx_t(f.nb()), f.base.x.data());
  const Results got = search(fs, f, nullptr);
  std::vector<float> angles(kQubits), code_angles(kQubits);
  for (size_t i = 0; i < f.nq(); ++i) {
    fs.compute_angles(1, f.queries.x.data() + i * kDim, angles.data());
    for (idx_t r = 0; r < kK; ++r) {
      const idx_t label = got.l[i * kK + r];
      ASSERT_GE(label, 0);
      exact.reconstruct_angles(label, code_angles.data());
      EXPECT_NEAR(got.d[i * kK + r],
                  log_fidelity_reference(angles.data(), code_angles.data(), kQubits), 1e-4);
      if (r > 0) {
        EXPECT_GE(got.d[i * kK + r - 1], got.d[i * kK + r]);
      }
    }
  }
}

TEST(IndexFidelityFastScan, SelectorExcludesDocumentsAndBadKFactorIsRefused) {
  Fixture f;
  IndexFidelityFastScan fs(fixed_head(), CodeType::k8bit);
  fs.add(idx_t(f.nb()), f.base.x.data());
  // Every odd label is "deleted".
  std::vector<idx_t> even;
  for (idx_t i = 0; i < idx_t(f.nb()); i += 2) even.push_back(i);
  faiss::IDSelectorBatch sel(even.size(), even.data());
  SearchParametersFastScan p;
  p.sel = &sel;
  for (const idx_t label : search(fs, f, &p).l) EXPECT_EQ(label % 2, 0);
  p.k_factor = 0.5f;
  EXPECT_THROW(search(fs, f, &p), faiss::FaissException);
  EXPECT_THROW(search(fs, f, nullptr, 0), faiss::FaissException);
}

TEST(IndexFidelityFastScan, AddCodesBuildsTheSameIndexAsAdd) {
  Fixture f;
  IndexFidelityFastScan by_add(fixed_head(), CodeType::k8bit);
  by_add.add(idx_t(f.nb()), f.base.x.data());
  std::vector<uint8_t> codes(f.nb() * by_add.sa_code_size());
  by_add.sa_encode(idx_t(f.nb()), f.base.x.data(), codes.data());
  IndexFidelityFastScan by_codes(fixed_head(), CodeType::k8bit);
  // In uneven pieces, so that appends start inside a block.
  by_codes.add_codes(7, codes.data());
  by_codes.add_codes(idx_t(f.nb()) - 7, codes.data() + 7 * by_add.sa_code_size());
  EXPECT_EQ(by_codes.blocks(), by_add.blocks());
  EXPECT_EQ(by_codes.refine_index().codes, by_add.refine_index().codes);
  EXPECT_EQ(search(by_codes, f, nullptr).l, search(by_add, f, nullptr).l);
  by_codes.reset();
  EXPECT_EQ(by_codes.ntotal, 0);
  EXPECT_TRUE(by_codes.blocks().empty());
}

TEST(IndexFidelityFastScan, FactoryKindTrainsAddsAndSearches) {
  Fixture f;
  auto index = index_factory(kDim, "QC16x4fsB1,Refine(QC16x8)");
  auto* fs = dynamic_cast<IndexFidelityFastScan*>(index.get());
  ASSERT_NE(fs, nullptr);
  EXPECT_FALSE(fs->is_trained);
  EXPECT_EQ(fs->refine_codec().type(), CodeType::k8bit);
  EXPECT_EQ(fs->head().mixer()->butterflies(), 1);
  EXPECT_THROW(fs->add(1, f.base.x.data()), faiss::FaissException);
  fs->training().max_epochs = 2;
  fs->train(1000, f.base.x.data());
  EXPECT_TRUE(fs->is_trained);
  EXPECT_TRUE(fs->scan_codec().ranged()) << "training fits the 4-bit ranges";
  EXPECT_EQ(fs->scan_codec(), fs->head().codec(CodeType::k4bit));
  fs->add(idx_t(f.nb()), f.base.x.data());
  IndexFidelityFlat exact(fs->head(), CodeType::k8bit);
  exact.add(idx_t(f.nb()), f.base.x.data());
  EXPECT_GE(recall(search(*fs, f, nullptr), search(exact, f, nullptr), f.nq()), 0.85);

  auto float_refine = index_factory(kDim, "QC16x4fs,Refine(QC16x32)");
  EXPECT_EQ(dynamic_cast<IndexFidelityFastScan&>(*float_refine).refine_codec().type(),
            CodeType::kFloat);
}

TEST(IndexFidelityFastScan, FittedRangesPreSelectBetterCandidates) {
  // A normalised readout keeps angles near π/4, where full-range 4-bit levels are coarse.
  Fixture f;
  FidelityHead ranged(CircuitHead(kDim, kQubits, 5), Readout::kNormalized);
  ranged.fit_angle_ranges(f.nb(), f.base.x.data());
  FidelityHead full = ranged;
  full.clear_angle_ranges();
  IndexFidelityFlat exact(ranged, CodeType::k8bit);
  exact.add(idx_t(f.nb()), f.base.x.data());
  const Results truth = search(exact, f, nullptr);
  double got[2];
  for (int with_ranges : {0, 1}) {
    IndexFidelityFastScan fs(with_ranges ? ranged : full, CodeType::k8bit);
    fs.add(idx_t(f.nb()), f.base.x.data());
    EXPECT_EQ(fs.scan_codec().ranged(), bool(with_ranges));
    got[with_ranges] = recall(search_k_factor(fs, f, 2), truth, f.nq());
  }
  EXPECT_GT(got[1], got[0] + 0.05) << "full range " << got[0] << ", fitted " << got[1];
}

TEST(IndexFidelityFastScan, SaveLoadGivesIdenticalResultsAndDamageIsRefused) {
  Fixture f;
  IndexFidelityFastScan fs(fixed_head(), CodeType::k8bit);
  fs.add(idx_t(f.nb()), f.base.x.data());
  fs.k_factor = 3;
  const std::string bytes = serialize_index(fs);
  auto loaded = deserialize_index(bytes, "test");
  auto* back = dynamic_cast<IndexFidelityFastScan*>(loaded.get());
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->k_factor, 3);
  EXPECT_EQ(back->blocks(), fs.blocks());
  const Results a = search(fs, f, nullptr), b = search(*back, f, nullptr);
  EXPECT_EQ(a.l, b.l);
  EXPECT_EQ(a.d, b.d);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x20;
  EXPECT_THROW(deserialize_index(flipped, "flipped"), faiss::FaissException);
  EXPECT_THROW(deserialize_index(bytes.substr(0, bytes.size() - 9), "short"),
               faiss::FaissException);
}

TEST(IndexFidelityFastScan, ConcurrentSearchesEqualSequentialOnes) {
  Fixture f;
  IndexFidelityFastScan fs(fixed_head(), CodeType::k8bit);
  fs.add(idx_t(f.nb()), f.base.x.data());
  const Results want = search(fs, f, nullptr);
  std::vector<Results> got(4);
  std::vector<std::thread> threads;
  for (auto& r : got) threads.emplace_back([&] { r = search(fs, f, nullptr); });
  for (auto& t : threads) t.join();
  for (const auto& r : got) {
    EXPECT_EQ(r.l, want.l);
    EXPECT_EQ(r.d, want.d);
  }
}

}  // namespace
}  // namespace bloch
