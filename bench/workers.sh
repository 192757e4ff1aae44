#!/usr/bin/env bash
# Workers end to end (issue 30): a 1 → N → 1 fan-out of trivial SQL assets (default N = 1000) executed
# by 1 and 2 `assets worker` processes (-c 2 each) on Postgres and on SQLite, against one
# `assets materialize` process on the same store; and R queued one-step runs (default 300) drained by
# 1 and 2 workers. Each case in a fresh project (and a fresh Postgres database); medians of RUNS.
# Wall time is from the workers' start to the last worker's exit (`--exit-when-idle`), process start
# included. Usage: bench/workers.sh [RUNS] [N] [R]   (release build in $CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spine-target}"
# SPINE_BIN: another binary (a quick check of this script with a debug build), no release build.
if [ -z "${SPINE_BIN:-}" ]; then bench/build.sh; fi
A="${SPINE_BIN:-$CARGO_TARGET_DIR/release/assets}"
runs="${1:-3}"; n="${2:-1000}"; r="${3:-300}"
eval "$(scripts/services.sh postgres)" >/dev/null
scratch=$(mktemp -d)
dbs=()
cleanup() {
  rm -rf "$scratch"
  for db in "${dbs[@]}"; do psql "$SPINE_TEST_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true; done
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
pg_url() { # a fresh database (dropped at the end); its URL in $url
  local name="bench_workers_$(date +%s%N)"
  psql "$SPINE_TEST_POSTGRES_URL" -q -c "CREATE DATABASE $name" >/dev/null
  dbs+=("$name")
  url="${SPINE_TEST_POSTGRES_URL%/*}/$name"
}
fan_out() { # DIR STATE-URL
  mkdir -p "$1/assets"
  printf '[project]\nname = "fanout"\n[state]\nurl = "%s"\n' "$2" > "$1/spine.toml"
  printf 'key: root\nkind: sql\nquery: SELECT 1 AS v\n' > "$1/assets/root.yaml"
  { echo "assets:"
    for i in $(seq 0 $((n - 1))); do
      printf '  - key: m%d\n    kind: sql\n    query: SELECT v + %d AS v FROM root\n' "$i" "$i"
    done
    printf '  - key: sink\n    kind: sql\n    deps: ['
    for i in $(seq 0 $((n - 1))); do printf 'm%d%s' "$i" "$([ "$i" -lt $((n - 1)) ] && echo ', ')"; done
    printf ']\n    query: SELECT COUNT(*) AS n FROM root\n'
  } > "$1/assets/fan.yaml"
}
one_asset() { # DIR STATE-URL
  mkdir -p "$1/assets"
  printf '[project]\nname = "drain"\n[state]\nurl = "%s"\n' "$2" > "$1/spine.toml"
  printf 'key: one\nkind: sql\nquery: SELECT 1 AS v\n' > "$1/assets/one.yaml"
}
state_url() { # STORE DIR → $url
  if [ "$1" = postgres ]; then pg_url; else url="sqlite://$2/.spine/state.db"; fi
}
workers() { # DIR COUNT → ms until every worker exits
  local t0 pids=() i
  t0=$(now_ms)
  for i in $(seq "$2"); do
    (cd "$1" && "$A" worker -c 2 --poll 20ms --exit-when-idle --json > "$1/worker$i.json" 2>/dev/null) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  echo $(($(now_ms) - t0))
}
check() { # DIR RUNS
  local bad
  bad=$(cd "$1" && "$A" sql --json "SELECT COUNT(*) AS n FROM spine.runs WHERE status <> 'succeeded'" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["n"])')
  [ "$bad" = 0 ] || { echo "runs did not all succeed in $1" >&2; exit 1; }
}
results="$scratch/results.txt"
for i in $(seq "$runs"); do
  for store in sqlite postgres; do
    # 1 → N → 1: one process, then 1 and 2 workers.
    d="$scratch/fan-$store-one-$i"; state_url $store "$d"; fan_out "$d" "$url"
    t0=$(now_ms); (cd "$d" && "$A" materialize -c 2 --json > /dev/null); echo "fan $store materialize $(($(now_ms) - t0))" >> "$results"
    check "$d" 1
    for w in 1 2; do
      d="$scratch/fan-$store-$w-$i"; state_url $store "$d"; fan_out "$d" "$url"
      (cd "$d" && "$A" materialize --queue --json > /dev/null)
      echo "fan $store workers=$w $(workers "$d" "$w")" >> "$results"
      check "$d" 1
    done
    # R queued runs drained.
    for w in 1 2; do
      d="$scratch/drain-$store-$w-$i"; state_url $store "$d"; one_asset "$d" "$url"
      for k in $(seq "$r"); do (cd "$d" && "$A" materialize --queue --force --json > /dev/null); done
      echo "drain $store workers=$w $(workers "$d" "$w")" >> "$results"
      check "$d" "$r"
    done
  done
done
python3 - "$results" "$n" "$r" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, store, how, ms = line.split()
    rows.setdefault((kind, store, how), []).append(int(ms))
n, r = int(sys.argv[2]), int(sys.argv[3])
print(f"| workload | store | executed by | median s | per second | runs |")
print("|---|---|---|---|---|---|")
for (kind, store, how), v in sorted(rows.items()):
    s = statistics.median(v) / 1000
    work = n + 2 if kind == "fan" else r
    unit = "steps/s" if kind == "fan" else "runs/s"
    name = f"1 → {n} → 1 fan-out" if kind == "fan" else f"{r} queued runs drained"
    print(f"| {name} | {store} | {how} | {s:.2f} | {work / s:.0f} {unit} | {len(v)} |")
PY
