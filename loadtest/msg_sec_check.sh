#!/usr/bin/env bash
# msgSecCheck v2 on one core, side by side with the ceiling server, in one run.
#
# Each server runs pinned to CPU 0 with one tokio worker; wrk runs pinned to CPU 1. The two are
# measured alternately, ROUNDS times each, so drift on a shared machine hits both alike. Both get
# the very same request bytes: the same body and the same URL with its access_token (which the
# ceiling parses as part of the URI and ignores). Each server's CPU time per request is read too:
# what one core of it serves when the load generator is not what limits it.
# Usage: loadtest/msg_sec_check.sh [DURATION] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15s}
CONNS=${2:-64}
ROUNDS=${3:-3}
source loadtest/lib.sh

cargo build --release --quiet --bin modgate --example ceiling
start_modgate "$(bench_config msg-sec-check)"
PID_B=$!
TOKIO_WORKER_THREADS=1 taskset -c 0 target/release/examples/ceiling 127.0.0.1:18081 2>/dev/null &
pids+=($!)
PID_A=$!
wait_healthy 19090
TOKEN=$(prepare 18080)

compare "$ROUNDS" "ceiling (hyper + serde_json)" "http://127.0.0.1:18081/wxa/msg_sec_check?access_token=$TOKEN" \
    "modgate msgSecCheck v2" "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$TOKEN"
