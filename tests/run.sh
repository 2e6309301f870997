#!/usr/bin/env bash
# Builds bloch and runs the default test suite twice: a Release build, then an
# AddressSanitizer + UndefinedBehaviorSanitizer build. Heavy suites (label "heavy") are left
# out; run them with `ctest --test-dir build -L heavy`.
# Environment: BLOCH_SKIP_SANITIZE=1 skips the sanitizer pass; BLOCH_JOBS sets build parallelism.
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
fi
