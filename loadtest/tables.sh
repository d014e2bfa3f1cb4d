#!/usr/bin/env bash
# Custom keyword tables at scale: memory, throughput against the number of apps, and replacing a
# table while requests run. One gateway per app count, each pinned to CPU 0 with one tokio
# worker; the load client (examples/table_scale.rs) runs pinned to CPU 1.
# Every gateway then has one table replaced back and forth, idle, at half load and at full load,
# REPLACE_SECONDS each (35 s gives over 300 replacements a run).
# Usage: loadtest/tables.sh [APP_COUNTS] [SECONDS] [ROUNDS] [REPLACE_SECONDS]
#   e.g. loadtest/tables.sh 1,1000,10000 10 2 35
set -euo pipefail
cd "$(dirname "$0")/.."
APPS=${1:-1,100,1000,10000}
SECONDS_PER_RUN=${2:-10}
ROUNDS=${3:-3}
REPLACE_SECONDS=${4:-$SECONDS_PER_RUN}
cargo build --release --quiet --bin modgate --example table_scale
exec taskset -c 1 target/release/examples/table_scale \
    --apps "$APPS" --seconds "$SECONDS_PER_RUN" --rounds "$ROUNDS" --replace-seconds "$REPLACE_SECONDS"
