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
taskset -c 1 redis-server --port 16379 --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
pids+=($!)
PID_SHARED=$!
for _ in $(seq 50); do redis-cli -p 16379 ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p 16379 flushall >/dev/null
rm -rf target/bench-data-redis
sed -e 's/18080/18083/; s/19090/19093/; s/bench-data/bench-data-redis/' \
    -e 's|^\[state\]|[state]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:16379/0"\nredis_prefix = "bench"|' \
    loadtest/bench.toml > target/bench-redis.toml
memory_config=$(bench_config redis-embedded)
# The apps beyond the benchmark's own: wx0000000000000001 onwards, limits far above the load.
for i in $(seq 1 $((APPS - 1))); do
    printf '[[apps]]\nappid = "wx%016x"\nsecret = "%s"\ntext_per_minute = 1000000000\ntext_per_day = 4000000000\n' \
        "$i" "$SECRET"
done | tee -a "$memory_config" >> target/bench-redis.toml
start_modgate "$memory_config"
PID_A=$!
start_modgate target/bench-redis.toml
PID_B=$!
wait_healthy 19090
wait_healthy 19093
MEM=$(prepare 18080)
RED=$(prepare 18083)

if [ "$APPS" -gt 1 ]; then
    # One msgSecCheck path per app and gateway, each with that app's token and visit.
    for port in 18080 18083; do
        : > "target/bench-paths-$port.txt"
        for i in $(seq 0 $((APPS - 1))); do
            appid=$(printf 'wx%016x' "$i")
            [ "$i" -eq 0 ] && appid=$APPID
            token=$(curl -sf "http://127.0.0.1:$port/cgi-bin/token?grant_type=client_credential&appid=$appid&secret=$SECRET" \
                | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
            curl -sf -X POST -d '{"openid":"oBenchUser_0123456789"}' \
                "http://127.0.0.1:$port/wxa/visit/report?access_token=$token" | grep -q '"recorded":1'
            echo "/wxa/msg_sec_check?access_token=$token" >> "target/bench-paths-$port.txt"
        done
    done
    export WRK_SCRIPT=loadtest/apps.lua
fi

compare "$ROUNDS" "state in process" "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$MEM" \
    "state in Redis" "http://127.0.0.1:18083/wxa/msg_sec_check?access_token=$RED"
echo
echo "Redis commands per msgSecCheck (INFO commandstats over the whole run):"
redis-cli -p 16379 info commandstats | grep -E '^cmdstat_(evalsha|eval|hmget|get|set|incrby|zscore)' | tr -d '\r'
echo "Redis errors by kind (NOSCRIPT: a script's first run on this Redis, loaded and run again):"
redis-cli -p 16379 info errorstats | grep '^errorstat_' | tr -d '\r' || echo "none"
