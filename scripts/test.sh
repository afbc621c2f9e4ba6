#!/usr/bin/env bash
# Runs every test: Rust unit and end-to-end tests (real servers, real HTTP), the Node
# suite that drives the published @lavapayments/nodejs SDK, and the Python suite that
# drives the official openai and anthropic SDKs through the gateway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Dependency policy: licenses, bans, sources, RustSec advisories.
scripts/deny.sh
cargo build --locked --workspace --all-targets
cargo test --locked --workspace
export SPENDGATE_BIN="$PWD/target/debug/spendgate"
tests/e2e/run.sh
tests/e2e-python/run.sh
# Fuzz targets (SSE parser, request reader, translators, money, spend-key bodies), each
# for a bounded time from the committed corpus: zero crashes.
fuzz/run.sh "${FUZZ_SECONDS:-30}"
