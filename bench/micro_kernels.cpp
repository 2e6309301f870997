// Micro-benchmarks of the log-fidelity kernels (DESIGN §1.5) next to the baseline they must
// beat: faiss::IndexFlatIP over raw 768-d float vectors, and the machine's read bandwidth.
// Single-threaded throughout (rates are per CPU second): omp_set_num_threads(1) here, and run with
// OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 (FAISS's batched search calls BLAS sgemm).
// items_per_second = scored vectors/s; bytes_per_second = bytes of codes (or vectors) read.
// Results and the exact command: docs/BENCHMARKS.md.

#include <benchmark/benchmark.h>
#include <faiss/IndexFlat.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "index/Codec.h"
#include "index/FastScanKernels.h"
#include "index/FidelityHead.h"
#include "index/FidelityKernels.h"

namespace {

using namespace bloch;

// Codes for the scans: large enough to exceed the 32 MiB L3 (1M 8-bit codes of q = 128 are
// 128 MiB; 256K float codes of q = 128 are 128 MiB).
constexpr size_t kCodes8 = 1 << 20;
constexpr size_t kCodesFloat = 1 << 18;
constexpr int kFaissDim = 768;
constexpr size_t kFaissVectors = 200000;  // 614 MB of floats: memory-bound

std::vector<float> random_angles(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, float(std::numbers::pi / 2));
  std::vector<float> a(count);
  for (auto& x : a) x = u(rng);
  return a;
}

// Encoded random codes, kept across benchmarks (building them is slower than scanning).
const std::vector<uint8_t>& cached_codes(CodeType type, int q, size_t n) {
  static std::vector<std::unique_ptr<std::vector<uint8_t>>> cache;
  static std::vector<std::pair<int, int>> keys;
  const std::pair<int, int> key(int(type), q);
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i] == key) return *cache[i];
  const Codec codec(type, q);
  auto codes = std::make_unique<std::vector<uint8_t>>(n * codec.code_size());
  const std::vector<float> angles = random_angles(n * q, 42 + q);
  codec.encode(n, angles.data(), codes->data());
  keys.push_back(key);
  cache.push_back(std::move(codes));
  return *cache.back();
}

// Args: q, SIMD level (0 scalar, 1 avx2, 2 avx512), code type.
void BM_Scan(benchmark::State& state) {
  const int q = int(state.range(0));
  const SimdLevel want = SimdLevel(state.range(1));
  const CodeType type = CodeType(state.range(2));
  if (set_simd_level(want) != want) {
    state.SkipWithError("SIMD level not supported on this CPU");
    return;
  }
  const size_t n = type == CodeType::kFloat ? kCodesFloat : kCodes8;
  const Codec codec(type, q);
  const std::vector<uint8_t>& codes = cached_codes(type, q, n);
  const std::vector<float> query = random_angles(q, 7);
  std::vector<float> table(type == CodeType::kFloat ? 0 : size_t(q) * codec.levels());
  if (!table.empty()) compute_fidelity_table(codec, query.data(), table.data());
  std::vector<float> out(n);
  for (auto _ : state) {
    log_fidelity_scan(codec, query.data(), table.data(), codes.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(n));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(n * codec.code_size()));
  state.SetLabel(std::string(code_type_name(type)) + " " + simd_level_name(want));
}

// Random ids (a graph walk or re-rank): 64K ids into the 1M 8-bit codes.
void BM_Gather8bit(benchmark::State& state) {
  const int q = int(state.range(0));
  set_simd_level(SimdLevel(state.range(1)));
  const Codec codec(CodeType::k8bit, q);
  const std::vector<uint8_t>& codes = cached_codes(CodeType::k8bit, q, kCodes8);
  const std::vector<float> query = random_angles(q, 7);
  std::vector<float> table(size_t(q) * codec.levels());
  compute_fidelity_table(codec, query.data(), table.data());
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int64_t> pick(0, kCodes8 - 1);
  std::vector<int64_t> ids(1 << 16);
  for (auto& id : ids) id = pick(rng);
  std::vector<float> out(ids.size());
  for (auto _ : state) {
    log_fidelity_gather(codec, nullptr, table.data(), codes.data(), ids.data(), ids.size(),
                        out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(ids.size()));
  state.SetLabel(simd_level_name(active_simd_level()));
}

// The per-query table (q·2^B logs in double), paid once per query before a scan.
void BM_FidelityTable(benchmark::State& state) {
  const int q = int(state.range(0));
  const Codec codec(CodeType(state.range(1)), q);
  const std::vector<float> query = random_angles(q, 7);
  std::vector<float> table(size_t(q) * codec.levels());
  for (auto _ : state) {
    compute_fidelity_table(codec, query.data(), table.data());
    benchmark::DoNotOptimize(table.data());
  }
  state.SetLabel(code_type_name(codec.type()));
}

// The 4-bit fast scan (FastScanKernels.h) over the first n of the same 1M codes as BM_Scan's
// 4-bit row, packed in blocks of 32: uint16 sums from the byte-quantised table. Args: q, SIMD
// level, n (a multiple of 32; 59,392 ≈ the Debian set, whose 3.8 MB of codes stay in cache).
void BM_FastScan(benchmark::State& state) {
  const int q = int(state.range(0));
  const SimdLevel want = SimdLevel(state.range(1));
  if (set_simd_level(want) != want) {
    state.SkipWithError("SIMD level not supported on this CPU");
    return;
  }
  const Codec codec(CodeType::k4bit, q);
  const size_t n = size_t(state.range(2));
  static std::vector<uint8_t> blocks;
  static int packed_q = 0;
  static size_t packed_n = 0;
  if (packed_q != q || packed_n != n) {
    blocks.clear();
    fast_scan_pack(cached_codes(CodeType::k4bit, q, kCodes8).data(), codec.code_size(), 0, n,
                   &blocks);
    packed_q = q;
    packed_n = n;
  }
  FastScanTable table;
  build_fast_scan_table(codec, random_angles(q, 7).data(), kFastScanDefaultFloor, &table);
  const size_t nblocks = n / kFastScanBlock;
  std::vector<uint16_t> sums(n);
  for (auto _ : state) {
    fast_scan_accumulate(table, blocks.data(), nblocks, sums.data());
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(n));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(blocks.size()));
  state.SetLabel(std::string("4bit fast scan ") + simd_level_name(want));
}

// The fast scan's per-query table: q·16 entries, then quantised to bytes.
void BM_FastScanTable(benchmark::State& state) {
  const int q = int(state.range(0));
  const std::vector<float> query = random_angles(q, 7);
  const Codec codec(CodeType::k4bit, q);
  FastScanTable table;
  for (auto _ : state) {
    build_fast_scan_table(codec, query.data(), kFastScanDefaultFloor, &table);
    benchmark::DoNotOptimize(table.lut.data());
  }
}

// The head's forward pass (inference): range(0) raw inputs of d = range(1) through a head of
// q = range(2) qubits with range(3) mixer butterflies (0: the paper-exact circuit alone), one
// thread. items = vectors encoded. Args: n, d, q, butterflies, SIMD level, the mixer's minimum
// width (HeadSpec::min_mixer_width; 0 = 2q).
void BM_HeadForward(benchmark::State& state) {
  const size_t n = size_t(state.range(0));
  const int d = int(state.range(1)), q = int(state.range(2));
  const SimdLevel want = SimdLevel(state.range(4));
  if (set_simd_level(want) != want) {
    state.SkipWithError("SIMD level not supported on this CPU");
    return;
  }
  HeadSpec spec;
  spec.d = d;
  spec.q = q;
  spec.butterflies = int(state.range(3));
  spec.min_mixer_width = int(state.range(5));
  if (spec.butterflies == 0) spec.readout = bloch::Readout::kRaw;  // the paper-exact head
  const FidelityHead head = FidelityHead::make(spec);
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal;
  std::vector<float> x(n * size_t(d)), angles(n * size_t(q));
  for (auto& v : x) v = normal(rng);
  for (auto _ : state) {
    head.forward(n, x.data(), angles.data());
    benchmark::DoNotOptimize(angles.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(n));
  state.SetLabel((spec.butterflies
                      ? "mixer P=" + std::to_string(head.mixer()->width()) + "+circuit "
                      : std::string("paper-exact ")) +
                 simd_level_name(want));
}

// faiss::IndexFlatIP over raw 768-d float vectors, k = 10; range(0) queries per search call.
// One query uses FAISS's SIMD inner-product loop; ≥ 20 queries (distance_compute_blas_threshold)
// use BLAS sgemm. items = vectors scored (n per query).
void BM_FaissFlatIP(benchmark::State& state) {
  const int nq = int(state.range(0));
  static std::unique_ptr<faiss::IndexFlatIP> index;
  if (!index) {
    index = std::make_unique<faiss::IndexFlatIP>(kFaissDim);
    std::mt19937_64 rng(1);
    std::normal_distribution<float> normal;
    std::vector<float> x(kFaissVectors * kFaissDim);
    for (auto& v : x) v = normal(rng);
    index->add(kFaissVectors, x.data());
  }
  std::mt19937_64 rng(2);
  std::normal_distribution<float> normal;
  std::vector<float> queries(size_t(nq) * kFaissDim);
  for (auto& v : queries) v = normal(rng);
  constexpr int k = 10;
  std::vector<float> distances(size_t(nq) * k);
  std::vector<faiss::Index::idx_t> labels(size_t(nq) * k);
  for (auto _ : state) {
    index->search(nq, queries.data(), k, distances.data(), labels.data());
    benchmark::DoNotOptimize(labels.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * nq * int64_t(kFaissVectors));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kFaissVectors) * kFaissDim * 4);
  state.SetLabel(nq == 1 ? "1 query per call" : std::to_string(nq) + " queries per call");
}

// Single-thread read bandwidth: a sum over a 1 GiB buffer (8 independent 64-bit lanes, which
// the compiler vectorises; far from compute-bound).
void BM_ReadBandwidth(benchmark::State& state) {
  const size_t words = (size_t(1) << 30) / 8;
  static std::vector<uint64_t> buf(words, 1);
  for (auto _ : state) {
    uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < words; i += 8)
      for (int u = 0; u < 8; ++u) s[u] += buf[i + u];
    uint64_t total = 0;
    for (uint64_t x : s) total += x;
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(words * 8));
}

void scan_args(benchmark::internal::Benchmark* b) {
  for (int type : {int(CodeType::k8bit), int(CodeType::kFloat), int(CodeType::k4bit)}) {
    for (int q : {64, 128, 256}) b->Args({q, int(SimdLevel::kAvx512), type});
    for (int level : {int(SimdLevel::kScalar), int(SimdLevel::kAvx2)}) b->Args({128, level, type});
  }
}

BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Scan)->Apply(scan_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Gather8bit)
    ->Args({128, int(SimdLevel::kAvx512)})
    ->Args({128, int(SimdLevel::kAvx2)})
    ->Args({128, int(SimdLevel::kScalar)})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FidelityTable)
    ->Args({128, int(CodeType::k8bit)})
    ->Args({128, int(CodeType::k4bit)})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FastScan)
    ->Args({64, int(SimdLevel::kAvx512), int(kCodes8)})
    ->Args({128, int(SimdLevel::kAvx512), int(kCodes8)})
    ->Args({256, int(SimdLevel::kAvx512), int(kCodes8)})
    ->Args({128, int(SimdLevel::kAvx2), int(kCodes8)})
    ->Args({128, int(SimdLevel::kScalar), int(kCodes8)})
    ->Args({128, int(SimdLevel::kAvx512), 59392})
    ->Args({128, int(SimdLevel::kAvx2), 59392})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FastScanTable)->Arg(128)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HeadForward)
    ->Args({256, 768, 128, 3, int(SimdLevel::kAvx512), 0})
    ->Args({256, 768, 128, 3, int(SimdLevel::kAvx2), 0})
    ->Args({256, 768, 128, 3, int(SimdLevel::kScalar), 0})
    ->Args({256, 768, 128, 0, int(SimdLevel::kAvx512), 0})
    ->Args({1, 384, 128, 3, int(SimdLevel::kAvx512), 0})
    ->Args({256, 384, 128, 3, int(SimdLevel::kAvx512), 0})
    ->Args({256, 384, 128, 6, int(SimdLevel::kAvx512), 0})
    ->Args({256, 384, 256, 3, int(SimdLevel::kAvx512), 0})
    ->Args({256, 384, 256, 6, int(SimdLevel::kAvx512), 0})
    ->Args({256, 384, 256, 3, int(SimdLevel::kAvx512), 2048})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FaissFlatIP)->Arg(1)->Arg(256)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  omp_set_num_threads(1);  // kernels are single-threaded; make FAISS so as well
  benchmark::AddCustomContext("simd_detected", simd_level_name(detected_simd_level()));
  for (const char* var : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
    const char* value = std::getenv(var);
    benchmark::AddCustomContext(var, value ? value : "(unset)");
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
