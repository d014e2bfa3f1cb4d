#!/usr/bin/env bash
# msgSecCheck v2 with limits enforced (rate limit, daily quota and visit check on every call, the
# limits set far above the load) against the same gateway with `[limits] enforce = false`, in one
# run, alternating. Usage: loadtest/limits.sh [DURATION] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15s}
CONNS=${2:-64}
ROUNDS=${3:-3}
source loadtest/lib.sh

cargo build --release --quiet --bin modgate
rm -rf target/bench-data-nolimits
sed -e 's/18080/18082/; s/19090/19092/; s/bench-data/bench-data-nolimits/' loadtest/bench.toml > target/bench-nolimits.toml
printf '[limits]\nenforce = false\n' >> target/bench-nolimits.toml
start_modgate "$(bench_config limits)"
start_modgate target/bench-nolimits.toml
wait_healthy 19090
wait_healthy 19092
ON=$(prepare 18080)
OFF=$(prepare 18082)

compare "$ROUNDS" "limits off" "http://127.0.0.1:18082/wxa/msg_sec_check?access_token=$OFF" \
    "limits on" "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$ON"
