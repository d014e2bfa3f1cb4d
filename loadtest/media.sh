#!/usr/bin/env bash
# Media jobs: acceptance (durable writes) and push throughput of one gateway core, side by side
# with msgSecCheck on the same gateway and with one-fsync-per-commit store writes.
# The gateway runs on CPU 0 with one tokio worker; the client, media origin and push receiver
# (examples/media_bench.rs) run pinned to CPU 1.
# Usage: loadtest/media.sh [SECONDS] [CONNS] [ROUNDS]     e.g. loadtest/media.sh 10 32 3
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_PHASE=${1:-10}
CONNS=${2:-32}
ROUNDS=${3:-3}
cargo build --release --quiet --bin modgate --example media_bench
exec taskset -c 1 target/release/examples/media_bench \
    --seconds "$SECONDS_PER_PHASE" --conns "$CONNS" --rounds "$ROUNDS"
