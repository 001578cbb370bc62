#!/usr/bin/env bash
# Sets up .venv, serves examples/text-embedder locally and prints a real prediction.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PORT=${PORT:-8888}
log=$(mktemp)
.venv/bin/cortex serve examples/text-embedder/cortex.yaml --port "$PORT" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
printf 'loading the model'
for _ in $(seq 300); do
  if curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; then break; fi
  if ! kill -0 $server 2>/dev/null; then echo; cat "$log"; exit 1; fi
  printf '.'; sleep 0.5
done
echo
payload='{"source": "A cat sits on the mat", "candidates": ["A kitten is resting on a rug", "Stock markets fell sharply today"]}'
echo "POST http://127.0.0.1:$PORT/text-embedder $payload"
curl -fsS "http://127.0.0.1:$PORT/text-embedder" -H 'content-type: application/json' -d "$payload"
echo
