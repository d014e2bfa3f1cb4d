#!/usr/bin/env bash
# The attacks of loadtest/attacks.py against one gateway build, in turn, on a release binary
# (default target/release/modgate; pass another, e.g. an earlier revision's, to compare). Each
# attack prints one JSON line of what the gateway did; docs/operations.md keeps the table of an
# earlier build against this one.
# Usage: loadtest/attacks.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/modgate}
if [ "$BIN" = target/release/modgate ]; then
    cargo build --release --quiet --bin modgate
fi
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

config=target/attack.toml
rm -rf target/attack-data
cat > "$config" <<TOML
[server]
listen = "127.0.0.1:18080"
max_connections = 64
header_read_timeout_secs = 30
[admin]
listen = "127.0.0.1:19090"
token = "bench-admin-token"
[state]
data_dir = "target/attack-data"
[limits]
max_visits = 20000
resets_per_month = 1
[media]
models = false
allow_networks = ["127.0.0.0/8"]
max_queued = 100
push_retry_secs = [600]
connect_timeout_secs = 1
fetch_timeout_secs = 2
push_timeout_secs = 1
[[apps]]
appid = "wx0123456789abcdef"
secret = "0123456789abcdef0123456789abcdef"
push_url = "http://127.0.0.1:18099/fail"
push_token = "attack"
[[apps]]
appid = "wxfedcba9876543210"
secret = "fedcba9876543210fedcba9876543210"
push_url = "http://127.0.0.1:18099/ok"
push_token = "attack"
TOML

start() {
    RUST_LOG=warn "$BIN" serve --config "$config" 2>target/attack.log &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        curl -sf http://127.0.0.1:19090/healthz >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "the gateway did not start: $(tail -3 target/attack.log)" >&2
    exit 1
}

attack() { python3 loadtest/attacks.py "$@" --pid "$pid"; }

start
attack withheld-one-address
attack withheld-many-addresses
attack disconnect-mid-submit
attack failing-push-tenant
attack visit-flood
attack risk-rank-bloat
attack spend
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
start
attack kept
