#!/usr/bin/env bash
# Image analysis on one core: 1-megapixel JPEGs per second against decoding alone, with and
# without the QR scan, and the peak memory of one analysis (examples/image_bench.rs).
# Usage: loadtest/images.sh [SECONDS] [ROUNDS]     e.g. loadtest/images.sh 5 3
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_MEASURE=${1:-5}
ROUNDS=${2:-3}
cargo build --release --quiet --example image_bench
exec taskset -c 1 target/release/examples/image_bench --seconds "$SECONDS_PER_MEASURE" --rounds "$ROUNDS"
