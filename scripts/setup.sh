#!/usr/bin/env bash
# Creates .venv with cortex and everything its tests and examples need. Idempotent: it reinstalls
# only when pyproject.toml changed since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
stamp=.venv/.cortex-setup
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing cortex and its dependencies into .venv (about a minute)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  log=.venv/setup.log
  {
    .venv/bin/python -m pip install -q --upgrade pip &&
    # torch first and pinned: anything pulling an unpinned torch would otherwise get CUDA builds.
    .venv/bin/python -m pip install -q "torch==2.13.0" &&
    .venv/bin/python -m pip install -q -e '.[serve,operator,examples,dev]'
  } >"$log" 2>&1 || { cat "$log"; echo "setup: pip failed (log above, also in $log)"; exit 1; }
  echo "$want" > "$stamp"
  echo "setup: .venv ready"
fi
./scripts/get_helm.sh  # the Helm chart's tests need helm
