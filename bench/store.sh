#!/usr/bin/env bash
# The run store alone (issue 30): steps claimed + started + finished per second and claim latency with
# 1, 2, 4, 8 clients (`assets bench --store`), on SQLite and on a private, durable Postgres cluster
# (fsync on, unlike the test server scripts/services.sh starts), first with the server's defaults,
# then with group commit (`commit_delay`, `commit_siblings`) — a server setting operators may choose.
# Usage: bench/store.sh [STEPS]   (release build in $CARGO_TARGET_DIR; as root the cluster runs as postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spine-target}"
if [ -z "${SPINE_BIN:-}" ]; then bench/build.sh; fi
A="${SPINE_BIN:-$CARGO_TARGET_DIR/release/assets}"
steps="${1:-4000}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -n "$bin" ] || bin="$(dirname "$(command -v initdb)")"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then dir="/var/lib/spine-services/pgbench-$$"; else dir="$(mktemp -d)"; fi
mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() { as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap 'stop; rm -rf "$dir"' EXIT
as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >/dev/null
url="postgresql://postgres@127.0.0.1:$port/postgres"
for settings in "" "-c commit_delay=1000 -c commit_siblings=2"; do
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $settings" start >/dev/null
  echo "## Postgres (fsync on)${settings:+, $settings}"
  p=$(mktemp -d)
  printf '[project]\nname = "storebench"\n' > "$p/spine.toml"; mkdir -p "$p/assets"
  psql "$url" -q -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public" >/dev/null
  stores=(--store "$url")
  [ -z "$settings" ] && stores+=(--store sqlite)
  (cd "$p" && "$A" bench "${stores[@]}" --clients 1,2,4,8 --steps "$steps")
  rm -rf "$p"
  stop
done
