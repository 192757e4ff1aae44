#!/usr/bin/env bash
# Spine vs Dagster, Prefect and dbt-duckdb on the same workloads, same machine, same run.
# Usage: bench/run.sh [--runs 3] [--workloads chain100,chain1000,fanout1000] [--systems spine,dagster,prefect,dbt]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spine-target}"
for v in .venv:requirements.txt .venv-dbt:requirements-dbt.txt; do
  venv="bench/${v%%:*}"; req="bench/${v##*:}"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
done
cargo build --release --locked -q -p assets
exec bench/.venv/bin/python bench/peers.py --spine "$CARGO_TARGET_DIR/release/assets" --dbt bench/.venv-dbt/bin/dbt "$@"
