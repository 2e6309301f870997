#!/usr/bin/env bash
# Runs the README's quick-start commands, unchanged except for the build directory, against a
# blochd on a scratch data directory and port (the tools find it through BLOCH_ADDRESS).
# Usage: tests/quickstart.sh BUILD_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$build/server/blochd" --data-dir "$work/data" --listen 127.0.0.1:0 --admin-listen "" \
  --port-file "$work/ports" --log-level warn &
server_pid=$!
for _ in $(seq 600); do [ -s "$work/ports" ] && break; sleep 0.05; done
export BLOCH_ADDRESS="127.0.0.1:$(sed 's/grpc=\([0-9]*\).*/\1/' "$work/ports")"

# The fenced lines between the quickstart markers of the README.
commands="$(sed -n '/<!-- quickstart/,/<!-- \/quickstart -->/p' "$root/README.md" | grep '^build/')"
[ -n "$commands" ] || { echo "no quick-start commands found in README.md"; exit 1; }
cd "$root"
while IFS= read -r line; do
  echo "\$ $line"
  eval "${line/#build\//$build/}"
done <<< "$commands"
