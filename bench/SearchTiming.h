#pragma once

// Timing of one search configuration the way bloch_ann reports it, for any system behind a
// callable search(n, x, labels) that writes the top-10 ids of n queries:
//   - queries per second of one call over all queries (a batch), with 1 thread and with all;
//   - p50/p99 latency of single-query calls with 1 thread (what one client request costs).
// "Threads" means both OpenMP's (FAISS, hnswlib loops, bloch) and OpenBLAS's (FAISS's flat and
// k-means distance products): OpenBLAS keeps its own pool, sized by OPENBLAS_NUM_THREADS at
// start, so a 1-thread column with a 2-thread BLAS pool would not be one thread.

#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "WallClock.h"

namespace bloch::bench {

using SearchFn = std::function<void(size_t n, const float* x, int64_t* labels)>;

/// OpenBLAS's runtime setter if the BLAS loaded is OpenBLAS (looked up at run time: the
/// reference BLAS has none, and libblas.so.3 is whichever the system's alternatives point to).
inline void (*openblas_setter())(int) {
  static const auto fn =
      reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  return fn;
}

/// OpenMP and (when OpenBLAS is loaded) BLAS threads for the next calls.
inline void set_threads(int threads) {
  omp_set_num_threads(threads);
  if (auto* fn = openblas_setter()) fn(threads);
}

struct Timing {
  double qps1 = 0, qps_all = 0;
  double p50_ms = 0, p99_ms = 0;
};

/// Times `search` over nq queries of dimension d; labels (nq × 10) are left holding the ids of
/// the 1-thread batch call, which recall is measured on.
inline Timing time_search(const SearchFn& search, size_t nq, size_t d, const float* xq,
                          int threads_all, std::vector<int64_t>& labels) {
  Timing t;
  labels.assign(nq * 10, -1);
  std::vector<int64_t> scratch(nq * 10);
  // One untimed pass over a few queries: first-touch page faults and lazily built state
  // (precomputed tables, thread pools) are not part of any system's rate.
  set_threads(threads_all);
  search(std::min<size_t>(nq, 100), xq, scratch.data());

  set_threads(threads_all);
  auto t0 = Clock::now();
  search(nq, xq, scratch.data());
  t.qps_all = double(nq) / seconds_since(t0);

  set_threads(1);
  t0 = Clock::now();
  search(nq, xq, labels.data());
  t.qps1 = double(nq) / seconds_since(t0);

  std::vector<double> ms(nq);
  for (size_t i = 0; i < nq; ++i) {
    t0 = Clock::now();
    search(1, xq + i * d, scratch.data());
    ms[i] = 1e3 * seconds_since(t0);
  }
  std::sort(ms.begin(), ms.end());
  t.p50_ms = ms[nq / 2];
  t.p99_ms = ms[size_t(std::ceil(0.99 * double(nq))) - 1];
  set_threads(threads_all);
  return t;
}

}  // namespace bloch::bench
