#!/usr/bin/env bash
# Sets up .venv, deploys examples/text-embedder locally with `cortex deploy`, prints a real
# prediction from `cortex predict`. The API keeps running: see `cortex get`, `cortex delete`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cortex=.venv/bin/cortex
$cortex deploy examples/text-embedder/cortex.yaml
payload='{"source": "A cat sits on the mat", "candidates": ["A kitten is resting on a rug", "Stock markets fell sharply today"]}'
echo "\$ cortex predict text-embedder -d '$payload'"
$cortex predict text-embedder -d "$payload"
$cortex get text-embedder
echo
echo "The API keeps serving. Stop it with: .venv/bin/cortex delete text-embedder"
