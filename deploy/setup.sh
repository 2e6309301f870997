#!/usr/bin/env bash
# Installs every Debian 12 package bloch needs to build, test, benchmark and run.
# Idempotent: apt-get skips what is already installed. Runs as root, or through sudo otherwise.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang-format
  # index/: FAISS (static, needs BLAS/LAPACK + OpenMP), fast BLAS for FAISS as a peer, xxHash
  libfaiss-dev libblas-dev liblapack-dev libopenblas0-pthread libomp-dev libxxhash-dev
  # tests and micro-benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # server/ and client/: gRPC, protobuf, RocksDB, Boost.Asio/Beast, CLI, JSON, logging, config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler librocksdb-dev
  libboost-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libtomlplusplus-dev
  # benchmark harness: ann-benchmarks files, hnswlib peer, plots and Python clients
  libhdf5-dev libhnswlib-dev zlib1g-dev python3-numpy python3-matplotlib python3-grpcio python3-protobuf
  # tooling around tests: curl for the admin endpoint, openssl for the TLS test's certificate
  curl openssl
)

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
