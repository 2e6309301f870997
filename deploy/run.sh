#!/usr/bin/env bash
# Builds bloch (Release) and runs the service, blochd, in the foreground: gRPC on
# 127.0.0.1:50051, admin HTTP (/metrics, /healthz) on 127.0.0.1:9090, data in ./data.
# Extra arguments go to blochd (`bash deploy/run.sh --help` lists every setting); Ctrl-C (or
# SIGTERM) shuts it down gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target blochd bloch bloch-indexer
exec build/server/blochd "$@"
