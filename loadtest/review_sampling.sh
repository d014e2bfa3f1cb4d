#!/usr/bin/env bash
# What sampling pass verdicts for review costs msgSecCheck: two gateways on CPU 0, one with the
# default sampling (one pass in 1,000 queued and stored), one with sampling off, measured
# alternately with wrk on CPU 1.
# Usage: loadtest/review_sampling.sh [DURATION] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
ROUNDS=${3:-3}
source loadtest/lib.sh

cargo build --release --quiet --bin modgate
A=$(bench_config ab-sampling)
B=$(bench_config ab-nosampling "" $'[review]\npass_sample_every = 0\n')
sed -i 's/18080/18082/; s/19090/19092/' "$B"
start_modgate "$A"
start_modgate "$B"
wait_healthy 19090; wait_healthy 19092
TA=$(prepare 18080); TB=$(prepare 18082)
compare "$ROUNDS" "sampling off" "http://127.0.0.1:18082/wxa/msg_sec_check?access_token=$TB" \
    "sampling 1 in 1000 (default)" "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$TA"
curl -s http://127.0.0.1:19090/metrics | grep "^modgate_review_enqueued_total"
