#!/usr/bin/env bash
# Pass-through forwarding overhead: the same platform call (a customer-service message, POST with
# a JSON body) sent directly to a stand-in upstream and through modgate in front of it, at the
# same offered rate over 64 connections (open loop: a slow answer delays no later request's
# clock), alternately, ROUNDS times each. The stand-in and modgate share CPU 0 (one tokio worker
# each); the load tool runs on CPU 1. Prints p50/p99 of each and the difference at p50.
# Usage: loadtest/forward.sh [SECONDS] [RATE] [ROUNDS]     e.g. loadtest/forward.sh 10 2000 3
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
RATE=${2:-2000}
ROUNDS=${3:-3}
source loadtest/lib.sh

cargo build --release --quiet -p modgate --bin modgate --example standin_upstream
cargo build --release --quiet -p modgate-loadtest
TOKIO_WORKER_THREADS=1 taskset -c 0 target/release/examples/standin_upstream 127.0.0.1:18180 2>/dev/null &
pids+=($!)
start_modgate "$(bench_config forward "" $'[upstream]\nurl = "http://127.0.0.1:18180"\n')"
wait_healthy 19090
mkdir -p loadtest/results

run() { # NAME PORT
    taskset -c 1 target/release/modgate-loadtest --api "127.0.0.1:$2" --apps 1 --users 0 \
        --mix forward=100 --seconds "$SECS" --connections 64 --rate "$RATE" \
        --name "$1" --json "loadtest/results/forward-$1.json" >/dev/null
}
echo "| round | path | achieved/s | p50 ms | p99 ms | samples | non-zero answers |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
for r in $(seq "$ROUNDS"); do
    for pair in "direct 18180" "through 18080"; do
        set -- $pair
        run "$1-$r" "$2"
        python3 - "$1" "$r" <<'PY'
import json, sys
name, r = sys.argv[1], sys.argv[2]
d = json.load(open(f"loadtest/results/forward-{name}-{r}.json"))
a = d["all"]
bad = sum(n for k, n in d["answers"].items() if not k.endswith(" 0"))
print(f'| {r} | {name} | {d["achieved_rate"]:.0f} | {a["p50_ms"]:.3f} | {a["p99_ms"]:.3f} | {d["requests"]} | {bad} |')
PY
    done
done
python3 - "$ROUNDS" <<'PY'
import json, sys
rounds = int(sys.argv[1])
d = [json.load(open(f"loadtest/results/forward-direct-{r}.json"))["all"] for r in range(1, rounds + 1)]
t = [json.load(open(f"loadtest/results/forward-through-{r}.json"))["all"] for r in range(1, rounds + 1)]
p50 = lambda xs: sorted(x["p50_ms"] for x in xs)[len(xs) // 2]
p99 = lambda xs: sorted(x["p99_ms"] for x in xs)[len(xs) // 2]
print(f"\nmedian over rounds: direct p50 {p50(d):.3f} ms, through p50 {p50(t):.3f} ms, "
      f"forwarding adds {p50(t) - p50(d):.3f} ms at p50 ({p99(t) - p99(d):.3f} ms at p99)")
PY
