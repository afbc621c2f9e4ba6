#!/usr/bin/env bash
# Run the spendgate end-to-end tests (Node 20+, npm).
#   SPENDGATE_BIN=/path/to/spendgate  binary to test (default <repo>/target/debug/spendgate)
#   SPENDGATE_E2E_KEEP=1              keep temp dirs (database, server.log)
# Extra arguments go to `node --test`, e.g. ./run.sh --test-name-pattern=rotate
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# Install when node_modules is missing or older than the lock file (new dependencies).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
set +e
node --test --test-reporter=spec "$@" *.test.mjs
exit $?
