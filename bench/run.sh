#!/usr/bin/env bash
# The benchmark, one command: bench/run.sh [--quick] [--out FILE]
# Installs what it needs (wrk, nginx from Debian), builds spendgate in release, and runs
# every lane against spendgate and against nginx as a plain reverse proxy, in front of
# the same canned upstream, pinned to cores. See bench/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release --locked -p spendgate
cargo build --release --locked -p spendgate-bench --example floor
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # 2,000 open streams need twice as many sockets
exec python3 bench/run.py --bin "$PWD/target/release/spendgate" --floor-bin "$PWD/target/release/examples/floor" "$@"
