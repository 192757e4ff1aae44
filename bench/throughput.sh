#!/usr/bin/env bash
# Write and read throughput of a large asset (default 10M rows: the benchmark's events, 4 columns) with
# Spine on the local filesystem and on the S3 server (moto, from scripts/services.sh), against plain
# DataFusion (bench/floor: the same query, one zstd-1 Parquet file, no Delta, no hashing, no run
# store) writing and reading the same rows in the same run, interleaved, each in a fresh folder/bucket.
# Spine's write is the step's duration (query, hash, statistics, encode, upload, commit); its read is
# `assets sql` over the asset (process start included, as for the floor's `read`).
# Usage: bench/throughput.sh [RUNS] [ROWS]   (release builds in $CARGO_TARGET_DIR, built if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spine-target}"
bench/build.sh
A="$CARGO_TARGET_DIR/release/assets"
F="$CARGO_TARGET_DIR/release/etl-floor"
runs="${1:-3}"
rows="${2:-10000000}"
eval "$(scripts/services.sh)"
export AWS_ENDPOINT_URL="$SPINE_TEST_S3_ENDPOINT" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test \
  AWS_SECRET_ACCESS_KEY=test AWS_ALLOW_HTTP=true
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
results="$scratch/results.jsonl"
query="SELECT value AS id, (value * 7919) % 100000 AS user_id, CAST((value * 104729) % 99991 AS DOUBLE) / 100.0 AS amount, to_timestamp_seconds(1700000000 + value) AS ts FROM generate_series(0, $((rows - 1)))"
scan="SELECT COUNT(*) AS n, SUM(amount) AS s, MAX(ts) AS t, MIN(user_id) AS u FROM events"
now_ms() { date +%s%3N; }
bucket() { local b="bench-$1-$(date +%s%N)"; curl -sf -X PUT "$SPINE_TEST_S3_ENDPOINT/$b" >/dev/null; echo "$b"; }
project() { # DIR WAREHOUSE-TOML
  mkdir -p "$1/assets"
  printf '[project]\nname = "throughput"\n%s\n' "$2" > "$1/spine.toml"
  printf 'key: events\nkind: sql\nquery: %s\n' "$query" > "$1/assets/events.yaml"
}
for i in $(seq "$runs"); do
  for where in local s3; do
    # Spine
    d="$scratch/spine-$where-$i"
    if [ "$where" = local ]; then
      project "$d" ""
    else
      b=$(bucket spine)
      project "$d" "[warehouse]
url = \"s3://$b/wh\"
[warehouse.options]
aws_endpoint = \"$SPINE_TEST_S3_ENDPOINT\"
aws_region = \"us-east-1\"
aws_access_key_id = \"test\"
aws_secret_access_key = \"test\"
aws_allow_http = \"true\""
    fi
    (cd "$d" && "$A" materialize --json > run.json)
    t0=$(now_ms); (cd "$d" && "$A" sql --json "$scan" > scan.json); t1=$(now_ms)
    python3 - "$d" "$where" "$((t1 - t0))" "$rows" >> "$results" <<'PY'
import json, os, sys, subprocess
d, where, read_ms, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
run = json.load(open(os.path.join(d, "run.json")))
step = [s for s in run["steps"] if s["key"] == "events"][0]
assert step["rows"] == rows, step
assert json.load(open(os.path.join(d, "scan.json")))[0]["n"] == rows
if where == "local":
    t = os.path.join(d, "warehouse", "events")
    size = sum(os.path.getsize(os.path.join(t, f)) for f in os.listdir(t) if f.endswith(".parquet"))
else:
    toml = open(os.path.join(d, "spine.toml")).read()
    bucket = toml.split('s3://')[1].split('/')[0]
    out = subprocess.run(["curl", "-sf", f"{os.environ['SPINE_TEST_S3_ENDPOINT']}/{bucket}?list-type=2&prefix=wh/events/part-"],
                         capture_output=True, text=True, check=True).stdout
    size = sum(int(x.split("</Size>")[0]) for x in out.split("<Size>")[1:])
print(json.dumps({"system": "spine", "where": where, "write_ms": step["duration_ms"], "read_ms": read_ms, "bytes": size}))
PY
    # plain DataFusion
    if [ "$where" = local ]; then out="$scratch/floor-$i"; else out="s3://$(bucket floor)/wh"; fi
    w=$("$F" write "$out" "$rows")
    t0=$(now_ms); r=$("$F" read "$out/events.parquet"); t1=$(now_ms)
    python3 -c "import json,sys; w=json.loads(sys.argv[1]); r=json.loads(sys.argv[2]); assert w['rows']==r['rows']==int(sys.argv[5]), (w, r); print(json.dumps({'system': 'datafusion', 'where': sys.argv[3], 'write_ms': w['ms'], 'read_ms': int(sys.argv[4]), 'bytes': w['bytes']}))" "$w" "$r" "$where" "$((t1 - t0))" "$rows" >> "$results"
  done
done
python3 - "$results" "$rows" "$runs" <<'PY'
import json, statistics, sys
rows, runs = int(sys.argv[2]), int(sys.argv[3])
rs = [json.loads(l) for l in open(sys.argv[1])]
med = lambda sys_, where, k: statistics.median(r[k] for r in rs if r["system"] == sys_ and r["where"] == where)
print(f"{rows:,} rows, median of {runs} runs")
print(f"{'system':<11} {'where':<6} {'write ms':>9} {'MB/s':>7} {'Mrows/s':>8} {'read ms':>8} {'MB/s':>7} {'Mrows/s':>8} {'MB':>6}")
for where in ("local", "s3"):
    for s in ("spine", "datafusion"):
        w, r, b = med(s, where, "write_ms"), med(s, where, "read_ms"), med(s, where, "bytes")
        mb = b / 1e6
        print(f"{s:<11} {where:<6} {w:>9.0f} {mb / (w / 1000):>7.1f} {rows / 1e6 / (w / 1000):>8.2f} {r:>8.0f} {mb / (r / 1000):>7.1f} {rows / 1e6 / (r / 1000):>8.2f} {mb:>6.1f}")
    sw, dw = med("spine", where, "write_ms"), med("datafusion", where, "write_ms")
    sr, dr = med("spine", where, "read_ms"), med("datafusion", where, "read_ms")
    print(f"  {where}: Spine / DataFusion  write {sw / dw:.2f}x  read {sr / dr:.2f}x")
PY
