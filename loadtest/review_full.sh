#!/usr/bin/env bash
# msgSecCheck v2 with the app's review queue already at its bound, full of undecided pass samples:
# where a queue nobody reviews ends up (the default samples one pass in 1,000 into a queue of
# 10,000, so after about ten million checks). An earlier revision's gateway against this
# checkout's, with the ceiling, by compare_builds.sh, both gateways starting from the same full
# queue and running with the default review settings.
# Usage: loadtest/review_full.sh REVISION [DURATION] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: loadtest/review_full.sh REVISION [DURATION] [CONNECTIONS] [ROUNDS]}
source loadtest/lib.sh

# Fill the queue quickly: every pass sampled, until the app holds its bound.
cargo build --release --quiet --bin modgate
start_modgate "$(bench_config review-full "" $'[review]\npass_sample_every = 1\n')"
fill=$!
wait_healthy 19090
TOKEN=$(prepare 18080)
depth() {
    curl -sf http://127.0.0.1:19090/metrics |
        awk '/^modgate_review_queue_depth/ { d += $2 } END { print d + 0 }'
}
for _ in $(seq 20); do
    [ "$(depth)" -ge 10000 ] && break
    taskset -c 1 wrk -t1 -c16 -d1s -s loadtest/post.lua \
        "http://127.0.0.1:18080/wxa/msg_sec_check?access_token=$TOKEN" >/dev/null
done
echo "review queue filled: $(depth) items"
# A graceful stop stores every queued item.
kill "$fill"
wait "$fill" || true

SEED_DATA=target/bench-data-review-full exec loadtest/compare_builds.sh "$REV" "${2:-5s}" "${3:-64}" "${4:-10}"
