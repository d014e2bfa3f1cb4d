#!/usr/bin/env bash
# Reproduces every table of BENCHMARKS.md, in its order, with the arguments it states (the
# comparisons against an earlier revision are run by hand with the revision a change is measured
# against; here the control, two builds of this source). Takes about an hour and a half on a
# 2-core machine; each script prints its own table.
# Usage: loadtest/all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo; echo "## $*"; "$@"; }
run loadtest/msg_sec_check.sh 15s 64 3
run loadtest/compare_builds.sh HEAD 5s 64 10
run loadtest/latency.sh 15 64
run loadtest/overload.sh 10 4000
run loadtest/soak.sh 10
run loadtest/fetch-corpus.sh
run cargo bench --bench engine -- --measurement-time 8
run cargo bench --bench engine_rounds -- 41
run cargo bench --bench framing
run loadtest/peer.sh
run cargo bench --bench limits
run loadtest/limits.sh 15s 64 3
run loadtest/redis.sh 15s 64 3
run loadtest/redis-scale.sh 8s 64 3 3
run loadtest/tables.sh 1,100,1000,10000 10 3
run loadtest/tables.sh 1,1000,10000 5 1 35
run loadtest/media.sh 3 32 2
run loadtest/images.sh 5 3
run loadtest/models.sh 3 15
run loadtest/review.sh 10s 64 3
run loadtest/review_sampling.sh 10s 64 3
run loadtest/review_full.sh 5b7f9f8 5s 64 10
run loadtest/forward.sh 10 2000 3
