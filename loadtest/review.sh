#!/usr/bin/env bash
# What queueing a review verdict costs: msgSecCheck v2 with a text whose verdict is `review`
# (every request queued for review and stored by the batch writer) side by side with a text of
# the same length whose verdict is `pass` (not queued; sampling off), on one gateway core, in one
# run. The bound per app is raised to its maximum (1,000,000), so nothing is dropped in a short run:
# the worst case, every check queued and stored.
# Usage: loadtest/review.sh [DURATION] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
ROUNDS=${3:-3}
source loadtest/lib.sh

cargo build --release --quiet --bin modgate
REVIEW_BODY=target/review-body.json
# The benchmark body with one word the built-in lexicon sends to review (代购, 10001).
sed 's/他们家的招牌/他们家的代购/' loadtest/body.json > "$REVIEW_BODY"
start_modgate "$(bench_config review "" $'[review]\npass_sample_every = 0\nmax_items_per_app = 1000000\n')"
wait_healthy 19090
TOKEN=$(prepare 18080)
URL="http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$TOKEN"
curl -sf -X POST --data-binary @"$REVIEW_BODY" "$URL" | grep -q '"suggest":"review"'

# compare() runs wrk with BODY_FILE; alternate the two bodies by swapping it per run.
sum_pass=0 sum_review=0
echo "| round | text | requests/s | p50 ms | p99 ms |"
echo "| --- | --- | ---: | ---: | ---: |"
for r in $(seq "$ROUNDS"); do
    read -r rps p50 p99 < <(BODY_FILE=loadtest/body.json measure "$URL" "$DURATION" "$CONNS")
    echo "| $r | pass (not queued) | $rps | $p50 | $p99 |"
    sum_pass=$((sum_pass + rps))
    read -r rps p50 p99 < <(BODY_FILE=$REVIEW_BODY measure "$URL" "$DURATION" "$CONNS")
    echo "| $r | review (queued and stored) | $rps | $p50 | $p99 |"
    sum_review=$((sum_review + rps))
done
echo
echo "review / pass, summed over rounds: $(awk -v a="$sum_review" -v b="$sum_pass" 'BEGIN { printf "%.1f%%", 100 * a / b }')"
queued=$(curl -sf http://127.0.0.1:19090/metrics | awk '/^modgate_review_enqueued_total/ { s += $2 } END { print s + 0 }')
echo "items queued: $queued; resident memory: $(awk '/VmRSS/ { print $2, $3 }' /proc/"${pids[0]}"/status)"
