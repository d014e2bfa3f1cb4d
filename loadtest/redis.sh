#!/usr/bin/env bash
# msgSecCheck v2 per instance: the gateway with its state in process (`backend = "memory"`)
# against the same gateway with its state in Redis (`backend = "redis"`), in one run,
# alternating. Limits are enforced on both (far above the load), so every call takes the rate
# limit, the daily quota and the visit check from the backend.
#
# Each gateway runs pinned to CPU 0 with one tokio worker; wrk runs on CPU 1, and so does the
# benchmark's own redis-server (port 16379, no persistence): on this 2-core machine Redis shares
# the load generator's core, never the gateway's. Beside requests/s (which Redis's share of wrk's
# core holds down), each gateway's CPU time per request gives what one instance serves on a core
# of its own, and Redis's CPU time per request what one Redis core serves.
# With APPS above 1, both gateways serve that many apps and wrk spreads the requests evenly over
# them (loadtest/apps.lua), so each batch of admissions holds few calls per app.
# Usage: loadtest/redis.sh [DURATION] [CONNECTIONS] [ROUNDS] [APPS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15s}
CONNS=${2:-64}
ROUNDS=${3:-3}
APPS=${4:-1}
source loadtest/lib.sh

cargo build --release --quiet --bin modgate
start_bench_redis
PID_SHARED=$PID_REDIS
redis_config=$(redis_bench_config redis 18083 19093)
memory_config=$(bench_config redis-embedded)
extra_apps "$APPS" | tee -a "$memory_config" >> "$redis_config"
start_modgate "$memory_config"
PID_A=$!
start_modgate "$redis_config"
PID_B=$!
wait_healthy 19090
wait_healthy 19093
MEM=$(prepare 18080)
RED=$(prepare 18083)

if [ "$APPS" -gt 1 ]; then
    # One msgSecCheck path per app and gateway, each with that app's token and visit.
    for port in 18080 18083; do app_paths "$port" "$APPS" "target/bench-paths-$port.txt"; done
    export WRK_SCRIPT=loadtest/apps.lua
fi

compare "$ROUNDS" "state in process" "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$MEM" \
    "state in Redis" "http://127.0.0.1:18083/wxa/msg_sec_check?access_token=$RED"
echo
echo "Redis commands per msgSecCheck (INFO commandstats over the whole run):"
redis-cli -p 16379 info commandstats | grep -E '^cmdstat_(evalsha|eval|hmget|get|set|incrby|zscore)' | tr -d '\r'
redis_errors
