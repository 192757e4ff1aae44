#!/usr/bin/env bash
# The one release build every benchmark uses: the same packages and targets each time, so features
# unify the same way and no script rebuilds DataFusion for another (about 25 minutes from empty here).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spine-target}"
cargo build --release --locked -q -p assets -p spine-tui -p spine-bench-floor --bins --examples
