#!/usr/bin/env bash
# msgSecCheck v2 on one core, side by side with the ceiling server, in one run.
#
# Each server runs pinned to CPU 0 with one tokio worker; wrk runs pinned to CPU 1. The two are
# measured alternately, ROUNDS times each, so drift on a shared machine hits both alike.
# Needs: wrk (apt-get install wrk), taskset (util-linux).
# Usage: loadtest/msg_sec_check.sh [DURATION] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15s}
CONNS=${2:-64}
ROUNDS=${3:-3}
export BODY_FILE=loadtest/body.json

cargo build --release --quiet --bin modgate --example ceiling

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

TOKIO_WORKER_THREADS=1 RUST_LOG=warn taskset -c 0 target/release/modgate serve --config loadtest/bench.toml &
pids+=($!)
TOKIO_WORKER_THREADS=1 taskset -c 0 target/release/examples/ceiling 127.0.0.1:18081 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do
    curl -sf -o /dev/null "http://127.0.0.1:19090/healthz" && break
    sleep 0.1
done

TOKEN=$(curl -sf 'http://127.0.0.1:18080/cgi-bin/token?grant_type=client_credential&appid=wx0123456789abcdef&secret=0123456789abcdef0123456789abcdef' \
    | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
# The benchmark user has visited (v2 checks need a visit in the last 120 minutes).
curl -sf -X POST -d '{"openid":"oBenchUser_0123456789"}' "http://127.0.0.1:18080/wxa/visit/report?access_token=$TOKEN" | grep -q '"recorded":1'
# Sanity: the gateway answers the benchmark body with a verdict, not an error.
curl -sf -X POST --data-binary @"$BODY_FILE" "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$TOKEN" | grep -q '"errcode":0'

# Prints "rps p50_ms p99_ms" for one wrk run.
measure() {
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s loadtest/post.lua "$1" | awk '
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        END { printf "%.0f %.2f %.2f\n", rps, ms(p50), ms(p99) }'
}

echo "| round | server | requests/s | p50 ms | p99 ms |"
echo "| --- | --- | ---: | ---: | ---: |"
sum_c=0; sum_m=0
for r in $(seq "$ROUNDS"); do
    read -r c50 c_p50 c_p99 < <(measure "http://127.0.0.1:18081/wxa/msg_sec_check")
    echo "| $r | ceiling (hyper + serde_json) | $c50 | $c_p50 | $c_p99 |"
    read -r m50 m_p50 m_p99 < <(measure "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$TOKEN")
    echo "| $r | modgate msgSecCheck v2 | $m50 | $m_p50 | $m_p99 |"
    sum_c=$((sum_c + c50)); sum_m=$((sum_m + m50))
done
awk -v m="$sum_m" -v c="$sum_c" 'BEGIN { printf "\nmodgate / ceiling, summed over rounds: %.1f%%\n", 100 * m / c }'
