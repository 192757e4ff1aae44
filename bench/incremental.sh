#!/usr/bin/env bash
# An incremental append of 1% new rows vs a full rebuild of the same query: a source of 100 Parquet
# files of 10,000 rows (1,000,000), an incremental asset (append, watermark `id`) and its full twin;
# one more file lands (1%), both are materialized again; each step's wall time is reported.
# Usage: bench/incremental.sh [RUNS]   (needs python3 with pyarrow: bench/.venv from bench/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spine-target}"
bench/build.sh
A="$CARGO_TARGET_DIR/release/assets"
PY="${PYTHON:-bench/.venv/bin/python}"
runs="${1:-3}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
write() { # DIR FIRST_FILE LAST_FILE: files of 10,000 rows, ids continuing across files
  "$PY" - "$@" <<'PY'
import os, sys
import pyarrow as pa, pyarrow.parquet as pq
d, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d, exist_ok=True)
for i in range(a, b + 1):
    ids = pa.array(range(i * 10000, (i + 1) * 10000), pa.int64())
    pq.write_table(pa.table({"id": ids, "amount": pa.compute.multiply(ids, 3)}), f"{d}/part-{i:04}.parquet")
PY
}
step_ms() { python3 -c "import json,sys; v=json.load(open(sys.argv[1])); print([s['duration_ms'] for s in v['steps'] if s['key']==sys.argv[2]][0])" "$@"; }
for r in $(seq "$runs"); do
  d="$scratch/p$r"; mkdir -p "$d/assets"
  printf '[project]\nname = "inc"\n' > "$d/spine.toml"
  printf 'key: raw/events\nkind: source\npath: ../data/*.parquet\n' > "$d/assets/events.yaml"
  printf 'key: events_inc\nkind: sql\nincremental: {strategy: append, watermark: id}\nquery: SELECT id, amount, amount %% 97 AS bucket FROM raw.events WHERE {{ watermark }} IS NULL OR id > {{ watermark }}\n' > "$d/assets/inc.yaml"
  printf 'key: events_full\nkind: sql\nquery: SELECT id, amount, amount %% 97 AS bucket FROM raw.events\n' > "$d/assets/full.yaml"
  write "$d/data" 0 99
  (cd "$d" && "$A" materialize --json > first.json)
  write "$d/data" 100 100
  (cd "$d" && "$A" materialize --json > second.json)
  echo "run $r: 1% more rows — incremental append $(step_ms "$d/second.json" events_inc) ms, full rebuild $(step_ms "$d/second.json" events_full) ms (first build: $(step_ms "$d/first.json" events_inc) ms / $(step_ms "$d/first.json" events_full) ms)"
  (cd "$d" && "$A" sql --json "SELECT (SELECT COUNT(*) FROM events_inc) AS inc, (SELECT COUNT(*) FROM events_full) AS full") 
done
