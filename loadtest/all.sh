#!/usr/bin/env bash
# Reproduces every table of BENCHMARKS.md, in its order, with the arguments it states. Takes
# about an hour and a half on a 2-core machine; each script prints its own table.
# Usage: loadtest/all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo; echo "## $*"; "$@"; }
run loadtest/msg_sec_check.sh 15s 64 3
run loadtest/compare_builds.sh 53ee999 5s 64 10
run loadtest/compare_builds.sh c7ff1b1 5s 64 10
run loadtest/compare_builds.sh 6f12f8f 5s 64 10
run loadtest/compare_builds.sh 05638f7 5s 64 10
run loadtest/compare_builds.sh b397381 5s 64 10
run loadtest/latency.sh 15 64
run loadtest/overload.sh 10 4000
run loadtest/soak.sh 10
run loadtest/fetch-corpus.sh
run cargo bench --bench engine -- --measurement-time 8
run cargo bench --bench limits
run cargo bench --bench framing
run loadtest/limits.sh 15s 64 3
run loadtest/redis.sh 15s 64 3
run loadtest/tables.sh 1,100,1000,10000 10 3
run loadtest/media.sh 3 32 2
run loadtest/images.sh 5 3
run loadtest/review.sh 10s 64 3
run loadtest/review_sampling.sh 10s 64 3
run loadtest/review_full.sh 5b7f9f8 5s 64 10
run loadtest/forward.sh 10 2000 3
run loadtest/peer.sh
