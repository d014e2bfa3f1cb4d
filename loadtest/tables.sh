#!/usr/bin/env bash
# Custom keyword tables at scale: memory, throughput against the number of apps, and replacing a
# table while requests run. One gateway per app count, each pinned to CPU 0 with one tokio
# worker; the load client (examples/table_scale.rs) runs pinned to CPU 1.
# Every gateway then has one table replaced back and forth, idle, at half load and at full load,
# REPLACE_SECONDS each (35 s gives over 300 replacements a run).
# With BASELINE=REVISION, that revision's gateway (built in a git worktree under target/) runs
# with the largest app count beside this checkout's, in every round and restart.
# Usage: [BASELINE=REV] loadtest/tables.sh [APP_COUNTS] [SECONDS] [ROUNDS] [REPLACE_SECONDS]
#   e.g. BASELINE=64d4eeee loadtest/tables.sh 1,1000,10000 5 1 35
set -euo pipefail
cd "$(dirname "$0")/.."
APPS=${1:-1,100,1000,10000}
SECONDS_PER_RUN=${2:-10}
ROUNDS=${3:-3}
REPLACE_SECONDS=${4:-$SECONDS_PER_RUN}
baseline=()
if [ -n "${BASELINE:-}" ]; then
    tree=target/compare-$(git rev-parse --short "$BASELINE")
    if [ ! -d "$tree" ]; then
        git worktree add --detach "$tree" "$BASELINE" >/dev/null
    fi
    CARGO_TARGET_DIR=target/compare-build cargo build --release --quiet --bin modgate \
        --manifest-path "$tree/Cargo.toml"
    baseline=(--baseline target/compare-build/release/modgate)
fi
cargo build --release --quiet --bin modgate --example table_scale
exec taskset -c 1 target/release/examples/table_scale \
    --apps "$APPS" --seconds "$SECONDS_PER_RUN" --rounds "$ROUNDS" --replace-seconds "$REPLACE_SECONDS" \
    "${baseline[@]}"
