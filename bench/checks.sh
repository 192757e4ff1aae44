#!/usr/bin/env bash
# Checks on the shop's 1M-row marts/orders: the step's wall time with its checks and without them
# (fresh copies of examples/shop, interleaved), and the checks' own recorded durations.
# Usage: bench/checks.sh [RUNS]   (uses the release `assets` in $CARGO_TARGET_DIR, building it if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spine-target}"
bench/build.sh
A="$CARGO_TARGET_DIR/release/assets"
runs="${1:-3}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for i in $(seq "$runs"); do
  for mode in checks nochecks; do
    d="$scratch/$mode-$i"
    cp -r examples/shop "$d"
    rm -rf "$d/.spine" "$d/warehouse"
    if [ "$mode" = nochecks ]; then
      python3 - "$d/assets/marts/marts.yaml" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
i = s.index("    # Audited before"); j = s.index("  - key: marts/daily_revenue")
open(p, "w").write(s[:i] + "\n" + s[j:])
PY
    fi
    (cd "$d" && "$A" materialize --json > run.json 2>/dev/null)
    step=$(python3 -c "import json,sys; v=json.load(open(sys.argv[1])); print([s['duration_ms'] for s in v['steps'] if s['key']=='marts/orders'][0])" "$d/run.json")
    checks=$(cd "$d" && "$A" sql --json "SELECT COALESCE(SUM(duration_ms), 0) AS ms FROM spine.check_results WHERE asset_key = 'marts/orders'" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['ms'])")
    echo "$mode run $i: marts/orders step ${step} ms, its checks ${checks} ms"
  done
done
