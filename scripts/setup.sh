#!/usr/bin/env bash
# Creates .venv with cortex and the extras named in $1 (comma-separated; by default serve,examples:
# what the quick start and the examples need, nothing more). Idempotent: it reinstalls only when
# pyproject.toml changed, or an extra is asked for that no earlier run installed.
# Tools that only tests need (helm, kubectl, strace) are scripts/get_tools.sh's business.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
extras=${1:-serve,examples}
stamp=.venv/.cortex-setup  # lines "<sha256 of pyproject.toml> <extra>"
hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
installed() { [ -f "$stamp" ] && grep -qx "$hash $1" "$stamp"; }

missing=
for extra in ${extras//,/ }; do installed "$extra" || missing=1; done
if [ -n "$missing" ]; then
  echo "setup: installing cortex[$extras] into .venv (a minute or two)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  log=.venv/setup.log
  {
    .venv/bin/python -m pip install -q --upgrade pip &&
    # torch first and pinned: anything pulling an unpinned torch would otherwise get CUDA builds.
    .venv/bin/python -m pip install -q "torch==2.13.0" &&
    .venv/bin/python -m pip install -q -e ".[$extras]"
  } >"$log" 2>&1 || { cat "$log"; echo "setup: pip failed (log above, also in $log)"; exit 1; }
  kept=$(grep "^$hash " "$stamp" 2>/dev/null || true)
  { [ -z "$kept" ] || echo "$kept"; for extra in ${extras//,/ }; do echo "$hash $extra"; done; } \
    | sort -u > "$stamp.new"
  mv "$stamp.new" "$stamp"
  echo "setup: .venv ready"
fi
