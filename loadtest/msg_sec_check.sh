#!/usr/bin/env bash
# msgSecCheck v2 on one core, side by side with the ceiling server, in one run.
#
# Each server runs pinned to CPU 0 with one tokio worker; wrk runs pinned to CPU 1. The two are
# measured alternately, ROUNDS times each, so drift on a shared machine hits both alike.
# Usage: loadtest/msg_sec_check.sh [DURATION] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15s}
CONNS=${2:-64}
ROUNDS=${3:-3}
source loadtest/lib.sh

cargo build --release --quiet --bin modgate --example ceiling
start_modgate loadtest/bench.toml
TOKIO_WORKER_THREADS=1 taskset -c 0 target/release/examples/ceiling 127.0.0.1:18081 2>/dev/null &
pids+=($!)
wait_healthy 19090
TOKEN=$(prepare 18080)

echo "| round | server | requests/s | p50 ms | p99 ms |"
echo "| --- | --- | ---: | ---: | ---: |"
sum_c=0; sum_m=0
for r in $(seq "$ROUNDS"); do
    read -r c50 c_p50 c_p99 < <(measure "http://127.0.0.1:18081/wxa/msg_sec_check" "$DURATION" "$CONNS")
    echo "| $r | ceiling (hyper + serde_json) | $c50 | $c_p50 | $c_p99 |"
    read -r m50 m_p50 m_p99 < <(measure "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$TOKEN" "$DURATION" "$CONNS")
    echo "| $r | modgate msgSecCheck v2 | $m50 | $m_p50 | $m_p99 |"
    sum_c=$((sum_c + c50)); sum_m=$((sum_m + m50))
done
awk -v m="$sum_m" -v c="$sum_c" 'BEGIN { printf "\nmodgate / ceiling, summed over rounds: %.1f%%\n", 100 * m / c }'
