#!/usr/bin/env bash
# Installs the build tree BUILD into a scratch prefix, then configures, builds and runs the
# consumer project against it: proves `find_package(bloch)` works for an outside project.
set -euo pipefail
build="$1"
source_dir="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
