#!/usr/bin/env bash
# Runs every test: Rust unit and end-to-end tests (real server, real HTTP), then the
# Node end-to-end suite that drives the published @lavapayments/nodejs SDK.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --locked --workspace --all-targets
cargo test --locked --workspace
SPENDGATE_BIN="$PWD/target/debug/spendgate" tests/e2e/run.sh
