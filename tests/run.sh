#!/usr/bin/env bash
# Builds bloch and runs the default test suite twice: a Release build, then an
# AddressSanitizer + UndefinedBehaviorSanitizer build. Heavy suites (label "heavy") are left
# out; run them with `ctest --test-dir build -L heavy`.
# Then a ThreadSanitizer build runs the concurrency tests (ctest -R Concurrent).
# Environment: BLOCH_SKIP_SANITIZE=1 skips both sanitizer passes; BLOCH_JOBS sets build
# parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${BLOCH_JOBS:-$(nproc)}"

echo "== format check (clang-format, .clang-format)"
git ls-files '*.h' '*.cpp' | xargs clang-format --dry-run -Werror

build_and_test() {
  local dir="$1"; shift
  echo "== build $dir ($*)"
  cmake -S . -B "$dir" -G Ninja -DBLOCH_WERROR=ON "$@"
  cmake --build "$dir" -j "$jobs"
  echo "== test $dir"
  ctest --test-dir "$dir" -L unit -j "$jobs" --output-on-failure --timeout 600
}

build_and_test build -DCMAKE_BUILD_TYPE=Release
if [ "${BLOCH_SKIP_SANITIZE:-0}" != "1" ]; then
  # Benchmarks are not run under sanitizers, so they are not built there.
  build_and_test build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLOCH_SANITIZE=ON \
    -DBLOCH_BUILD_BENCH=OFF
  # GCC's libgomp is not built with TSan, so its own barriers would be reported as races:
  # OpenMP runs one thread here, and TSan watches the application threads the tests start.
  echo "== build build-tsan (concurrency tests)"
  cmake -S . -B build-tsan -G Ninja -DBLOCH_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBLOCH_TSAN=ON -DBLOCH_BUILD_BENCH=OFF
  # Only the suites that have concurrency tests are built here.
  mapfile -t tsan_targets < <(grep -l 'Concurrent' tests/test_*.cpp | xargs -n1 basename | sed 's/\.cpp$//')
  cmake --build build-tsan -j "$jobs" --target "${tsan_targets[@]}"
  echo "== test build-tsan"
  OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 \
    ctest --test-dir build-tsan -R Concurrent --output-on-failure --timeout 600
fi
