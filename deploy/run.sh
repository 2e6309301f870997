#!/usr/bin/env bash
# Builds bloch (Release) and runs it. Until the gRPC service lands this runs the core demo:
# a generated clustered set, a trained circuit head, the exact fidelity index, timings and
# recall against brute force. Extra arguments go to the demo (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bloch_demo
exec build/bench/bloch_demo "$@"
