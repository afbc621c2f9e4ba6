#!/usr/bin/env bash
# End-to-end tests that drive the official `openai` and `anthropic` Python SDKs
# through a real spendgate gateway to spendgate's mock provider.
#   SPENDGATE_BIN=/path/to/spendgate  binary to test (default <repo>/target/debug/spendgate)
#   SPENDGATE_E2E_KEEP=1              keep the temp dir (database, gateway and mock logs)
# Extra arguments go to pytest, e.g. ./run.sh -k rate_limit -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
set +e
.venv/bin/python -m pytest -q "$@"
exit $?
