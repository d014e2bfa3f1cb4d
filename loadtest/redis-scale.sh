#!/usr/bin/env bash
# Redis mode with 1, 2 ... N gateway instances against one Redis: the total and per-instance
# msgSecCheck rate, each instance's CPU time per request, and Redis's.
#
# Every instance runs with one tokio worker pinned to CPU 0; wrk and the benchmark's own
# redis-server (port 16379, no persistence) run on CPU 1. This machine has two cores, so the
# instances share one core and their total requests/s cannot grow with their number: what scales
# is read from CPU time instead. Each instance's CPU µs per request gives what it serves on a
# core of its own; Redis's CPU µs per request and its busy share of its core give how many such
# instances one Redis core keeps up with. All N instances run throughout (the idle ones cost a
# timer's wake-ups); level n sends the load to the first n, one wrk thread per instance.
# With APPS above 1, every instance serves that many apps and each wrk thread spreads its
# requests evenly over them, so leases and batches hold few calls each.
# Usage: loadtest/redis-scale.sh [DURATION] [CONNECTIONS] [ROUNDS] [INSTANCES] [APPS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-8s}
CONNS=${2:-64}
ROUNDS=${3:-3}
INSTANCES=${4:-3}
APPS=${5:-1}
source loadtest/lib.sh

cargo build --release --quiet --bin modgate
start_bench_redis
GATEWAYS=()
for i in $(seq "$INSTANCES"); do
    config=$(redis_bench_config "scale-$i" $((18090 + i)) $((19190 + i)))
    extra_apps "$APPS" >> "$config"
    start_modgate "$config"
    GATEWAYS+=($!)
done
for i in $(seq "$INSTANCES"); do wait_healthy $((19190 + i)); done
# One token and one visit for all: the instances share them through Redis.
TOKEN=$(prepare 18091)
if [ "$APPS" -gt 1 ]; then
    app_paths 18091 "$APPS" target/bench-paths-scale.txt
    export APP_PATHS=target/bench-paths-scale.txt
fi

# answered PORTS...: msgSecCheck answers so far on the instances with those admin ports, as
# "total errors" (errors: any errcode but 0).
answered() {
    for port in "$@"; do curl -sf "http://127.0.0.1:$port/metrics"; done | awk '
        /^modgate_api_requests_total\{api="msg_sec_check",/ {
            total += $2; if ($0 !~ /errcode="0"/) errors += $2 }
        END { printf "%.0f %.0f\n", total, errors }'
}
evalsha() {
    redis-cli -p 16379 info commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_evalsha:/ { print $3 }'
}

hz=$(getconf CLK_TCK)
secs=${DURATION%s}
echo "| round | instances | requests/s | per instance | p50 ms | p99 ms | gateway CPU µs/request | Redis CPU µs/request | Redis core busy | EVALSHA per check |"
echo "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for r in $(seq "$ROUNDS"); do
    for n in $(seq "$INSTANCES"); do
        ports="" admin=() g0=0 g1=0
        for i in $(seq "$n"); do
            ports="$ports $((18090 + i))"
            admin+=($((19190 + i)))
        done
        before=()
        for i in $(seq "$n"); do before+=("$(answered $((19190 + i)) | cut -d' ' -f1)"); done
        for pid in "${GATEWAYS[@]:0:n}"; do g0=$((g0 + $(cpu_ticks "$pid"))); done
        s0=$(cpu_ticks "$PID_REDIS")
        e0=$(evalsha)
        read -r t0 err0 < <(answered "${admin[@]}")
        start=$(date +%s%N)
        read -r _ p50 p99 < <(INSTANCE_PORTS="$ports" WRK_SCRIPT=loadtest/instances.lua WRK_THREADS=$n \
            measure "http://127.0.0.1:18091/wxa/msg_sec_check?access_token=$TOKEN" "$DURATION" "$CONNS")
        end=$(date +%s%N)
        read -r t1 err1 < <(answered "${admin[@]}")
        e1=$(evalsha)
        s1=$(cpu_ticks "$PID_REDIS")
        for pid in "${GATEWAYS[@]:0:n}"; do g1=$((g1 + $(cpu_ticks "$pid"))); done
        each=""
        for i in $(seq "$n"); do
            now=$(answered $((19190 + i)) | cut -d' ' -f1)
            each="$each${each:+ / }$(( (now - before[i - 1]) / secs ))"
        done
        if [ $((err1 - err0)) -ne 0 ]; then
            echo "level $n: $((err1 - err0)) answers with an error" >&2
            exit 1
        fi
        awk -v n="$n" -v r="$r" -v reqs=$((t1 - t0)) -v secs="$secs" -v hz="$hz" \
            -v g=$((g1 - g0)) -v s=$((s1 - s0)) -v e=$((e1 - e0)) -v wall=$((end - start)) \
            -v each="$each" -v p50="$p50" -v p99="$p99" 'BEGIN {
            printf "| %d | %d | %.0f | %s | %s | %s | %.1f | %.1f | %.0f%% | %.3f |\n",
                r, n, reqs / secs, each, p50, p99, g / hz * 1e6 / reqs, s / hz * 1e6 / reqs,
                100 * s / hz / (wall / 1e9), e / reqs }'
    done
done
echo
redis_errors
