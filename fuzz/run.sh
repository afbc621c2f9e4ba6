#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30) from the committed corpus:
# fuzz/run.sh [SECONDS] [TARGET...]. Installs cargo-fuzz if it is missing. libFuzzer
# needs unstable compiler flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
# New inputs found go to a scratch corpus; a crash fails the run and leaves its input in
# fuzz/artifacts/TARGET/ (add it to fuzz/corpus/TARGET/ once fixed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
secs=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sse request translate money spend_key)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  cp -r "corpus/$t/." "$scratch/"
  echo "fuzz: $t for ${secs}s"
  status=0
  cargo fuzz run -O "$t" "$scratch" -- -max_total_time="$secs" -print_final_stats=1 >"$scratch.log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::new_units_added)|panicked|SUMMARY" "$scratch.log" || true
  [ "$status" -eq 0 ] || tail -40 "$scratch.log"
  rm -rf "$scratch" "$scratch.log"
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/)"
    exit 1
  fi
done
echo "fuzz: every target ran ${secs}s without a crash"
