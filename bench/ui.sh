#!/usr/bin/env bash
# The terminal UI on a large project: 10,000 SQL assets in 100 layers (each reading one asset of the
# layer before, and depending on a second), materialized until the event log holds at least 100,000
# events; then `ui_bench` (tui/examples/ui_bench.rs) times opening the engine and drawing the first
# frame, and each view's frame time (median and worst of 200, off-screen 200x50); then, while a run of
# 300 assets executes in another process, the open run's frame and poll times (as `assets ui` polls).
# Usage: bench/ui.sh [ASSETS] [EVENTS] [PROFILE]   (PROFILE: debug (default) or release; SPINE_BENCH_ASSETS
# names another `assets` binary to materialize with, SPINE_BENCH_NO_BUILD=1 skips the build)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spine-target}"
n="${1:-10000}"; events="${2:-100000}"; profile="${3:-debug}"
if [ -z "${SPINE_BENCH_NO_BUILD:-}" ]; then
  if [ "$profile" = release ]; then
    bench/build.sh
  else
    cargo build --workspace --all-targets --locked -q
  fi
fi
A="${SPINE_BENCH_ASSETS:-$CARGO_TARGET_DIR/$profile/assets}"
B="$CARGO_TARGET_DIR/$profile/examples/ui_bench"
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
python3 - "$d" "$n" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
width = 100
os.makedirs(os.path.join(d, "assets"))
open(os.path.join(d, "spine.toml"), "w").write('[project]\nname = "ui-bench"\n')
out = []
for i in range(n):
    layer, j = divmod(i, width)
    key = f"l{layer}/a{j}"
    if layer == 0:
        out.append(f"  - key: {key}\n    kind: sql\n    query: SELECT {j} AS x\n")
    else:
        up, other = f"l{layer - 1}.a{j}", f"l{layer - 1}/a{(j * 7 + 1) % width}"
        out.append(f"  - key: {key}\n    kind: sql\n    deps: [{other}]\n    query: SELECT x + 1 AS x FROM {up}\n")
open(os.path.join(d, "assets", "all.yaml"), "w").write("assets:\n" + "".join(out))
PY
count() { "$A" --project "$d" sql --json "SELECT COUNT(*) AS n FROM spine.events" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['n'])"; }
start=$(date +%s)
while [ "$(count)" -lt "$events" ]; do
  "$A" --project "$d" materialize --force -c 2 > /dev/null
done
echo "project: $n assets, $(count) events (materialized in $(( $(date +%s) - start )) s, $profile build)"
"$B" "$d" 200 "$A"
