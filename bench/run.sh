#!/usr/bin/env bash
# Spine vs Dagster, Prefect and dbt-duckdb (and the plain DataFusion / DuckDB floors) on the same
# workloads, same machine, same run. Prints one table, writes bench/results/ and docs/benchmarks.md.
# Usage: bench/run.sh [--runs 3] [--workloads chain100,...] [--systems spine,dagster,...] [--no-docs]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spine-target}"
for v in .venv:requirements.txt .venv-dbt:requirements-dbt.txt; do
  venv="bench/${v%%:*}"; req="bench/${v##*:}"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
done
# One build for every benchmark (bench/build.sh), so they share one feature resolution.
bench/build.sh
exec bench/.venv/bin/python bench/peers.py --spine "$CARGO_TARGET_DIR/release/assets" \
  --floor "$CARGO_TARGET_DIR/release/etl-floor" --dbt bench/.venv-dbt/bin/dbt "$@"
