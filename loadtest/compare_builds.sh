#!/usr/bin/env bash
# msgSecCheck v2 on one core: an earlier revision's gateway against this checkout's, with the
# ceiling server, in one run.
#
# The earlier revision is built in a git worktree under target/ (its own target directory, so
# this checkout's build is untouched). All three servers run pinned to CPU 0 with one tokio
# worker, wrk pinned to CPU 1; each round measures the ceiling, then the two builds in turn (which
# goes first alternates by round), so drift on a shared machine hits all three alike. Prints every round and the medians of
# the per-round ratios (a ratio within one round is what survives this machine's noise).
# Usage: loadtest/compare_builds.sh REVISION [DURATION] [CONNECTIONS] [ROUNDS]
# With SEED_DATA=DIR set, both gateways start from a copy of that data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: loadtest/compare_builds.sh REVISION [DURATION] [CONNECTIONS] [ROUNDS]}
DURATION=${2:-5s}
CONNS=${3:-64}
ROUNDS=${4:-10}
source loadtest/lib.sh

short=$(git rev-parse --short "$REV")
tree=target/compare-$short
if [ ! -d "$tree" ]; then
    git worktree add --detach "$tree" "$REV" >/dev/null
fi
CARGO_TARGET_DIR=target/compare-build cargo build --release --quiet --bin modgate \
    --manifest-path "$tree/Cargo.toml"
cargo build --release --quiet --bin modgate --example ceiling

# config NAME API_PORT ADMIN_PORT: bench_config's file (its own data directory, a copy of
# $SEED_DATA's when that is set) on other ports.
config() {
    local file
    file=$(bench_config "$1")
    if [ -n "${SEED_DATA:-}" ]; then
        cp -r "$SEED_DATA" "target/bench-data-$1"
    fi
    sed -i -e "s|127.0.0.1:18080|127.0.0.1:$2|" -e "s|127.0.0.1:19090|127.0.0.1:$3|" "$file"
    echo "$file"
}
TOKIO_WORKER_THREADS=1 RUST_LOG=warn taskset -c 0 target/compare-build/release/modgate serve \
    --config "$(config earlier 18082 19092)" &
pids+=($!)
TOKIO_WORKER_THREADS=1 RUST_LOG=warn taskset -c 0 target/release/modgate serve \
    --config "$(config current 18080 19090)" &
pids+=($!)
TOKIO_WORKER_THREADS=1 taskset -c 0 target/release/examples/ceiling 127.0.0.1:18081 2>/dev/null &
pids+=($!)
wait_healthy 19090
wait_healthy 19092
T_EARLIER=$(prepare 18082)
T_CURRENT=$(prepare 18080)

rounds=$(mktemp)
echo "| round | ceiling req/s | $short req/s | this build req/s |"
echo "| --- | ---: | ---: | ---: |"
# The two gateways take turns at going first after the ceiling. Even so, two builds of the same
# source come out up to ~7% apart here (BENCHMARKS.md, 2026-12-02): differences smaller than
# that are not resolved by this script.
for r in $(seq "$ROUNDS"); do
    read -r c _ < <(measure "http://127.0.0.1:18081/wxa/msg_sec_check?access_token=$T_CURRENT" "$DURATION" "$CONNS")
    if [ $((r % 2)) -eq 1 ]; then
        read -r e _ < <(measure "http://127.0.0.1:18082/wxa/msg_sec_check?access_token=$T_EARLIER" "$DURATION" "$CONNS")
        read -r n _ < <(measure "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$T_CURRENT" "$DURATION" "$CONNS")
    else
        read -r n _ < <(measure "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$T_CURRENT" "$DURATION" "$CONNS")
        read -r e _ < <(measure "http://127.0.0.1:18082/wxa/msg_sec_check?access_token=$T_EARLIER" "$DURATION" "$CONNS")
    fi
    echo "| $r | $c | $e | $n |"
    echo "$c $e $n" >> "$rounds"
done
median() {
    awk "$1" "$rounds" | sort -g |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf '\nmedians of the per-round ratios: %s / ceiling %.1f%%, this build / ceiling %.1f%%, this build / %s %.1f%%\n' \
    "$short" "$(median '{ print 100 * $2 / $1 }')" "$(median '{ print 100 * $3 / $1 }')" \
    "$short" "$(median '{ print 100 * $3 / $2 }')"
rm -f "$rounds"
