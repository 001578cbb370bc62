#!/usr/bin/env bash
# Sets up .venv with every extra, fetches the tools only tests need (helm, kubectl, strace), and
# runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh serve,operator,examples,dev,bench
./scripts/get_tools.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
